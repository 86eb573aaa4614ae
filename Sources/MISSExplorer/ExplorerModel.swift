import Foundation
import MISSCore
import MISSData
import MISSModel

/// Immutable reference data the views read: titles, node labels, the tree's shape. Shared by value
/// states (a class so that copying a state does not copy the catalogue); never mutated after init.
public final class Catalog: Sendable {
    public let datasetName: String
    public let objectives: [String]
    public let itemIDs: [String]
    public let itemTitles: [String]
    /// Per node: its label (a leaf's item title; an inner node's dominant category and its share) and leaf count.
    public let nodeLabels: [String]
    public let nodeLeaves: [Int32]
    public let parent: [Int32]
    public let levelStarts: [Int]
    public let leafItems: [Int32]
    public let config: EstimatorConfig

    public init(dataset: Dataset, tree: IndexTree, config: EstimatorConfig) {
        datasetName = dataset.name
        objectives = dataset.objectives
        itemIDs = dataset.itemIDs
        itemTitles = dataset.itemTitles
        parent = tree.parent
        levelStarts = tree.levelStarts
        leafItems = tree.leafItems
        self.config = config
        var labels = [String](repeating: "", count: tree.nodeCount)
        var leaves = [Int32](repeating: 0, count: tree.nodeCount)
        let categories = dataset.categoryNames
        for node in 0..<tree.nodeCount {
            let items = tree.items(under: node)
            leaves[node] = Int32(items.count)
            if tree.level(of: node) == tree.leafLevel, let item = items.first {
                labels[node] = dataset.itemTitles[Int(item)]
                continue
            }
            var counts = [Int](repeating: 0, count: categories.count)
            for item in items {
                let c = Int(dataset.itemCategories[Int(item)])
                if c >= 0 && c < counts.count { counts[c] += 1 }
            }
            if let best = counts.indices.max(by: { counts[$0] < counts[$1] || (counts[$0] == counts[$1] && $0 > $1) }), counts[best] > 0 {
                labels[node] = "\(categories[best]) \(Int((Double(counts[best]) / Double(max(1, items.count)) * 100).rounded()))%"
            } else {
                labels[node] = "(no category)"
            }
        }
        nodeLabels = labels
        nodeLeaves = leaves
    }

    public var leafLevel: Int { levelStarts.count - 2 }

    public func level(of node: Int) -> Int {
        var h = 0
        while h + 1 < levelStarts.count && levelStarts[h + 1] <= node { h += 1 }
        return h
    }

    public func ancestor(of node: Int, atLevel h: Int) -> Int {
        var n = node, l = level(of: node)
        while l > h { n = Int(parent[n]); l -= 1 }
        return n
    }

    /// The item of a leaf node, nil for inner nodes.
    public func item(ofLeaf node: Int) -> Int32? {
        let start = levelStarts[leafLevel]
        return node >= start && node - start < leafItems.count ? leafItems[node - start] : nil
    }
}

public struct UserRow: Equatable, Sendable, Codable {
    public var index: Int
    public var id: String
    /// "train", "valid" or "test" (the evaluation protocol's split of this bundle).
    public var split: String
    public var length: Int
    /// Held-out target items (evaluation users only).
    public var targets: Int
}

public struct CandidateRow: Equatable, Sendable {
    public var node: Int
    /// Index of the node in the level's trace (its GSU selections).
    public var traceIndex: Int
    public var probabilities: [Float]
    public var mean: Float
    public var kept: Bool
    /// The user's targets whose ancestor at this level is this node.
    public var targetsUnder: Int
}

public struct LevelView: Equatable, Sendable {
    public var level: Int
    /// Best mean score first.
    public var candidates: [CandidateRow]
    public var keptCount: Int
    /// H@hRecall at this level (nil without targets).
    public var hierarchicalRecall: Double?
    /// Children of the previous beam left unscored because all their items are in the user's history.
    public var skipped = 0
}

