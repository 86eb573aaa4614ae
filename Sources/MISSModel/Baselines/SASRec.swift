import Foundation
import MISSCore
import MISSData

/// The SASRec two-tower baseline of Table 1 (Kang & McAuley 2018, as a retrieval two-tower):
///
/// - item tower: a learned ID embedding e_i per item;
/// - user tower: one causal self-attention block over the last `maxLength` behaviours,
///   x_j = e_{s_j} + p_j (learned positions, counted back from the most recent). Only the most recent
///   position's output is needed: h = x_last + Σ_j softmax_j((x_last W_q)·(x_j W_k)/√d) · x_j W_v (the causal
///   mask lets the last position see every behaviour), then a residual position-wise FFN:
///   u = h + ReLU(h W_1 + b_1) W_2 + b_2;
/// - score(u, i) = u · e_i; trained with a sampled softmax (the batch's positives plus `negatives` uniform
///   items, shared by the batch; accidental hits masked); retrieval is an exact top-K over all items.
public struct SASRec: ParameterContainer {
    public struct Config: Codable, Sendable, Equatable {
        public var dim = 32
        public var maxLength = 50
        public var ffnHidden = 64
        public var negatives = 256
        public init() {}
    }

    public let config: Config
    public let itemEmbedding: Embedding
    public let position: Parameter                 // (maxLength, d): row maxLength-1 = the most recent
    public let wq: Parameter, wk: Parameter, wv: Parameter
    public let ffn1: Linear, ffn2: Linear

    public init(config: Config, items: Int, seed: UInt64) {
        var rng = Xoshiro256StarStar(seed: seed).derived("sasrec-init")
        let d = config.dim
        self.config = config
        itemEmbedding = Embedding(name: "sasrec.item", count: items, dim: d, std: 0.1, rng: &rng)
        position = Parameter(name: "sasrec.position", value: .randomNormal(config.maxLength, d, std: 0.05, using: &rng))
        wq = Parameter(name: "sasrec.wq", value: .glorot(d, d, using: &rng))
        wk = Parameter(name: "sasrec.wk", value: .glorot(d, d, using: &rng))
        wv = Parameter(name: "sasrec.wv", value: .glorot(d, d, using: &rng))
        ffn1 = Linear(name: "sasrec.ffn1", inputs: d, outputs: config.ffnHidden, rng: &rng)
        ffn2 = Linear(name: "sasrec.ffn2", inputs: config.ffnHidden, outputs: d, rng: &rng)
    }

    public var parameters: [Parameter] { [itemEmbedding.table, position, wq, wk, wv] + ffn1.parameters + ffn2.parameters }

    /// What the user tower computed for one batch; the backward pass reads it.
    public struct UserForward {
        public var users: Matrix                   // u (B, d)
        var sequences: [[Int]]
        var x: [Matrix]                            // per sequence (n, d)
        var k: [Matrix], v: [Matrix], q: [[Float]]
        var attention: [[Float]]
        var h: Matrix                              // (B, d)
        var hidden: Matrix                         // ReLU(h W1 + b1) (B, ffnHidden)
    }

    /// User tower for a batch of histories (item ids, oldest first; only the last `maxLength` are used).
    /// An empty history gives u = FFN residual of h = 0.
    public func userForward(_ histories: [ArraySlice<Int32>]) -> UserForward {
        let d = config.dim, l = config.maxLength
        let scale = 1 / Float(d).squareRoot()
        var h = Matrix(rows: histories.count, cols: d)
        var sequences: [[Int]] = [], xs: [Matrix] = [], ks: [Matrix] = [], vs: [Matrix] = [], qs: [[Float]] = [], atts: [[Float]] = []
        for (b, history) in histories.enumerated() {
            let seq = history.suffix(l).map(Int.init)
            sequences.append(seq)
            let n = seq.count
            guard n > 0 else {
                xs.append(Matrix(rows: 0, cols: d)); ks.append(Matrix(rows: 0, cols: d)); vs.append(Matrix(rows: 0, cols: d))
                qs.append([Float](repeating: 0, count: d)); atts.append([])
                continue
            }
            var x = itemEmbedding.forward(seq)
            x.addScaled(position.value.rows((l - n)..<l))
            let q = matmul(x.rows((n - 1)..<n), wq.value).storage
            let k = matmul(x, wk.value), v = matmul(x, wv.value)
            let scores = (0..<n).map { j in zip(q, k.row(j)).reduce(Float(0)) { $0 + $1.0 * $1.1 } * scale }
            let a = Softmax.forward(vector: scores)
            for c in 0..<d {
                var s = x[n - 1, c]
                for j in 0..<n { s += a[j] * v[j, c] }
                h[b, c] = s
            }
            xs.append(x); ks.append(k); vs.append(v); qs.append(q); atts.append(a)
        }
        let hidden = ReLU.forward(ffn1.forward(h))
        var u = ffn2.forward(hidden)
        u.addScaled(h)
        return UserForward(users: u, sequences: sequences, x: xs, k: ks, v: vs, q: qs, attention: atts, h: h, hidden: hidden)
    }

