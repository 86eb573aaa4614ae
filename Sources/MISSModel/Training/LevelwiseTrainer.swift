import Foundation
import MISSCore
import MISSData

/// Level-wise training (Eq. 4–7). An instance is a training user cut at a random point: the history
/// is what came before, the targets what comes after, as the evaluation protocol defines them
/// (`TargetSampling.unseenItems`): the next few distinct items that are not in the history. At every
/// level h ≥ 1 the targets' ancestors are positives, one sample per node whose label t is whether any of the
/// targets under it has objective t (Eq. 4); `negatives` nodes of the same level per target are negatives,
/// never one of the level's positives. The loss is BCE summed over levels, nodes and objectives (Eq. 5–6).
/// One forward pass scores all of an instance's nodes together, each distinct node once.
public struct LevelwiseTrainer {
    /// Which behaviours after the cut are an instance's targets, and how their samples are labelled.
    public enum TargetSampling: String, Codable, Sendable, CaseIterable {
        /// The test's targets: the next `targetsPerInstance` distinct items after the cut that are not in the
        /// history (re-consumptions skipped, the instance redrawn when none is left); one sample per positive node
        /// and level with its targets' labels OR-ed; a negative is never a positive of the instance at its level.
        case unseenItems = "unseen-items"
        /// The next `targetsPerInstance` behaviours, re-consumptions included; one positive sample per target and
        /// level (an ancestor shared by several targets appears once per target, each with its own labels); a
        /// negative is kept distinct only from its own target's ancestor.
        case nextBehaviours = "next-behaviours"
    }

    public struct Config: Sendable {
        public var targets = TargetSampling.unseenItems
        public var negativesPerLevel = 5
        public var targetsPerInstance = 4
        public var instancesPerBatch = 16
        /// At most this many steps (`ModelTraining` may stop sooner). 4000: on SampleData a MISS model is still
        /// improving there; at 1000 or fewer early stopping ended every tree model on a plateau (docs/RESULTS.md).
        public var steps = 4000
        public var learningRate: Float = 2e-3
        public var minHistory = 2
        public var seed: UInt64 = 1
        /// Not in the paper (which samples a level's negatives uniformly): the fraction of negatives drawn
        /// near the positive instead, from the same level under the positive's ancestor `nearSpan` levels
        /// up (its "cousins": same topic, other style). 0 = the paper's sampling, with the same draws.
        public var nearNegatives = 0.0
        public var nearSpan = 3
        /// Near negatives only at levels ≥ this (the deep levels, where the beam's candidates are cousins);
        /// shallower levels keep the paper's uniform draws. 1 = every level.
        public var nearFromLevel = 1
        public init() {}
    }

    public struct Instance {
        public var user: Int
        public var cut: Int          // behaviour index: history = behaviours(of: user) before it
        /// Behaviour indices of the targets, in order.
        public var targets: [Int]
        public var sampling: TargetSampling
    }

    let dataset: Dataset
    let tree: IndexTree
    let users: [Int]
    let cdf: [Double]
    let leafPositions: [Int32]
    /// Per behaviour index b: the first behaviour at or after b (of the same user) whose item the user has not
    /// had before, or the user's end. An instance's unseen targets are a walk along it.
    let nextFirstOccurrence: [Int32]

    public init(dataset: Dataset, tree: IndexTree, users: [Int], minHistory: Int = 2) {
        self.dataset = dataset
        self.tree = tree
        self.users = users.filter { dataset.sequenceLength(of: $0) > minHistory }
        var s = 0.0
        cdf = self.users.map { s += Double(dataset.sequenceLength(of: $0) - minHistory); return s }
        leafPositions = tree.itemLeafPositions()
        nextFirstOccurrence = Self.nextFirstOccurrences(dataset, users: self.users)
    }

    /// `nextFirstOccurrence` for `users` (other users' entries are unused).
    static func nextFirstOccurrences(_ dataset: Dataset, users: [Int]) -> [Int32] {
        var next = [Int32](repeating: 0, count: dataset.behaviourCount)
        var lastUser = [Int32](repeating: -1, count: dataset.itemCount)
        var first: [Bool] = []
        for u in users {
            let r = dataset.behaviours(of: u)
            first.removeAll(keepingCapacity: true)
            for b in r {
                let item = Int(dataset.behaviourItems[b])
                first.append(lastUser[item] != Int32(u))
                lastUser[item] = Int32(u)
            }
            var upcoming = Int32(r.upperBound)
            for b in r.reversed() {
                if first[b - r.lowerBound] { upcoming = Int32(b) }
                next[b] = upcoming
            }
        }
        return next
    }