public struct RetrievedItem: Equatable, Sendable, Codable {
    public var item: Int32
    public var score: Float
    public var hit: Bool
}

/// One user's beam search as the explorer shows it, computed by the real estimator.
public struct UserTrace: Sendable {
    public var user: UserRow
    public var historyLength: Int
    public var targets: Set<Int32>
    public var levels: [LevelView]
    public var retrieved: [RetrievedItem]
    public var recall: Double?
    public var result: BeamSearch.Result
    /// The GSU windows (oldest first) and where they start in the history.
    public var coItems: [Int32], mmItems: [Int32]
    public var seconds: Double
    public var beamSize: Int

    /// Every held-out target's way through the beam search, retrieved ones first (`TargetFate.fates`).
    public var fates: [TargetFate] = []

    public var coStart: Int { historyLength - coItems.count }
    public var mmStart: Int { historyLength - mmItems.count }
}

/// Where one held-out target left the beam search: the deepest level at which its ancestor was scored, that
/// ancestor's place among the level's candidates and its score against the beam's lowest kept score. A target
/// whose ancestor was kept at every level down to the leaves is retrieved (its leaf is in the final top-K).
public struct TargetFate: Equatable, Sendable, Codable {
    public var item: Int32
    /// The last level its ancestor was scored at: where it was pruned, or the leaf level when retrieved.
    public var level: Int
    /// Its ancestor at `level` (the target's own leaf at the leaf level).
    public var node: Int
    /// That node's place among the level's candidates, best mean score first (the Beam view's "#"), 1-based.
    public var rank: Int
    public var candidates: Int
    public var kept: Int
    /// Its mean score, and the lowest mean score the level kept (the beam's cut-off).
    public var score: Float
    public var cutoff: Float
    /// Its rank in the final top-K (1-based) when retrieved.
    public var retrievedRank: Int?

    public var retrieved: Bool { retrievedRank != nil }

    /// How many of `fates` left the beam at each level, shallowest first (only levels that lost some).
    public static func lostPerLevel(_ fates: [TargetFate]) -> [(level: Int, count: Int)] {
        var count: [Int: Int] = [:]
        for f in fates where !f.retrieved { count[f.level, default: 0] += 1 }
        return count.keys.sorted().map { ($0, count[$0]!) }
    }

    public init(item: Int32, level: Int, node: Int, rank: Int, candidates: Int, kept: Int, score: Float, cutoff: Float, retrievedRank: Int?) {
        self.item = item; self.level = level; self.node = node; self.rank = rank; self.candidates = candidates
        self.kept = kept; self.score = score; self.cutoff = cutoff; self.retrievedRank = retrievedRank
    }

    /// The fates of `targets` (item ids) in a traced search: `levels` are the Beam view's levels (1 … leaf level,
    /// candidates best first), `retrieved` the final top-K, `leaf(item)` a target's leaf node and
    /// `ancestor(node, level)` its ancestor at a level. Each target's path is followed from level 1 while its
    /// ancestor is kept; level 1's candidates are all the root's children, and every deeper level's are all
    /// the children of the previous level's kept nodes (less those whose items are all in the history, which holds
    /// no target), so each kept ancestor's child is a candidate.
    /// Order: retrieved by final rank, then the lost ones from the deepest level up, closest to the cut-off first.
    public static func fates(levels: [LevelView], retrieved: [RetrievedItem], targets: Set<Int32>,
                             leaf: (Int32) -> Int, ancestor: (Int, Int) -> Int) -> [TargetFate] {
        guard !levels.isEmpty else { return [] }
        let places = levels.map { lv in Dictionary(uniqueKeysWithValues: lv.candidates.enumerated().map { ($1.node, $0) }) }
        let cutoffs = levels.map { lv in lv.candidates.filter(\.kept).map(\.mean).min() ?? .nan }
        let finalRank = Dictionary(retrieved.enumerated().map { ($1.item, $0 + 1) }, uniquingKeysWith: min)
        var out: [TargetFate] = []
        for item in targets {
            let leafNode = leaf(item)
            var fate: TargetFate?
            for (i, lv) in levels.enumerated() {
                let node = ancestor(leafNode, lv.level)
                guard let place = places[i][node] else { break }
                let row = lv.candidates[place]
                fate = TargetFate(item: item, level: lv.level, node: node, rank: place + 1, candidates: lv.candidates.count,
                                  kept: lv.keptCount, score: row.mean, cutoff: cutoffs[i],
                                  retrievedRank: i == levels.count - 1 && row.kept ? finalRank[item] : nil)
                if !row.kept { break }
            }
            if let fate { out.append(fate) }
        }
        return out.sorted { a, b in
            switch (a.retrievedRank, b.retrievedRank) {
            case let (x?, y?): return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return (-a.level, a.rank, a.item) < (-b.level, b.rank, b.item)
            }
        }
    }
}

