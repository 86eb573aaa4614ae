import Foundation
import MISSCore
import MISSData

/// Item pairs that co-occur within `window` behaviours of each other in some users' sequences:
/// the item2item signal of item alignment (§3, Eq. 1–2). Sampled on the fly, deterministically.
public struct CooccurrenceSampler {
    let dataset: Dataset
    let users: [Int]
    let cdf: [Double]
    let window: Int

    public init(dataset: Dataset, users: [Int], window: Int = 5) {
        self.dataset = dataset
        self.users = users.filter { dataset.sequenceLength(of: $0) >= 2 }
        var s = 0.0
        cdf = self.users.map { u in s += Double(dataset.sequenceLength(of: u) - 1); return s }
        self.window = max(1, window)
    }

    public var isEmpty: Bool { users.isEmpty }

    /// A pair of distinct items; nil only if the users have no two distinct items at all.
    public func pair(_ rng: inout Xoshiro256StarStar) -> (Int, Int)? {
        for _ in 0..<64 {
            let u = users[rng.nextIndex(cdf: cdf)]
            let r = dataset.behaviours(of: u)
            let t = r.lowerBound + rng.nextInt(below: r.count - 1)
            let k = 1 + rng.nextInt(below: min(window, r.upperBound - 1 - t))
            let a = Int(dataset.behaviourItems[t]), b = Int(dataset.behaviourItems[t + k])
            if a != b { return (a, b) }
        }
        return nil
    }

    public func pairs(_ count: Int, _ rng: inout Xoshiro256StarStar) -> [(Int, Int)] {
        (0..<count).compactMap { _ in pair(&rng) }
    }
}

/// The multi-modal representation model (MRM) of Eq. 1: an MLP over the concatenated content blocks,
/// L2-normalised; trained with InfoNCE over co-occurring pairs (Eq. 2) plus masked-modality
/// reconstruction (one modality's block is zeroed at the input and predicted from the embedding).
public struct ItemAlignment {
    public struct Config: Sendable {
        public var outputDim = 64
        public var hidden = 128
        public var temperature: Float = 0.1
        public var batchSize = 256
        public var steps = 1500
        public var learningRate: Float = 2e-3
        public var window = 5
        public var maskProbability = 0.3
        public var reconstructionWeight: Float = 0.5
        public var seed: UInt64 = 1
        public init() {}
    }

    public let encoder: MLP
    public let decoder: Linear
    public let blocks: [Range<Int>]

    public init(inputDim: Int, blocks: [Range<Int>], config: Config) {
        var rng = Xoshiro256StarStar(seed: config.seed).derived("alignment-init")
        encoder = MLP(name: "mrm.encoder", sizes: [inputDim, config.hidden, config.outputDim], rng: &rng)
        decoder = Linear(name: "mrm.decoder", inputs: config.outputDim, outputs: inputDim, rng: &rng)
        self.blocks = blocks
    }

    public var parameters: [Parameter] { encoder.parameters + decoder.parameters }

    /// c = MRM(content), unit length (Eq. 1).
    public func embed(_ content: Matrix) -> Matrix {
        var out: [Matrix] = []
        var start = 0
        while start < content.rows {
            let end = min(content.rows, start + 4096)
            out.append(L2Normalize.forward(encoder.forward(content.rows(start..<end)).y).y)
            start = end
        }
        return Matrix.vstack(out)
    }

    public struct StepResult { public var contrastive: Double; public var reconstruction: Double }

    /// One optimisation step on a batch of pairs. Returns the two loss terms.
    mutating func step(content: Matrix, pairs: [(Int, Int)], config: Config, optimizer: inout Adam,
                       rng: inout Xoshiro256StarStar) -> StepResult {
        let b = pairs.count
        let ids = pairs.map(\.0) + pairs.map(\.1)
        let clean = content.gatherRows(ids)
        // Masked-modality input: per row, with some probability, zero one block.
        var input = clean
        var reconMask = Matrix(rows: 2 * b, cols: content.cols)
        for r in 0..<(2 * b) where rng.nextDouble() < config.maskProbability && blocks.count > 1 {
            let block = blocks[rng.nextInt(below: blocks.count)]
            for c in block { input[r, c] = 0; reconMask[r, c] = 1 }
        }
        let (hidden, cache) = encoder.forward(input)
        let (z, norms) = L2Normalize.forward(hidden)
        let anchors = z.rows(0..<b), positives = z.rows(b..<(2 * b))
        let nce = InfoNCE.loss(anchors: anchors, positives: positives, temperature: config.temperature)
        let recon = decoder.forward(z)
        let mse = MeanSquaredError.loss(prediction: recon, target: clean, mask: reconMask)

        for p in parameters { p.zeroGrad() }
        var dz = Matrix.vstack([nce.dAnchors, nce.dPositives])
        var dRecon = mse.dPrediction
        dRecon.scale(config.reconstructionWeight)
        dz.addScaled(decoder.backward(x: z, dy: dRecon))
        let dHidden = L2Normalize.backward(y: z, norms: norms, dy: dz)
        _ = encoder.backward(cache: cache, dy: dHidden)
        optimizer.step(parameters)
        return StepResult(contrastive: nce.loss, reconstruction: mse.loss)
    }

