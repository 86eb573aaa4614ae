import Foundation
import MISSCore

/// Top-down beam search (Eq. 8–10): at each level score the children of the beam with the estimator,
/// keep the best `beamSize` by the mean probability over objectives, and at the leaf level return the
/// best `finalK` items. With `trace` the result keeps what the explorer shows: every level's
/// candidates, their per-objective and mean scores, which were kept, and both GSUs' selections.
public enum BeamSearch {
    public struct Config: Sendable {
        public var beamSize = 400
        public var finalK = 50
        /// Drop every inner candidate whose leaves are all excluded items before it is scored. Such a node can
        /// never yield an item, yet it would take a beam slot: without this, a user whose history fills the
        /// beam's last levels gets fewer than `finalK` items (ml-latest-small at K = 200: 24 of 122 users;
        /// docs/RESULTS.md). Off reproduces the plain beam search of Eq. 8–10, which excludes only leaves.
        public var skipSeenSubtrees = true
        /// Rank by this objective's probability alone instead of the paper's mean over objectives (nil).
        public var rankingObjective: Int?
        public init(beamSize: Int = 400, finalK: Int = 50, skipSeenSubtrees: Bool = true, rankingObjective: Int? = nil) {
            self.beamSize = beamSize
            self.finalK = finalK
            self.skipSeenSubtrees = skipSeenSubtrees
            self.rankingObjective = rankingObjective
        }
    }

    public struct LevelTrace: Sendable {
        public var level: Int
        public var candidates: [Int]
        /// σ(logit) per candidate and objective (N, T).
        public var probabilities: Matrix
        /// Mean over objectives: the ranking score.
        public var meanScores: [Float]
        public var kept: [Bool]
        /// Children of the previous level's beam that were not scored because every item under them is excluded
        /// (at the leaf level: the excluded leaves themselves; above it, only with `skipSeenSubtrees`).
        public var skipped: Int
        public var coGSU: NodeEstimator.GSUResult
        public var mmGSU: NodeEstimator.GSUResult
    }

    public struct Result: Sendable {
        /// Retrieved items, best first, and their mean scores.
        public var items: [Int32]
        public var scores: [Float]
        /// Beam (kept nodes) at every level; `beams[0]` is the root.
        public var beams: [[Int]]
        public var levels: [LevelTrace]
    }

    /// σ(logit) per node and objective, and the ranking score: their mean over objectives (Eq. 8–10), or with
    /// `objective` that objective's probability alone.
    public static func rankingScores(_ logits: Matrix, objective: Int? = nil) -> (probabilities: Matrix, mean: [Float]) {
        let probabilities = logits.map(sigmoid)
        if let objective {
            precondition(objective >= 0 && objective < probabilities.cols, "ranking objective \(objective) of \(probabilities.cols)")
            return (probabilities, (0..<probabilities.rows).map { probabilities[$0, objective] })
        }
        return (probabilities, probabilities.rowSums().map { $0 / Float(probabilities.cols) })
    }

    /// `exclude`: items never returned (the protocol excludes the user's history). `weights`: the estimator's
    /// `scoringWeights()`, packed once for many requests; by default they are packed once for this one.
    public static func run(estimator: NodeEstimator, tree: IndexTree, context: UserContext, config: Config,
                           exclude: Set<Int32> = [], trace: Bool = false, weights: NodeEstimator.ScoringWeights? = nil) -> Result {
        let weights = weights ?? estimator.scoringWeights()
        var beam = [0]
        var beams = [[0]]
        var levels: [LevelTrace] = []
        var finalItems: [Int32] = [], finalScores: [Float] = []
        // With `skipSeenSubtrees`: the excluded items' leaf positions, sorted; a node's leaves are the positions
        // leafStart..<leafEnd, so the excluded ones under it are a range of this array.
        let seen = config.skipSeenSubtrees && !exclude.isEmpty
            ? exclude.map { estimator.itemLeafNode[Int($0)] - Int32(tree.levelStarts[tree.leafLevel]) }.sorted() : []
        func firstIndex(atLeast x: Int32) -> Int {
            var a = 0, b = seen.count
            while a < b { let m = (a + b) / 2; if seen[m] < x { a = m + 1 } else { b = m } }
            return a
        }
        func hasUnseenLeaf(_ node: Int) -> Bool {
            let lo = tree.leafStart[node], hi = tree.leafEnd[node]
            return Int(hi - lo) > firstIndex(atLeast: hi) - firstIndex(atLeast: lo)
        }
        for h in 1...max(1, tree.leafLevel) where tree.leafLevel >= 1 {
            var candidates = beam.flatMap { Array(tree.children(of: $0)) }
            let children = candidates.count
            let isLeafLevel = h == tree.leafLevel
            if isLeafLevel && !exclude.isEmpty {
                candidates = candidates.filter { !exclude.contains(tree.item(ofLeaf: $0)) }
            } else if !seen.isEmpty {
                candidates = candidates.filter(hasUnseenLeaf)
            }
            let f = estimator.forward(context, nodes: candidates, keepSelections: trace, backwardCaches: false, scoringWeights: weights)
            let (probabilities, mean) = rankingScores(f.logits, objective: config.rankingObjective)
            let keep = TopK.indices(mean, k: isLeafLevel ? config.finalK : config.beamSize)
            beam = keep.map { candidates[$0] }
            beams.append(beam)
            if trace {
                var kept = [Bool](repeating: false, count: candidates.count)
                for i in keep { kept[i] = true }
                levels.append(LevelTrace(level: h, candidates: candidates, probabilities: probabilities, meanScores: mean,
                                         kept: kept, skipped: children - candidates.count, coGSU: f.co, mmGSU: f.mm))
            }
            if isLeafLevel {
                finalItems = beam.map { tree.item(ofLeaf: $0) }
                finalScores = keep.map { mean[$0] }
            }
        }
        return Result(items: finalItems, scores: finalScores, beams: beams, levels: levels)
    }
}

/// Retrieval metrics of the evaluation protocol (Eq. 17).
public enum RetrievalMetrics {
    /// |retrieved ∩ targets| / |targets| (0 when there are no targets).
    public static func recall(retrieved: [Int32], targets: Set<Int32>) -> Double {
        targets.isEmpty ? 0 : Double(Set(retrieved).intersection(targets).count) / Double(targets.count)
    }

    /// |retrieved ∩ targets| / K.
    public static func precision(retrieved: [Int32], targets: Set<Int32>, k: Int) -> Double {
        k == 0 ? 0 : Double(Set(retrieved).intersection(targets).count) / Double(k)
    }

    /// H@hRecall (Eq. 17): the share of the targets' level-h ancestors that are in the beam at level h.
    public static func hierarchicalRecall(beam: [Int], level h: Int, targets: Set<Int32>, tree: IndexTree,
                                          itemLeafPositions: [Int32]) -> Double {
        let ancestors = Set(targets.map { item -> Int in
            tree.ancestor(of: tree.leafNode(position: Int(itemLeafPositions[Int(item)])), atLevel: h)
        })
        guard !ancestors.isEmpty else { return 0 }
        return Double(ancestors.intersection(beam).count) / Double(ancestors.count)
    }
}