public struct GSUEntry: Equatable, Sendable, Codable {
    public var rank: Int
    /// Position in the user's history, 0 = oldest.
    public var position: Int
    public var item: Int32
    public var score: Float
    public var weight: Float
    public var inBoth: Bool
}

/// Co-GSU's and MM-GSU's top-K for one (user, node), side by side.
public struct GSUComparison: Equatable, Sendable, Codable {
    public var level: Int
    public var node: Int
    public var co: [GSUEntry]
    public var mm: [GSUEntry]
    /// |items in both| / min(|co|, |mm|).
    public var overlap: Double
}

extension GSUComparison {
    /// Both GSUs' selections for the `i`-th node of a forward pass, with positions in the user's history.
    init(level: Int, node: Int, co coGSU: NodeEstimator.GSUResult, mm mmGSU: NodeEstimator.GSUResult, index i: Int,
         coItems: [Int32], mmItems: [Int32], historyLength: Int) {
        func entries(_ g: NodeEstimator.GSUResult, items: [Int32]) -> [GSUEntry] {
            guard i < g.nodes else { return [] }
            let start = historyLength - items.count
            let scores = Array(g.scores(i)), weights = Array(g.weights(i))
            return g.positions(i).enumerated().map { r, pos in
                GSUEntry(rank: r + 1, position: start + pos, item: items[pos], score: scores[r], weight: weights[r], inBoth: false)
            }
        }
        var co = entries(coGSU, items: coItems)
        var mm = entries(mmGSU, items: mmItems)
        let shared = Set(co.map(\.item)).intersection(mm.map(\.item))
        for k in co.indices { co[k].inBoth = shared.contains(co[k].item) }
        for k in mm.indices { mm[k].inBoth = shared.contains(mm[k].item) }
        let denominator = min(co.count, mm.count)
        self.init(level: level, node: node, co: co, mm: mm, overlap: denominator == 0 ? 0 : Double(shared.count) / Double(denominator))
    }
}

/// Fig. 7 for an item the analyst chose: each GSU's selection with the item's leaf node as the query.
public struct CaseQuery: Equatable, Sendable {
    public var item: Int32
    public var comparison: GSUComparison
}

extension UserTrace {
    public func comparison(level: Int, candidate: CandidateRow) -> GSUComparison {
        let t = result.levels[level - 1]
        return GSUComparison(level: level, node: candidate.node, co: t.coGSU, mm: t.mmGSU, index: candidate.traceIndex,
                             coItems: coItems, mmItems: mmItems, historyLength: historyLength)
    }

    /// Mean GSU overlap over the level's kept nodes.
    public func meanOverlap(level: Int) -> Double {
        let kept = levels[level - 1].candidates.filter(\.kept)
        guard !kept.isEmpty else { return 0 }
        return kept.reduce(0) { $0 + comparison(level: level, candidate: $1).overlap } / Double(kept.count)
    }

