import Foundation
import MISSCore
import MISSData

/// The evaluation protocol's harness: for every evaluation user, retrieve K items from the whole
/// catalogue (history items excluded) and compare with the held-out half.
public enum Evaluation {
    public struct Report: Sendable, Codable {
        public var method: String
        public var users: Int
        public var k: Int
        public var recall: Double
        public var precision: Double
        /// H@hRecall per level h (index = level), MISS only.
        public var hierarchicalRecall: [Double]
        /// Items returned per user, on average, and the users who got fewer than K (a catalogue with fewer than K
        /// unseen items; or, without `skipSeenSubtrees`, a beam full of already-seen items' subtrees).
        public var meanReturned: Double = 0
        public var usersShort = 0
        /// Per evaluated user (dataset index, in evaluation order): Recall@K, Precision@K and, for the tree
        /// models, H@hRecall per level. Paired comparisons and intervals resample these.
        public var userIndices: [Int] = []
        public var userRecall: [Double] = []
        public var userPrecision: [Double] = []
        public var userHierarchicalRecall: [[Double]] = []
    }

    /// The tree levels that correspond to the paper's levels 13, 16, 19 and 22 of its 22-level tree (§6.3, Fig. 4) on a
    /// tree of depth `leafLevel`: the same fraction of the depth, rounded (at least 1, distinct).
    public static let paperLevels = [13, 16, 19, 22]
    public static func correspondingLevels(leafLevel: Int) -> [Int] {
        var out: [Int] = []
        for p in paperLevels {
            let h = max(1, min(leafLevel, Int((Double(p) * Double(leafLevel) / 22).rounded())))
            if !out.contains(h) { out.append(h) }
        }
        return out
    }

    /// H@hRecall averaged over the levels below the root (the root's is 1 by definition): the validation score.
    public static func meanOverLevels(_ hierarchicalRecall: [Double]) -> Double {
        hierarchicalRecall.dropFirst().reduce(0, +) / Double(max(1, hierarchicalRecall.count - 1))
    }

    /// Beam-search retrieval with a trained estimator. The beam at the leaf level is `finalK = k`.
    /// `rankingObjective`: rank by that objective alone (`BeamSearch.Config`); nil is the paper's mean.
    public static func evaluate(estimator: NodeEstimator, tree: IndexTree, dataset: Dataset, users: [Int],
                                k: Int, beamSize: Int, method: String = "MISS", skipSeenSubtrees: Bool = true,
                                rankingObjective: Int? = nil, progress: ((Int) -> Void)? = nil) -> Report {
        let leafPositions = tree.itemLeafPositions()
        var perUser = PerUser()
        let weights = estimator.scoringWeights()   // the parameters do not change while it evaluates
        for (i, u) in users.enumerated() {
            progress?(i)
            let history = dataset.behaviourItems[EvaluationSplit.history(of: u, in: dataset)]
            let targets = EvaluationSplit.targetItems(of: u, in: dataset)
            guard !targets.isEmpty else { continue }
            let r = BeamSearch.run(estimator: estimator, tree: tree, context: estimator.context(history: history),
                                   config: .init(beamSize: beamSize, finalK: k, skipSeenSubtrees: skipSeenSubtrees,
                                                 rankingObjective: rankingObjective),
                                   exclude: Set(history), weights: weights)
            var levels = [Double](repeating: 0, count: tree.leafLevel + 1)
            for (h, beam) in r.beams.enumerated() {
                levels[h] = RetrievalMetrics.hierarchicalRecall(beam: beam, level: h, targets: targets, tree: tree,
                                                                itemLeafPositions: leafPositions)
            }
            perUser.add(u, retrieved: r.items, targets: targets, k: k, hierarchical: levels)
        }
        return perUser.report(method: method, k: k, levels: tree.leafLevel + 1)
    }