    /// The behaviours (indices) of the next `count` distinct items at or after `cut` that the user has not had
    /// before it, up to the user's `end`.
    func unseenTargets(from cut: Int, end: Int, count: Int) -> [Int] {
        var out: [Int] = []
        var b = cut < end ? Int(nextFirstOccurrence[cut]) : end
        while b < end && out.count < count {
            out.append(b)
            b = b + 1 < end ? Int(nextFirstOccurrence[b + 1]) : end
        }
        return out
    }

    /// Draws made before an instance with unseen targets is given up on (a batch then has one instance fewer).
    static let maximumDraws = 1000

    public func instance(_ rng: inout Xoshiro256StarStar, config: Config) -> Instance? {
        guard !users.isEmpty else { return nil }
        for _ in 0..<(config.targets == .unseenItems ? Self.maximumDraws : 1) {
            let u = users[rng.nextIndex(cdf: cdf)]
            let r = dataset.behaviours(of: u)
            let cut = r.lowerBound + config.minHistory + rng.nextInt(below: r.count - config.minHistory)
            switch config.targets {
            case .nextBehaviours:
                return Instance(user: u, cut: cut, targets: Array(cut..<min(r.upperBound, cut + config.targetsPerInstance)),
                                sampling: .nextBehaviours)
            case .unseenItems:
                let targets = unseenTargets(from: cut, end: r.upperBound, count: config.targetsPerInstance)
                if !targets.isEmpty { return Instance(user: u, cut: cut, targets: targets, sampling: .unseenItems) }
            }
        }
        return nil
    }

    /// The nodes of `node`'s level under its ancestor `span` levels up (at least level 1): a contiguous
    /// range, since children are contiguous and nodes are numbered level by level.
    func neighbourhood(of node: Int, level h: Int, span: Int) -> ClosedRange<Int> {
        let top = max(1, h - span)
        var a = node
        for _ in top..<h { a = Int(tree.parent[a]) }
        var lo = a, hi = a
        for _ in top..<h {
            lo = Int(tree.childStart[lo])
            hi = Int(tree.childStart[hi] + tree.childCount[hi]) - 1
        }
        return lo...hi
    }