    /// Follows `node` down the trace: at every deeper level, its best-scored descendant among the candidates
    /// (a pruned node's children were never scored, so the path ends there).
    public func path(from level: Int, node: Int, catalog: Catalog) -> [(level: Int, row: CandidateRow)] {
        var out: [(Int, CandidateRow)] = []
        guard let start = levels[level - 1].candidates.first(where: { $0.node == node }) else { return [] }
        out.append((level, start))
        var current = start
        var h = level
        while current.kept && h < levels.count {
            h += 1
            guard let next = levels[h - 1].candidates.first(where: { Int(catalog.parent[$0.node]) == current.node }) else { break }
            out.append((h, next))
            current = next
        }
        return out
    }
}

/// Figs. 5–6 and the overlap rate over evaluation users: for each user the query is a real sample, the leaf
/// node of the user's first held-out target; both GSUs' relevance over their windows goes through a softmax.
public struct Aggregates: Equatable, Sendable, Codable {
    public struct Histogram: Equatable, Sendable, Codable {
        public var lower: Float
        public var upper: Float
        public var counts: [Int]
    }

    public var heatmapUsers: [String]
    public var buckets: Int
    /// Width of the position axis in behaviours, the most recent at the right: the longest MM-GSU window
    /// among the rows (L_mm for lifelong users).
    public var window: Int
    /// Per user and bucket: the mean softmax score of the bucket's positions; -1 where the GSU's window has none.
    public var coHeat: [[Float]]
    public var mmHeat: [[Float]]
    /// The bundle's SASRec baseline, when it has one: the softmax attention of its last position over its
    /// last `sasLength` behaviours, bucketed on the same axis (nil without SASRec).
    public var sasHeat: [[Float]]? = nil
    public var sasLength = 0
    public var coHistogram: Histogram
    public var mmHistogram: Histogram
    public var users: Int
    public var overlap: Double
    /// The same rows on each user's own axis (`HeatmapAxis.ownWindow`): per row its user's window in behaviours
    /// (the longest of its GSU windows and SASRec's, at most the user's history), and the rows bucketed over
    /// it, so that every row spans the panel. Nil in snapshots written before they existed.
    public var ownWindows: [Int]? = nil
    public var coHeatOwn: [[Float]]? = nil
    public var mmHeatOwn: [[Float]]? = nil
    public var sasHeatOwn: [[Float]]? = nil
    /// Fig. 6 with each score times its window's length (`HistogramScale.timesWindow`: 1 = the window's uniform
    /// attention), so that users with short and long windows compare. Nil in snapshots written before it existed.
    public var coHistogramTimesWindow: Histogram? = nil
    public var mmHistogramTimesWindow: Histogram? = nil

    /// Fig. 5's panels in order: Co-GSU, MM-GSU and, when the bundle has it, SASRec.
    public var heatPanels: [(title: String, heat: [[Float]])] { heatPanels(axis: .shared) }

    /// The panels on `axis` (the shared one when these aggregates have no own-window rows).
    public func heatPanels(axis: HeatmapAxis) -> [(title: String, heat: [[Float]])] {
        var co = coHeat, mm = mmHeat, sas = sasHeat
        if available(axis) == .ownWindow, let coOwn = coHeatOwn, let mmOwn = mmHeatOwn {
            co = coOwn; mm = mmOwn; sas = sasHeat == nil ? nil : sasHeatOwn
        }
        return [("Co-GSU", co), ("MM-GSU", mm)] + (sas.map { [("SASRec (last \(sasLength))", $0)] } ?? [])
    }

    /// The axis these aggregates can show: own windows only when they have the rows.
    public func available(_ axis: HeatmapAxis) -> HeatmapAxis {
        axis == .ownWindow && coHeatOwn != nil && mmHeatOwn != nil && ownWindows != nil ? .ownWindow : .shared
    }

    /// The scale these aggregates can show: times the window only when they have those histograms.
    public func available(_ scale: HistogramScale) -> HistogramScale {
        scale == .timesWindow && coHistogramTimesWindow != nil && mmHistogramTimesWindow != nil ? .timesWindow : .softmax
    }