    /// The estimator without the tree: every leaf (item not in the history) scored by the estimator, the K
    /// best by mean probability. Separates the estimator's quality from the beam search's pruning: the gap
    /// between this and `evaluate` is what the tree costs. Expensive (all items per user): a diagnostic.
    public static func evaluateExhaustive(estimator: NodeEstimator, tree: IndexTree, dataset: Dataset, users: [Int], k: Int,
                                          progress: ((Int) -> Void)? = nil) -> Report {
        let leaves = Array(tree.nodes(atLevel: tree.leafLevel))
        var done = 0
        return evaluate(dataset: dataset, users: users, k: k, method: "all leaves") { history, seen in
            progress?(done)
            done += 1
            let ctx = estimator.context(history: history)
            let candidates = leaves.filter { !seen.contains(tree.item(ofLeaf: $0)) }
            var mean: [Float] = []
            mean.reserveCapacity(candidates.count)
            for chunk in stride(from: 0, to: candidates.count, by: 1024) {
                let nodes = Array(candidates[chunk..<min(candidates.count, chunk + 1024)])
                mean += BeamSearch.rankingScores(estimator.forward(ctx, nodes: nodes, keepSelections: false, backwardCaches: false).logits).mean
            }
            return TopK.indices(mean, k: k).map { tree.item(ofLeaf: candidates[$0]) }
        }
    }

    /// The popularity baseline: the K items most often seen by training users, minus the user's history.
    public static func popularity(dataset: Dataset, trainUsers: [Int], users: [Int], k: Int) -> Report {
        var counts = [Float](repeating: 0, count: dataset.itemCount)
        for u in trainUsers { for b in dataset.behaviours(of: u) { counts[Int(dataset.behaviourItems[b])] += 1 } }
        let ranking = TopK.indices(counts, k: dataset.itemCount).map(Int32.init)
        return evaluate(dataset: dataset, users: users, k: k, method: "popularity") { _, history in
            Array(ranking.lazy.filter { !history.contains($0) }.prefix(k))
        }
    }

    /// The SASRec two-tower baseline: exact top-K over all items for each user's history.
    public static func evaluate(sasrec: SASRec, dataset: Dataset, users: [Int], k: Int) -> Report {
        evaluate(dataset: dataset, users: users, k: k, method: "SASRec") { history, seen in
            sasrec.retrieve(history: history, k: k, exclude: seen)
        }
    }

    /// Recall and precision of a retriever without a tree: `retrieve(history, historySet)` gives K items.
    static func evaluate(dataset: Dataset, users: [Int], k: Int, method: String,
                         retrieve: (ArraySlice<Int32>, Set<Int32>) -> [Int32]) -> Report {
        var perUser = PerUser()
        for u in users {
            let history = dataset.behaviourItems[EvaluationSplit.history(of: u, in: dataset)]
            let targets = EvaluationSplit.targetItems(of: u, in: dataset)
            guard !targets.isEmpty else { continue }
            perUser.add(u, retrieved: retrieve(history, Set(history)), targets: targets, k: k)
        }
        return perUser.report(method: method, k: k, levels: nil)
    }

    /// Every evaluated user's results, in evaluation order; a report's means are their sums in that order over
    /// the count (every metric reads the per-user results collected once).
    struct PerUser {
        var users: [Int] = [], recall: [Double] = [], precision: [Double] = [], returned: [Int] = [], hierarchical: [[Double]] = []

        mutating func add(_ user: Int, retrieved: [Int32], targets: Set<Int32>, k: Int, hierarchical levels: [Double] = []) {
            users.append(user)
            recall.append(RetrievalMetrics.recall(retrieved: retrieved, targets: targets))
            precision.append(RetrievalMetrics.precision(retrieved: retrieved, targets: targets, k: k))
            returned.append(retrieved.count)
            hierarchical.append(levels)
        }

        /// `levels`: H@hRecall's levels (the tree's depth + 1), nil for a retriever without a tree.
        func report(method: String, k: Int, levels: Int?) -> Report {
            let n = Double(max(1, users.count))
            return Report(method: method, users: users.count, k: k, recall: recall.reduce(0, +) / n, precision: precision.reduce(0, +) / n,
                          hierarchicalRecall: levels.map { l in (0..<l).map { h in hierarchical.reduce(0) { $0 + $1[h] } / n } } ?? [],
                          meanReturned: Double(returned.reduce(0, +)) / n, usersShort: returned.filter { $0 < k }.count,
                          userIndices: users, userRecall: recall, userPrecision: precision,
                          userHierarchicalRecall: levels == nil ? [] : hierarchical)
        }
    }
}
