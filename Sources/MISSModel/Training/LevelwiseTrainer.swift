import Foundation
import MISSCore
import MISSData

/// Level-wise training (Eq. 4–7). An instance is a training user cut at a random point: the history
/// is what came before, the targets the next few behaviours. For every target and every level h ≥ 1
/// the target's ancestor is a positive (label t = whether the behaviour has objective t, Eq. 4) and
/// `negatives` random nodes of the same level are negatives; the loss is BCE summed over levels,
/// nodes and objectives (Eq. 5–6). One forward pass scores all of an instance's nodes together.
public struct LevelwiseTrainer {
    public struct Config: Sendable {
        public var negativesPerLevel = 5
        public var targetsPerInstance = 4
        public var instancesPerBatch = 16
        public var steps = 500
        public var learningRate: Float = 2e-3
        public var minHistory = 2
        public var seed: UInt64 = 1
        public init() {}
    }

    public struct Instance {
        public var user: Int
        public var cut: Int          // behaviour index: history = behaviours(of: user) before it
        public var targets: Range<Int>
    }

    let dataset: Dataset
    let tree: IndexTree
    let users: [Int]
    let cdf: [Double]
    let leafPositions: [Int32]

    public init(dataset: Dataset, tree: IndexTree, users: [Int], minHistory: Int = 2) {
        self.dataset = dataset
        self.tree = tree
        self.users = users.filter { dataset.sequenceLength(of: $0) > minHistory }
        var s = 0.0
        cdf = self.users.map { s += Double(dataset.sequenceLength(of: $0) - minHistory); return s }
        leafPositions = tree.itemLeafPositions()
    }

    public func instance(_ rng: inout Xoshiro256StarStar, config: Config) -> Instance? {
        guard !users.isEmpty else { return nil }
        let u = users[rng.nextIndex(cdf: cdf)]
        let r = dataset.behaviours(of: u)
        let cut = r.lowerBound + config.minHistory + rng.nextInt(below: r.count - config.minHistory)
        return Instance(user: u, cut: cut, targets: cut..<min(r.upperBound, cut + config.targetsPerInstance))
    }

    /// Nodes and labels (N, T) of an instance.
    /// `objectives`: label the first t objectives (all by default; 1 for a single-objective model such as TDM).
    public func samples(_ inst: Instance, negatives: Int, objectives: Int? = nil, _ rng: inout Xoshiro256StarStar) -> (nodes: [Int], labels: Matrix) {
        var nodes: [Int] = []
        var labels: [Float] = []
        let t = min(objectives ?? dataset.objectives.count, dataset.objectives.count)
        for b in inst.targets {
            let item = Int(dataset.behaviourItems[b])
            let leaf = tree.leafNode(position: Int(leafPositions[item]))
            let bits = dataset.behaviourLabels[b]
            var node = leaf
            for h in stride(from: tree.leafLevel, through: 1, by: -1) {
                nodes.append(node)
                labels.append(contentsOf: (0..<t).map { bits & (1 << UInt8($0)) != 0 ? 1 : 0 })
                let level = tree.nodes(atLevel: h)
                for _ in 0..<negatives where level.count > 1 {
                    var neg = level.lowerBound + rng.nextInt(below: level.count)
                    if neg == node { neg = level.lowerBound + (neg - level.lowerBound + 1) % level.count }
                    nodes.append(neg)
                    labels.append(contentsOf: repeatElement(0, count: t))
                }
                node = Int(tree.parent[node])
            }
        }
        return (nodes, Matrix(rows: nodes.count, cols: t, storage: labels))
    }

    public struct StepReport { public var step: Int; public var loss: Double; public var samples: Int }

    /// What `control` tells the loop after a step.
    public enum Control { case proceed, stop }

    /// Trains `estimator` in place (its parameters are reference types) with Adam. `control` runs after every
    /// step (validation, checkpoints, early stopping) and may end training early.
    public func train(_ estimator: NodeEstimator, config: Config, progress: ((StepReport) -> Void)? = nil,
                      control: ((StepReport) throws -> Control)? = nil) throws {
        guard !users.isEmpty else {
            throw InputError(file: dataset.name, problem: "no training user has more than \(config.minHistory) behaviours",
                             fix: "Use a dataset with longer sequences")
        }
        var rng = Xoshiro256StarStar(seed: config.seed).derived("levelwise-samples")
        var adam = Adam(learningRate: config.learningRate)
        let parameters = estimator.parameters
        for step in 1...max(1, config.steps) {
            estimator.zeroGrad()
            var loss = 0.0, count = 0
            for _ in 0..<config.instancesPerBatch {
                guard let inst = instance(&rng, config: config) else { continue }
                let (nodes, labels) = samples(inst, negatives: config.negativesPerLevel, objectives: estimator.config.objectives, &rng)
                let history = dataset.behaviourItems[dataset.behaviours(of: inst.user).lowerBound..<inst.cut]
                let ctx = estimator.context(history: history)
                let f = estimator.forward(ctx, nodes: nodes)
                let (l, dLogits) = BCEWithLogits.loss(logits: f.logits, labels: labels)
                estimator.backward(ctx, f, dLogits: dLogits)
                loss += l
                count += nodes.count
            }
            // Mean over the batch's samples: scale the summed gradients accordingly.
            let scale = 1 / Float(max(1, count))
            for p in parameters {
                if p.isSparse { p.sparseGrad.scale(scale) } else { p.grad.scale(scale) }
            }
            adam.step(parameters)
            let report = StepReport(step: step, loss: loss / Double(max(1, count)), samples: count)
            progress?(report)
            if try control?(report) == .stop { return }
        }
    }
}