    /// The user tower's attention for one history: softmax weights of its most recent position over its last
    /// min(history, maxLength) behaviours, oldest first (what Fig. 5 shows for SASRec).
    public func attention(history: ArraySlice<Int32>) -> [Float] {
        userForward([history]).attention[0]
    }

    /// Accumulates the parameters' gradients for dLoss/du (B, d).
    public func userBackward(_ f: UserForward, dUsers: Matrix) {
        let d = config.dim, l = config.maxLength
        let scale = 1 / Float(d).squareRoot()
        // u = h + FFN(h).
        var dh = ffn1.backward(x: f.h, dy: ReLU.backward(y: f.hidden, dy: ffn2.backward(x: f.hidden, dy: dUsers)))
        dh.addScaled(dUsers)
        for (b, seq) in f.sequences.enumerated() where !seq.isEmpty {
            let n = seq.count, x = f.x[b], k = f.k[b], v = f.v[b], q = f.q[b], a = f.attention[b]
            let g = Array(dh.row(b))
            // h = x_last + Σ a_j v_j; a = softmax(s), s_j = q·k_j·scale.
            var dV = Matrix(rows: n, cols: d), dK = Matrix(rows: n, cols: d)
            let da = (0..<n).map { j in zip(g, v.row(j)).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
            let mean = zip(a, da).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            var dq = [Float](repeating: 0, count: d)
            for j in 0..<n {
                let ds = a[j] * (da[j] - mean) * scale
                for c in 0..<d {
                    dV[j, c] = a[j] * g[c]
                    dK[j, c] = ds * q[c]
                    dq[c] += ds * k[j, c]
                }
            }
            let xLast = x.rows((n - 1)..<n)
            let dqM = Matrix(rows: 1, cols: d, storage: dq)
            BLAS.gemm(xLast.view(), transposeA: true, dqM.view(), beta: 1, into: &wq.grad)
            BLAS.gemm(x.view(), transposeA: true, dK.view(), beta: 1, into: &wk.grad)
            BLAS.gemm(x.view(), transposeA: true, dV.view(), beta: 1, into: &wv.grad)
            var dx = matmul(dK, wk.value, transposeB: true) + matmul(dV, wv.value, transposeB: true)
            let dxLast = matmul(dqM, wq.value, transposeB: true)
            for c in 0..<d { dx[n - 1, c] += dxLast[0, c] + g[c] }
            itemEmbedding.backward(ids: seq, de: dx)
            for j in 0..<n { for c in 0..<d { position.grad[l - n + j, c] += dx[j, c] } }
        }
    }

    /// Sampled-softmax loss of a batch: row b's positive is `positives[b]`, the candidates are all positives
    /// then `negatives`; a candidate equal to the row's positive (other than its own column) is masked.
    /// Returns the mean cross-entropy and accumulates every gradient.
    @discardableResult
    public func trainStep(histories: [ArraySlice<Int32>], positives: [Int], negatives: [Int]) -> Double {
        let (f, candidates, c, logits, loss) = sampledSoftmax(histories: histories, positives: positives, negatives: negatives)
        let b = positives.count
        var p = Softmax.forward(logits)
        for r in 0..<b { p[r, r] -= 1 }
        p.scale(1 / Float(b))
        itemEmbedding.backward(ids: candidates, de: matmul(p, f.users, transposeA: true))
        userBackward(f, dUsers: matmul(p, c))
        return loss
    }

    /// The same loss without gradients.
    public func loss(histories: [ArraySlice<Int32>], positives: [Int], negatives: [Int]) -> Double {
        sampledSoftmax(histories: histories, positives: positives, negatives: negatives).loss
    }

    func sampledSoftmax(histories: [ArraySlice<Int32>], positives: [Int], negatives: [Int])
        -> (f: UserForward, candidates: [Int], c: Matrix, logits: Matrix, loss: Double) {
        let f = userForward(histories)
        let candidates = positives + negatives
        let c = itemEmbedding.forward(candidates)
        var logits = matmul(f.users, c, transposeB: true)       // (B, B + M)
        let b = positives.count
        var loss = 0.0
        for r in 0..<b {
            for j in 0..<candidates.count where j != r && candidates[j] == positives[r] { logits[r, j] = -.infinity }
            // −log softmax_r(r) = logsumexp(row) − logit_rr, in Double.
            let row = logits.row(r)
            let m = Double(row.max()!)
            loss += m + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) }) - Double(logits[r, r])
        }
        return (f, candidates, c, logits, loss / Double(max(1, b)))
    }

    /// The K best items for one history by exact search over the whole catalogue, best first; `exclude`d items are
    /// never returned.
    public func retrieve(history: ArraySlice<Int32>, k: Int, exclude: Set<Int32> = []) -> [Int32] {
        let u = userForward([history]).users.storage
        var scores = [Float](repeating: 0, count: itemEmbedding.count)
        BLAS.gemv(itemEmbedding.table.value.view(), u, into: &scores)
        for i in exclude where Int(i) < scores.count { scores[Int(i)] = -.infinity }
        return TopK.indices(scores, k: min(k, max(0, scores.count - exclude.count))).map(Int32.init)
    }
}