    /// Trains on pairs from `trainUsers`; reports (step, result) to `progress`.
    public static func train(content: ContentFeatures, dataset: Dataset, trainUsers: [Int], config: Config,
                             progress: ((Int, StepResult) -> Void)? = nil) throws -> ItemAlignment {
        let sampler = CooccurrenceSampler(dataset: dataset, users: trainUsers, window: config.window)
        guard !sampler.isEmpty else {
            throw InputError(file: dataset.name, problem: "no training user has two behaviours, so there are no item pairs to align on",
                             fix: "Use a dataset with longer user sequences")
        }
        var model = ItemAlignment(inputDim: content.matrix.cols, blocks: content.blocks.map(\.columns), config: config)
        var rng = Xoshiro256StarStar(seed: config.seed).derived("alignment-batches")
        var adam = Adam(learningRate: config.learningRate)
        for s in 0..<config.steps {
            let pairs = sampler.pairs(config.batchSize, &rng)
            guard pairs.count >= 2 else { continue }
            let r = model.step(content: content.matrix, pairs: pairs, config: config, optimizer: &adam, rng: &rng)
            progress?(s + 1, r)
        }
        return model
    }
}

/// item2item Recall@K: for each held-out pair (i, j), whether j is among the K items most similar
/// to i (cosine, i itself excluded). Averaged over pairs.
public enum ItemToItemRecall {
    public static func evaluate(embeddings: Matrix, pairs: [(Int, Int)], ks: [Int]) -> [Int: Double] {
        let e = embeddings.l2NormalizedRows()
        var hits = [Int: Int]()
        let chunk = 256
        var start = 0
        while start < pairs.count {
            let batch = Array(pairs[start..<min(pairs.count, start + chunk)])
            let q = e.gatherRows(batch.map(\.0))
            let s = matmul(q, e, transposeB: true)  // (batch, items)
            for (r, (i, j)) in batch.enumerated() {
                let target = s[r, j]
                // Rank of j = number of other items scoring strictly higher (i itself excluded).
                var higher = 0
                for c in 0..<s.cols where c != i && c != j && s[r, c] > target { higher += 1 }
                for k in ks where higher < k { hits[k, default: 0] += 1 }
            }
            start += chunk
        }
        return Dictionary(uniqueKeysWithValues: ks.map { ($0, pairs.isEmpty ? 0 : Double(hits[$0] ?? 0) / Double(pairs.count)) })
    }
}

/// The embeddings file written by `miss embed`: raw content features and the aligned, frozen MM embeddings.
public struct ItemEmbeddings: Sendable {
    public static let fileFormat = "miss-embeddings"
    public static let fileVersion = 1

    public var content: Matrix
    public var multimodal: Matrix
    public var textSource: String
    public var metadata: [String: String]

    public init(content: Matrix, multimodal: Matrix, textSource: String, metadata: [String: String] = [:]) {
        self.content = content
        self.multimodal = multimodal
        self.textSource = textSource
        self.metadata = metadata
    }

    public func write(to url: URL) throws {
        var meta = metadata
        meta["format"] = Self.fileFormat
        meta["version"] = String(Self.fileVersion)
        meta["text_source"] = textSource
        var w = SafetensorsWriter(metadata: meta)
        w.add("content", matrix: content)
        w.add("mm", matrix: multimodal)
        try w.write(to: url)
    }

    public static func load(from url: URL, expectedItems: Int? = nil) throws -> ItemEmbeddings {
        let path = url.path
        let fix = "Recompute it with `miss embed`"
        do {
            let f = try SafetensorsFile(path: path)
            guard f.metadata["format"] == fileFormat else {
                throw InputError(file: path, location: "__metadata__.format", problem: "is not a MISS embeddings file", fix: fix)
            }
            guard f.metadata["version"] == String(fileVersion) else {
                throw InputError(file: path, location: "__metadata__.version",
                                 problem: "embeddings format version \(f.metadata["version"] ?? "missing") is not \(fileVersion)", fix: fix)
            }
            let e = ItemEmbeddings(content: try f.matrix("content"), multimodal: try f.matrix("mm"),
                                   textSource: f.metadata["text_source"] ?? "unknown", metadata: f.metadata)
            guard e.content.rows == e.multimodal.rows else {
                throw InputError(file: path, location: "mm", problem: "has \(e.multimodal.rows) rows but content has \(e.content.rows)", fix: fix)
            }
            if let expectedItems, expectedItems != e.multimodal.rows {
                throw InputError(file: path, location: "mm", problem: "has \(e.multimodal.rows) items but the dataset has \(expectedItems)",
                                 fix: "Compute the embeddings for this dataset with `miss embed`")
            }
            return e
        } catch let e as MappedFile.Failure {
            throw InputError(file: path, problem: e.reason, fix: fix)
        } catch let e as SafetensorsError {
            throw InputError(file: path, safetensors: e, fix: fix)
        }
    }
}