    /// Fig. 6's two histograms on `scale` (the softmax's when these aggregates lack the other).
    public func histograms(scale: HistogramScale) -> (co: Histogram, mm: Histogram) {
        if available(scale) == .timesWindow, let co = coHistogramTimesWindow, let mm = mmHistogramTimesWindow { return (co, mm) }
        return (coHistogram, mmHistogram)
    }
}

/// Fig. 6's scores: the softmax itself (the paper's figure, whose users all have windows of L), or times the
/// length of the window it is over (1 = uniform attention over the window). The softmax alone grows as the
/// window shrinks: over 10 behaviours it averages 0.1, over 4000 0.00025, so the short histories of a mixed
/// set of users fill its upper bins whatever the attention's shape; times the window, they compare.
public enum HistogramScale: String, Codable, Sendable, CaseIterable {
    case softmax, timesWindow = "times-window"
}

/// Fig. 5's position axis: one for every row, the most recent behaviour at the right and the longest window
/// at full width (the paper's figure, whose users all have windows of L), or each row its own user's window
/// stretched over the width (users whose histories are much shorter than the longest still fill their row).
public enum HeatmapAxis: String, Codable, Sendable, CaseIterable {
    case shared, ownWindow = "own-window"
}

/// Loads a bundle and its dataset and answers the explorer's questions with the real estimator.
public final class ExplorerModel: @unchecked Sendable {
    public let bundle: ModelBundle
    public let dataset: Dataset
    public let split: EvaluationSplit
    public let catalog: Catalog
    public let users: [UserRow]
    public let bundlePath: String
    public let dataPath: String
    private let evaluation: Set<Int>
    private let leafPositions: [Int32]

    public init(bundle: ModelBundle, dataset: Dataset, bundlePath: String, dataPath: String) {
        self.bundle = bundle
        self.dataset = dataset
        self.bundlePath = bundlePath
        self.dataPath = dataPath
        split = EvaluationSplit(dataset: dataset, seed: bundle.manifest.dataset.splitSeed)
        catalog = Catalog(dataset: dataset, tree: bundle.tree, config: bundle.manifest.config)
        let valid = Set(split.validation), test = Set(split.test)
        evaluation = valid.union(test)
        users = (0..<dataset.userCount).map { u in
            let s = test.contains(u) ? "test" : valid.contains(u) ? "valid" : "train"
            return UserRow(index: u, id: dataset.userIDs[u], split: s, length: dataset.sequenceLength(of: u),
                           targets: s == "train" ? 0 : EvaluationSplit.targetItems(of: u, in: dataset).count)
        }
        leafPositions = bundle.tree.itemLeafPositions()
    }

    /// Loads from paths with every check of `ModelBundle.load` (version, checksums, shapes, fingerprint).
    public static func open(bundle: String, data: String) throws -> ExplorerModel {
        let dataset = try Dataset.load(from: URL(fileURLWithPath: data))
        let b = try ModelBundle.load(from: URL(fileURLWithPath: bundle), dataset: dataset)
        return ExplorerModel(bundle: b, dataset: dataset, bundlePath: bundle, dataPath: data)
    }

    /// The row of a user id, or an InputError naming the id.
    public func row(ofUser id: String) throws -> Int {
        guard let i = users.firstIndex(where: { $0.id == id }) else {
            throw InputError(file: dataPath, location: "user '\(id)'", problem: "no such user in '\(dataset.name)'",
                             fix: "Pick one from the Users view, e.g. '\(firstEvaluationUser.map { users[$0].id } ?? users.first?.id ?? "")'")
        }
        return i
    }

    /// The first test user with targets (the explorer's default).
    public var firstEvaluationUser: Int? {
        users.firstIndex { $0.split == "test" && $0.targets > 0 } ?? users.firstIndex { $0.targets > 0 } ?? (users.isEmpty ? nil : 0)
    }