/// SASRec training: instances are training users cut at a random point (history before, the next behaviour
/// the positive), `batch` per step, Adam; validation Recall@K on the validation users keeps the best weights
/// and stops early, as for the tree models.
public enum SASRecTraining {
    public struct Options: Sendable {
        public var config = SASRec.Config()
        public var steps = 5000
        public var batch = 128
        public var learningRate: Float = 1e-3
        public var seed: UInt64 = 1
        public var evalEvery = 250
        public var patience = 4
        public var validationUsers = 60
        public var validationK = 50
        /// The positive of an instance, as the tree models' `LevelwiseTrainer.Config.targets`: the next item not in
        /// the history (`unseenItems`, the test's definition) or the next behaviour (`nextBehaviours`).
        public var targets = LevelwiseTrainer.TargetSampling.unseenItems
        public init() {}
    }

    public struct Outcome {
        public var model: SASRec
        public var stepsRun: Int
        public var samples: Int
        public var lastLoss: Double
        public var trainSeconds: Double
        /// Best validation Recall@K and its step.
        public var best: (recall: Double, step: Int)?
        /// Every validation (its Recall@K) in order.
        public var history: [Validation] = []
        public var samplesPerSecond: Double { Double(samples) / max(1e-9, trainSeconds) }
    }

    public static func run(dataset: Dataset, split: EvaluationSplit, options: Options,
                           progress: ((Int, Double) -> Void)? = nil) throws -> Outcome {
        let users = split.train.filter { dataset.sequenceLength(of: $0) > 1 }
        guard !users.isEmpty, dataset.itemCount > 0 else {
            throw InputError(file: dataset.name, problem: "no training user has more than one behaviour",
                             fix: "Use a dataset with longer sequences")
        }
        var total = 0.0
        let cdf = users.map { total += Double(dataset.sequenceLength(of: $0) - 1); return total }
        let nextFirst = options.targets == .unseenItems ? LevelwiseTrainer.nextFirstOccurrences(dataset, users: users) : []
        let model = SASRec(config: options.config, items: dataset.itemCount, seed: options.seed)
        let validation = Array(EvaluationSplit.usersWithTargets(split.validation, in: dataset).prefix(options.validationUsers))
        var rng = Xoshiro256StarStar(seed: options.seed).derived("sasrec-samples")
        var adam = Adam(learningRate: options.learningRate)
        let parameters = model.parameters
        var stopping = EarlyStopping(patience: options.patience)
        var samples = 0, stepsRun = 0, lastLoss = 0.0, trainSeconds = 0.0
        var history: [Validation] = []
        for step in 1...max(1, options.steps) {
            let t0 = Date()
            model.zeroGrad()
            var histories: [ArraySlice<Int32>] = [], positives: [Int] = []
            for _ in 0..<options.batch {
                // With unseen targets, a cut after which the user has no new item is drawn again (a few times at most).
                for _ in 0..<(options.targets == .unseenItems ? LevelwiseTrainer.maximumDraws : 1) {
                    let u = users[rng.nextIndex(cdf: cdf)]
                    let r = dataset.behaviours(of: u)
                    let cut = r.lowerBound + 1 + rng.nextInt(below: r.count - 1)
                    let target = options.targets == .unseenItems ? Int(nextFirst[cut]) : cut
                    guard target < r.upperBound else { continue }
                    histories.append(dataset.behaviourItems[r.lowerBound..<cut])
                    positives.append(Int(dataset.behaviourItems[target]))
                    break
                }
            }
            precondition(!histories.isEmpty, "SASRec: no instance with a target in \(LevelwiseTrainer.maximumDraws) draws")
            let negatives = (0..<options.config.negatives).map { _ in rng.nextInt(below: dataset.itemCount) }
            lastLoss = model.trainStep(histories: histories, positives: positives, negatives: negatives)
            adam.step(parameters)
            samples += histories.count
            stepsRun = step
            trainSeconds += Date().timeIntervalSince(t0)
            progress?(step, lastLoss)
            guard options.evalEvery > 0, !validation.isEmpty, step % options.evalEvery == 0 || step == options.steps else { continue }
            let recall = Evaluation.evaluate(sasrec: model, dataset: dataset, users: validation, k: options.validationK).recall
            history.append(Validation(step: step, score: recall))
            if stopping.record(score: recall, step: step, parameters: parameters).stop { break }
        }
        stopping.restoreBest(into: parameters)
        return Outcome(model: model, stepsRun: stepsRun, samples: samples, lastLoss: lastLoss, trainSeconds: trainSeconds,
                       best: stopping.best.map { ($0.score, $0.step) }, history: history)
    }
}