    /// Nodes and labels (N, T) of an instance.
    /// `objectives`: label the first t objectives (all by default; 1 for a single-objective model such as TDM).
    /// `near`: the fraction of negatives drawn from the positive's neighbourhood (`Config.nearNegatives`), at
    /// levels ≥ `nearFrom` (`Config.nearFromLevel`; the others are drawn uniformly, as with `near` = 0).
    public func samples(_ inst: Instance, negatives: Int, objectives: Int? = nil, near: Double = 0, nearSpan: Int = 3,
                        nearFrom: Int = 1, _ rng: inout Xoshiro256StarStar) -> (nodes: [Int], labels: Matrix) {
        if inst.sampling == .unseenItems {
            return mergedSamples(inst, negatives: negatives, objectives: objectives, near: near, nearSpan: nearSpan, nearFrom: nearFrom, &rng)
        }
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
                let nearHere = near > 0 && h >= nearFrom
                let nearby = nearHere ? neighbourhood(of: node, level: h, span: nearSpan) : node...node
                for _ in 0..<negatives where level.count > 1 {
                    // Near (when asked at this level and the neighbourhood has more than the positive), else uniform.
                    let range = nearHere && nearby.count > 1 && rng.nextDouble() < near ? nearby : level.lowerBound...(level.upperBound - 1)
                    var neg = range.lowerBound + rng.nextInt(below: range.count)
                    if neg == node { neg = range.lowerBound + (neg - range.lowerBound + 1) % range.count }
                    nodes.append(neg)
                    labels.append(contentsOf: repeatElement(0, count: t))
                }
                node = Int(tree.parent[node])
            }
        }
        return (nodes, Matrix(rows: nodes.count, cols: t, storage: labels))
    }

    /// `samples` of `TargetSampling.unseenItems`, level by level from the leaves up: the level's positives (the
    /// targets' ancestors, each once, in order of first appearance, labels OR-ed over the targets under it), then
    /// `negatives` per target, drawn as `samples` draws them around that target's ancestor but redrawn while they
    /// hit one of the level's positives (a level whose nodes are all positive gets none).
    func mergedSamples(_ inst: Instance, negatives: Int, objectives: Int?, near: Double, nearSpan: Int, nearFrom: Int,
                       _ rng: inout Xoshiro256StarStar) -> (nodes: [Int], labels: Matrix) {
        var nodes: [Int] = []
        var labels: [Float] = []
        let t = min(objectives ?? dataset.objectives.count, dataset.objectives.count)
        var ancestors = inst.targets.map { tree.leafNode(position: Int(leafPositions[Int(dataset.behaviourItems[$0])])) }
        for h in stride(from: tree.leafLevel, through: 1, by: -1) {
            var positives: [Int] = [], bits: [UInt8] = []
            for (node, b) in zip(ancestors, inst.targets) {
                if let i = positives.firstIndex(of: node) { bits[i] |= dataset.behaviourLabels[b] } else {
                    positives.append(node); bits.append(dataset.behaviourLabels[b])
                }
            }
            for (node, label) in zip(positives, bits) {
                nodes.append(node)
                labels.append(contentsOf: (0..<t).map { label & (1 << UInt8($0)) != 0 ? 1 : 0 })
            }
            let level = tree.nodes(atLevel: h)
            let nearHere = near > 0 && h >= nearFrom
            if level.count > positives.count {
                for node in ancestors {
                    let nearby = nearHere ? neighbourhood(of: node, level: h, span: nearSpan) : node...node
                    // Near only where the neighbourhood holds a node that is not a positive; else uniform.
                    let nearUsable = nearHere && nearby.contains { !positives.contains($0) }
                    for _ in 0..<negatives {
                        let range = nearUsable && rng.nextDouble() < near ? nearby : level.lowerBound...(level.upperBound - 1)
                        var neg = range.lowerBound + rng.nextInt(below: range.count)
                        var draws = 1
                        while positives.contains(neg) {
                            // Redrawn (uniform over the range's other nodes); past a few draws the next node along.
                            neg = draws < 16 ? range.lowerBound + rng.nextInt(below: range.count)
                                : range.lowerBound + (neg - range.lowerBound + 1) % range.count
                            draws += 1
                        }
                        nodes.append(neg)
                        labels.append(contentsOf: repeatElement(0, count: t))
                    }
                }
            }
            ancestors = ancestors.map { Int(tree.parent[$0]) }
        }
        return (nodes, Matrix(rows: nodes.count, cols: t, storage: labels))
    }

    /// An instance's nodes once each, in order of first appearance, and each sample's index among them.
    /// An instance repeats nodes: its targets share their ancestors near the root, and the few nodes of the
    /// shallow levels are drawn again and again as negatives.
    public static func distinctNodes(_ nodes: [Int]) -> (nodes: [Int], index: [Int]) {
        var slot: [Int: Int] = [:], distinct: [Int] = []
        slot.reserveCapacity(nodes.count)
        let index = nodes.map { node -> Int in
            if let s = slot[node] { return s }
            slot[node] = distinct.count
            distinct.append(node)
            return distinct.count - 1
        }
        return (distinct, index)
    }

    /// One instance's BCE (summed over its samples and objectives) and its gradient, added to `estimator`'s;
    /// `samples`: the samples' nodes as `distinctNodes` gives them. The estimator scores each distinct node once; a
    /// node's dL/dlogit is the sum over the samples that hold it (the loss is a sum over samples, Eq. 5–6),
    /// so the gradient is that of scoring every sample.
    /// `packed`: the estimator's `trainingWeights()`, packed once for the step's instances.
    static func accumulateGradient(_ estimator: NodeEstimator, history: ArraySlice<Int32>,
                                   samples: (nodes: [Int], index: [Int]), labels: Matrix,
                                   packed: NodeEstimator.TrainingWeights? = nil) -> Double {
        let (distinct, index) = samples
        let ctx = estimator.context(history: history, workers: 1, packed: packed)
        let f = estimator.forward(ctx, nodes: distinct, scoringWeights: packed?.scoring)
        let (loss, dSamples) = BCEWithLogits.loss(logits: f.logits.gatherRows(index), labels: labels)
        var dLogits = Matrix(rows: distinct.count, cols: dSamples.cols)
        for (i, u) in index.enumerated() {
            for t in 0..<dSamples.cols { dLogits[u, t] += dSamples[i, t] }
        }
        estimator.backward(ctx, f, dLogits: dLogits, packed: packed)
        return loss
    }

    /// Gradient shards per step: a constant, so that results do not depend on the core count.
    static let gradientShards = 4

    /// A node's work that does not grow with the history (embeddings, MMoE), in behaviour-equivalents of
    /// GSU work: the MMoE's ≈ 3 × 2 × 160 × 256 FLOPs per node against 2 × 2 × 64 per (node, behaviour).
    static let nodeCostInBehaviours = 1000

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
        // Instances run in parallel in a fixed number of shards, each into its own gradient replica (shard s
        // takes instances s, s + S, …, costliest first); the replicas are summed in shard order. Neither the
        // timing nor the machine's core count changes the result.
        let shards = max(1, min(Self.gradientShards, config.instancesPerBatch))
        let replicas = (0..<shards).map { _ in estimator.gradientReplica() }
        typealias Job = (history: ArraySlice<Int32>, samples: (nodes: [Int], index: [Int]), labels: Matrix)
        /// A step's instances and their samples: the next draws of `rng`, whenever they are made.
        func sampled() -> [Job] {
            var jobs: [Job] = []
            for _ in 0..<config.instancesPerBatch {
                guard let inst = instance(&rng, config: config) else { continue }
                let (nodes, labels) = samples(inst, negatives: config.negativesPerLevel, objectives: estimator.config.objectives,
                                              near: config.nearNegatives, nearSpan: config.nearSpan, nearFrom: config.nearFromLevel, &rng)
                jobs.append((dataset.behaviourItems[dataset.behaviours(of: inst.user).lowerBound..<inst.cut], Self.distinctNodes(nodes), labels))
            }
            return jobs
        }
        let steps = max(1, config.steps)
        var upcoming = sampled()
        for step in 1...steps {
            let jobs = upcoming
            for r in replicas { r.syncValues(from: estimator); r.zeroGrad() }
            let packed = estimator.trainingWeights()   // the replicas' values: the same matrices
            // Each shard is a chain: its instances run one after another, in order, into its replica. The
            // workers take the next instance of whichever shard has the most work left (estimated from the
            // nodes and history lengths) and is not being worked on. Within a shard the costliest instances
            // go first, so that the last ones, which one worker may run while the other has nothing left,
            // are the cheapest.
            func cost(_ j: Int) -> Double {
                let h = jobs[j].history.count
                return Double(jobs[j].samples.nodes.count) * Double(min(h, estimator.config.coLength)
                                                            + min(h, estimator.config.mmLength) + Self.nodeCostInBehaviours)
            }
            let jobCosts = jobs.indices.map(cost)
            let chains = (0..<shards).map { w in
                stride(from: w, to: jobs.count, by: shards).sorted { a, b in jobCosts[a] > jobCosts[b] || (jobCosts[a] == jobCosts[b] && a < b) }
            }
            let costs = chains.map { $0.map { jobCosts[$0] } }
            let losses = UnsafeMutableBufferPointer<Double>.allocate(capacity: shards)
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: shards)
            defer { losses.deallocate(); counts.deallocate() }
            _ = losses.initialize(from: repeatElement(0, count: shards))
            _ = counts.initialize(from: repeatElement(0, count: shards))
            // A shard's sums are touched only by whoever runs its current instance.
            // The next step's samples are drawn by the first worker left without an instance of this step (they
            // depend on nothing this step computes: the same draws in the same order as between the steps).
            var drawn: [Job]?
            parallelChains(costs: costs, whenIdle: step < steps ? { drawn = sampled() } : nil) { w, item in
                let replica = replicas[w], j = chains[w][item]
                losses[w] += Self.accumulateGradient(replica, history: jobs[j].history, samples: jobs[j].samples, labels: jobs[j].labels,
                                                     packed: packed)
                counts[w] += jobs[j].samples.index.count
            }
            if step < steps { upcoming = drawn ?? sampled() }
            estimator.zeroGrad()
            for r in replicas {
                for (p, q) in zip(parameters, r.parameters) {
                    p.accumulateGradient(from: q)
                    q.value = Matrix(rows: 0, cols: 0)   // drop the shared reference: Adam updates in place
                }
            }
            let loss = losses.reduce(0, +), count = counts.reduce(0, +)
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