    /// History the model sees: the first half for evaluation users (the protocol), everything for training users.
    public func history(of u: Int) -> Range<Int> {
        evaluation.contains(u) ? EvaluationSplit.history(of: u, in: dataset) : dataset.behaviours(of: u)
    }

    public func targets(of u: Int) -> Set<Int32> {
        evaluation.contains(u) ? EvaluationSplit.targetItems(of: u, in: dataset) : []
    }

    /// Runs the traced beam search for one user (history items excluded from the results, as in evaluation).
    public func trace(row: Int, beamSize: Int, finalK: Int) -> UserTrace {
        let t0 = Date()
        let user = users[row]
        let items = Array(dataset.behaviourItems[history(of: user.index)])
        let targets = targets(of: user.index)
        let est = bundle.estimator, tree = bundle.tree
        let ctx = est.context(history: items[...])
        let r = BeamSearch.run(estimator: est, tree: tree, context: ctx, config: .init(beamSize: beamSize, finalK: finalK),
                               exclude: Set(items), trace: true)
        var levels: [LevelView] = []
        for t in r.levels {
            var under: [Int: Int] = [:]
            for item in targets {
                under[tree.ancestor(of: tree.leafNode(position: Int(leafPositions[Int(item)])), atLevel: t.level), default: 0] += 1
            }
            var rows = t.candidates.enumerated().map { i, node in
                CandidateRow(node: node, traceIndex: i, probabilities: (0..<t.probabilities.cols).map { t.probabilities[i, $0] },
                             mean: t.meanScores[i], kept: t.kept[i], targetsUnder: under[node] ?? 0)
            }
            rows.sort { $0.mean > $1.mean || ($0.mean == $1.mean && $0.node < $1.node) }
            let h: Double? = targets.isEmpty ? nil : RetrievalMetrics.hierarchicalRecall(
                beam: r.beams[t.level], level: t.level, targets: targets, tree: tree, itemLeafPositions: leafPositions)
            levels.append(LevelView(level: t.level, candidates: rows, keptCount: t.kept.filter { $0 }.count, hierarchicalRecall: h,
                                    skipped: t.skipped))
        }
        let retrieved = zip(r.items, r.scores).map { RetrievedItem(item: $0, score: $1, hit: targets.contains($0)) }
        let fates = TargetFate.fates(levels: levels, retrieved: retrieved, targets: targets,
                                     leaf: { tree.leafNode(position: Int(self.leafPositions[Int($0)])) },
                                     ancestor: { tree.ancestor(of: $0, atLevel: $1) })
        return UserTrace(user: user, historyLength: items.count, targets: targets, levels: levels, retrieved: retrieved,
                         recall: targets.isEmpty ? nil : RetrievalMetrics.recall(retrieved: r.items, targets: targets),
                         result: r, coItems: ctx.coItems, mmItems: ctx.mmItems, seconds: Date().timeIntervalSince(t0), beamSize: beamSize,
                         fates: fates)
    }

    /// Both GSUs for one user with a chosen item's leaf node as the query (the estimator's own forward pass).
    public func caseQuery(row: Int, item: Int32) -> CaseQuery {
        let user = users[row]
        let items = Array(dataset.behaviourItems[history(of: user.index)])
        let est = bundle.estimator
        let ctx = est.context(history: items[...])
        let leaf = Int(est.itemLeafNode[Int(item)])
        let f = est.forward(ctx, nodes: [leaf])
        return CaseQuery(item: item, comparison: GSUComparison(level: catalog.leafLevel, node: leaf, co: f.co, mm: f.mm, index: 0,
                                                               coItems: ctx.coItems, mmItems: ctx.mmItems, historyLength: items.count))
    }

    /// Recall@finalK of every evaluation user with targets (validation and test; by row), from the same beam search
    /// the Beam view runs (history excluded) without its trace. `progress(done, total)` after each user.
    public func recalls(beamSize: Int, finalK: Int, progress: ((Int, Int) -> Void)? = nil) -> [Int: Double] {
        let rows = users.indices.filter { users[$0].split != "train" && users[$0].targets > 0 }
        let weights = bundle.estimator.scoringWeights()   // packed once for all the users, as `Evaluation.evaluate` does
        var out: [Int: Double] = [:]
        for (n, row) in rows.enumerated() {
            progress?(n, rows.count)
            let items = Array(dataset.behaviourItems[history(of: users[row].index)])
            let r = BeamSearch.run(estimator: bundle.estimator, tree: bundle.tree, context: bundle.estimator.context(history: items[...]),
                                   config: .init(beamSize: beamSize, finalK: finalK), exclude: Set(items), weights: weights)
            out[row] = RetrievalMetrics.recall(retrieved: r.items, targets: targets(of: users[row].index))
        }
        progress?(rows.count, rows.count)
        return out
    }

    /// Evaluation users the aggregates use: test users with at least one target, in id order.
    public var aggregateUsers: [Int] { users.filter { $0.split == "test" && $0.targets > 0 }.map(\.index) }

    /// Figs. 5–6 and the mean GSU overlap over up to `maxUsers` evaluation users; the first `heatmapRows` are the heatmap's rows.
    public func aggregates(heatmapRows: Int = 20, maxUsers: Int = 500, buckets: Int = 32, bins: Int = 20,
                           progress: ((Int, Int) -> Void)? = nil) -> Aggregates {
        let est = bundle.estimator, tree = bundle.tree
        let config = est.config
        let chosen = Array(aggregateUsers.prefix(maxUsers))
        var coHeat: [[Float]] = [], mmHeat: [[Float]] = [], names: [String] = []
        var coTop: [Float] = [], mmTop: [Float] = [], coTopTimesWindow: [Float] = [], mmTopTimesWindow: [Float] = []
        var overlapSum = 0.0
        var rowsCo: [[Float]] = [], rowsMM: [[Float]] = [], rowsSAS: [[Float]] = []
        for (n, u) in chosen.enumerated() {
            progress?(n, chosen.count)
            let hist = dataset.behaviourItems[history(of: u)]
            let ctx = est.context(history: hist)
            // Its first held-out behaviour on an item not in the history (one exists: the user has targets).
            let seen = Set(hist)
            let target = dataset.behaviourItems[EvaluationSplit.targets(of: u, in: dataset)].first { !seen.contains($0) }!
            let node = tree.leafNode(position: Int(leafPositions[Int(target)]))
            let (rCo, rMM) = est.relevance(ctx, node: node)
            let pCo = Softmax.forward(vector: rCo), pMM = Softmax.forward(vector: rMM)
            let k = config.topK
            let topCo = TopK.indices(rCo, k: k), topMM = TopK.indices(rMM, k: k)
            coTop += topCo.map { pCo[$0] }
            mmTop += topMM.map { pMM[$0] }
            coTopTimesWindow += topCo.map { pCo[$0] * Float(pCo.count) }
            mmTopTimesWindow += topMM.map { pMM[$0] * Float(pMM.count) }
            let shared = Set(topCo.map { ctx.coItems[$0] }).intersection(topMM.map { ctx.mmItems[$0] })
            overlapSum += Double(shared.count) / Double(max(1, min(topCo.count, topMM.count)))
            if names.count < heatmapRows {
                names.append(dataset.userIDs[u])
                rowsCo.append(pCo)
                rowsMM.append(pMM)
                if let sas = bundle.sasrec { rowsSAS.append(sas.attention(history: hist)) }
            }
        }
        // The position axis spans the longest MM window among the rows (L_mm when histories are that long).
        let window = max(1, rowsMM.map(\.count).max() ?? 1)
        let buckets = min(buckets, window)
        coHeat = rowsCo.map { Self.bucketed($0, buckets: buckets, window: window) }
        mmHeat = rowsMM.map { Self.bucketed($0, buckets: buckets, window: window) }
        let sasHeat = bundle.sasrec.map { _ in rowsSAS.map { Self.bucketed($0, buckets: buckets, window: window) } }
        // Each row's own axis: its user's longest window (each GSU's and SASRec's end at the same, most recent, behaviour).
        let ownWindows = rowsMM.indices.map { r in max(1, rowsCo[r].count, rowsMM[r].count, r < rowsSAS.count ? rowsSAS[r].count : 0) }
        func own(_ rows: [[Float]]) -> [[Float]] { zip(rows, ownWindows).map { Self.stretched($0, buckets: buckets, window: $1) } }
        progress?(chosen.count, chosen.count)
        return Aggregates(heatmapUsers: names, buckets: buckets, window: window, coHeat: coHeat, mmHeat: mmHeat,
                          sasHeat: sasHeat, sasLength: bundle.sasrec?.config.maxLength ?? 0,
                          coHistogram: Self.histogram(coTop, bins: bins), mmHistogram: Self.histogram(mmTop, bins: bins),
                          users: chosen.count, overlap: chosen.isEmpty ? 0 : overlapSum / Double(chosen.count),
                          ownWindows: ownWindows, coHeatOwn: own(rowsCo), mmHeatOwn: own(rowsMM),
                          sasHeatOwn: sasHeat == nil ? nil : own(rowsSAS),
                          coHistogramTimesWindow: Self.histogram(spanning: coTopTimesWindow, bins: bins),
                          mmHistogramTimesWindow: Self.histogram(spanning: mmTopTimesWindow, bins: bins))
    }

    /// Mean softmax score per position in each of `buckets` equal parts of a window of `window` positions,
    /// oldest first; `p` covers the last p.count of them. A window shorter than the buckets is stretched (each
    /// bucket takes the position under its start); buckets with no position of `p` are -1.
    public static func stretched(_ p: [Float], buckets: Int, window: Int) -> [Float] {
        precondition(buckets >= 1 && window >= p.count, "stretched: \(p.count) scores in a window of \(window), \(buckets) buckets")
        let offset = window - p.count
        return (0..<buckets).map { b in
            let lo = b * window / buckets, hi = max(lo + 1, (b + 1) * window / buckets)
            var sum: Float = 0, count = 0
            for j in max(lo, offset)..<max(hi, offset) { sum += p[j - offset]; count += 1 }
            return count == 0 ? -1 : sum / Float(count)
        }
    }

    /// Mean softmax score per position in each bucket of an axis of `window` positions ending at the most
    /// recent behaviour (a mean, so that buckets of unequal size compare); `p` covers the last p.count
    /// positions. Buckets with no position of `p` are -1.
    public static func bucketed(_ p: [Float], buckets: Int, window: Int) -> [Float] {
        var sum = [Float](repeating: 0, count: buckets), count = [Int](repeating: 0, count: buckets)
        let n = p.count
        for (i, v) in p.enumerated() {
            let fromEnd = n - 1 - i
            guard fromEnd < window else { continue }
            let b = buckets - 1 - fromEnd * buckets / window
            sum[b] += v
            count[b] += 1
        }
        return zip(sum, count).map { $1 == 0 ? -1 : $0 / Float($1) }
    }

    /// Equal-width bins over [0, max].
    /// `from`: the bins' lower end (≥ 0); the upper one is the maximum, at least one step above it.
    public static func histogram(_ values: [Float], bins: Int, from lower: Float = 0) -> Aggregates.Histogram {
        let upper = max(values.max() ?? 0, lower + max(Float.leastNormalMagnitude, lower.ulp))
        var counts = [Int](repeating: 0, count: bins)
        for v in values { counts[min(bins - 1, max(0, Int((v - lower) / (upper - lower) * Float(bins))))] += 1 }
        return .init(lower: lower, upper: upper, counts: counts)
    }

    /// Equal-width bins over [min, max] (scores times their window sit around 1, far from 0).
    public static func histogram(spanning values: [Float], bins: Int) -> Aggregates.Histogram {
        histogram(values, bins: bins, from: values.min() ?? 0)
    }
}
