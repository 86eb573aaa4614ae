import Foundation
import MISSCore
import MISSData

/// The paper's evaluation in one harness (§6, Tables 1–2, Fig. 4): baselines, MISS, its ablations and the MM-GSU
/// length study, each trained on every split seed (and training seed) and evaluated on that split's test users
/// (Recall@K, Precision@K, H@hRecall@K at the levels of the paper's 13/16/19/22 of 22, beam K by default).
///
/// Every method is treated alike: trained on the same split's training users with targets as the test defines
/// them (`LevelwiseTrainer.TargetSampling.unseenItems`, SASRec too), early-stopped by the same rule (Recall@K
/// at `training.validationK` on the same validation users, the same patience), evaluated on the same users.
///
/// Who sees what:
/// - TDM: one GSU on ID embeddings + ESU (no MM-GSU), a single objective, on a tree shaped by learned ID
///   embeddings (a first TDM model trained on a random tree supplies them: one round of TDM's alternation);
///   no multi-modal feature anywhere (`EstimatorConfig.mmNodeFeature` off).
/// - TDM+MMoE: the same with all objectives and the MMoE towers; no multi-modal feature.
/// - SASRec: the two-tower baseline on item IDs (self-attention user tower, sampled softmax, exact top-K).
/// - MISS: Co-GSU + MM-GSU + ESU + MMoE on the multi-modal tree, z_n in the node feature.
/// - Table 2, the paper's progressive ablations: v1 = MISS w/o MM-GSU; v2 = v1 w/o Co-GSU (no GSU at all); v3 = v2
///   on the ID-embedding tree (no multi-modal feature left, as TDM).
/// - Table 2b, one module removed at a time: w/o MM-GSU (= v1), w/o Co-GSU, w/o MM tree (MISS on the ID tree).
/// - Length study: MISS with L_mm in `mmLengths` (L_co fixed).
/// Table 2b and the length study run on the first `detailSplits` split seeds (their other rows are Table 1's
/// and Table 2's models): what keeps the suite practical on 2 cores.
/// - Popularity: the K most frequent training items.
///
/// Each cell is the mean over every (split, test user) unit with a 95 % percentile-bootstrap interval, and each
/// method's paired difference from MISS over the same units with its interval (`Statistics`).
public enum PaperSuite {
    public struct Options: Sendable {
        /// Split seeds: each one its own train / validation / test users (and its own item embeddings).
        public var splitSeeds: [UInt64] = [1, 2, 3]
        /// Training seeds per split (initialisation, sampling, the trees' 2-means).
        public var seeds: [UInt64] = [1]
        public var training = ModelTraining.Options()
        /// SASRec's own training options (steps of `batch` instances, validation schedule); its seed, validation users,
        /// K, patience, targets and dimension (= d) follow `training`'s.
        public var sasrec = SASRecTraining.Options()
        public var ks = [50, 200]
        /// The tree models' retrieval beam; nil = K, the paper's.
        public var beam: Int?
        /// Every tree model's beam search, in validation and test, skips subtrees whose items are all in the
        /// user's history (`BeamSearch.Config`).
        public var skipSeenSubtrees = BeamSearch.Config().skipSeenSubtrees
        public var mmLengths = [1000, 2000, 4000, 8000]
        /// Table 2b's own models and the length study run on this many of the split seeds (the first ones).
        public var detailSplits = 1
        public var resamples = Statistics.defaultResamples
        public init() {}

        /// Models trained (the progress bar's unit): per split and training seed TDM's first stage, Tables 1–2's six
        /// tree models and SASRec; on the detail splits also Table 2b's two own models and the length study's lengths.
        public func modelCount() -> Int {
            let extra = 2 + mmLengths.filter { $0 != training.config.mmLength }.count
            return splitSeeds.count * seeds.count * 8 + min(detailSplits, splitSeeds.count) * seeds.count * extra
        }
    }

    /// One trained model on one split and training seed, evaluated at one K.
    public struct Run: Codable, Sendable {
        public var splitSeed: UInt64
        public var seed: UInt64
        public var recall: Double
        public var precision: Double
        /// H@hRecall per level (index = level; empty for methods without a tree).
        public var hierarchicalRecall: [Double]
        public var trainSeconds: Double
        public var samplesPerSecond: Double
        /// The step whose weights were evaluated, the steps trained, the budget, and every validation (exact).
        public var bestStep: Int
        public var stepsRun: Int
        public var budget: Int
        public var validation: [Validation]
        public var meanReturned: Double
        public var usersShort: Int
        /// Per test user (dataset indices): Recall@K, Precision@K, H@hRecall at `Result.levels`.
        public var users: [Int]
        public var userRecall: [Double]
        public var userPrecision: [Double]
        public var userHierarchicalRecall: [[Double]]

        /// The best validation is the budget's last step: the model may still have been improving.
        public var bestAtBudget: Bool { budget > 0 && bestStep >= budget }
    }

    public struct Row: Codable, Sendable {
        public var table: String
        public var method: String
        public var k: Int
        public var runs: [Run]
        /// Over every (split, test user) unit: the mean and its 95 % bootstrap interval.
        public var recall: Statistics.Interval?
        public var precision: Statistics.Interval?
        /// At `Result.levels`, in order.
        public var hierarchicalRecall: [Statistics.Interval]
        /// Recall@K minus MISS's over the same units (nil for MISS and where MISS has no run on the same splits).
        public var recallDifferenceFromMISS: Statistics.Interval?
    }

    public struct Result: Codable, Sendable {
        public var dataset: String
        public var items: Int
        /// Test users per split seed.
        public var testUsers: [Int]
        public var splitSeeds: [UInt64]
        public var seeds: [UInt64]
        public var steps: Int
        public var sasrecSteps: Int
        public var patience: Int
        public var evalEvery: Int
        public var validationK: Int
        public var beam: Int?
        public var skipSeenSubtrees: Bool
        public var targets: LevelwiseTrainer.TargetSampling
        /// The objective the ranking uses (nil: the paper's mean over objectives) and the dataset's objectives.
        public var rankingObjective: Int?
        public var objectives: [String]
        /// The tree's depth and the levels reported as the paper's 13, 16, 19, 22 of 22.
        public var leafLevel: Int
        public var levels: [Int]
        /// Table 2b and the length study ran on this many of the split seeds (the first ones).
        public var detailSplits: Int
        public var config: EstimatorConfig
        public var rows: [Row]
        public var seconds: Double
    }

    struct Model {
        var key: String
        var tree: KeyPath<Trees, IndexTree>
        var configure: (inout EstimatorConfig) -> Void
        /// (table, method) rows this model's evaluation fills.
        var rows: [(String, String)]
    }

    struct Trees { var mm: IndexTree; var id: IndexTree }

    static let table1 = "Table 1", table2 = "Table 2", table2b = "Table 2b", lengthStudy = "Length study"

    /// The models every split trains, and those only the detail splits do.
    static func models(objectives all: Int, mmLength: Int, lengths: [Int]) -> (main: [Model], detail: [Model]) {
        let main = [
            Model(key: "TDM", tree: \.id, configure: { $0.useMMGSU = false; $0.mmNodeFeature = false; $0.objectives = 1 },
                  rows: [(table1, "TDM")]),
            Model(key: "TDM+MMoE", tree: \.id, configure: { $0.useMMGSU = false; $0.mmNodeFeature = false; $0.objectives = all },
                  rows: [(table1, "TDM+MMoE")]),
            Model(key: "MISS", tree: \.mm, configure: { $0.objectives = all },
                  rows: [(table1, "MISS"), (table2, "MISS"), (table2b, "MISS")] + (lengths.contains(mmLength) ? [(lengthStudy, "MISS L_mm=\(mmLength)")] : [])),
            Model(key: "v1", tree: \.mm, configure: { $0.useMMGSU = false; $0.objectives = all },
                  rows: [(table2, "v1: w/o MM-GSU"), (table2b, "w/o MM-GSU")]),
            Model(key: "v2", tree: \.mm, configure: { $0.useMMGSU = false; $0.useCoGSU = false; $0.objectives = all },
                  rows: [(table2, "v2: v1 w/o Co-GSU")]),
            Model(key: "v3", tree: \.id, configure: { $0.useMMGSU = false; $0.useCoGSU = false; $0.mmNodeFeature = false; $0.objectives = all },
                  rows: [(table2, "v3: v2 on the ID tree")]),
        ]
        let detail = [
            Model(key: "w/o Co-GSU", tree: \.mm, configure: { $0.useCoGSU = false; $0.objectives = all }, rows: [(table2b, "w/o Co-GSU")]),
            Model(key: "w/o MM tree", tree: \.id, configure: { $0.objectives = all }, rows: [(table2b, "w/o MM tree")]),
        ] + lengths.filter { $0 != mmLength }.map { l in
            Model(key: "L_mm=\(l)", tree: \.mm, configure: { $0.mmLength = l; $0.objectives = all }, rows: [(lengthStudy, "MISS L_mm=\(l)")])
        }
        return (main, detail)
    }

    /// The suite with one embedding matrix for every split (tests; a real run gives each split its own: `itemMM(splitSeed)`).
    public static func run(dataset: Dataset, itemMM: Matrix, options: Options, log: (String) -> Void) throws -> Result {
        try run(dataset: dataset, itemMM: { _ in itemMM }, options: options, log: log)
    }

    /// `itemMM(splitSeed)`: the frozen MM embeddings aligned on that split's training users.
    public static func run(dataset: Dataset, itemMM: (UInt64) throws -> Matrix, options: Options, log: (String) -> Void) throws -> Result {
        let t0 = Date()
        let all = dataset.objectives.count
        let (mainModels, detailModels) = models(objectives: all, mmLength: options.training.config.mmLength, lengths: options.mmLengths)
        var rows: [String: Row] = [:]
        var order: [String] = []
        var testUsers: [Int] = []
        var leafLevel = 0
        func record(_ table: String, _ method: String, _ k: Int, _ run: Run) {
            let key = "\(table)|\(method)|\(k)"
            if rows[key] == nil {
                rows[key] = Row(table: table, method: method, k: k, runs: [], recall: nil, precision: nil, hierarchicalRecall: [],
                                recallDifferenceFromMISS: nil)
                order.append(key)
            }
            rows[key]!.runs.append(run)
        }
        func makeRun(_ split: UInt64, _ seed: UInt64, _ report: Evaluation.Report, levels: [Int], seconds: Double, rate: Double,
                     best: Int, run stepsRun: Int, budget: Int, validation: [Validation]) -> Run {
            Run(splitSeed: split, seed: seed, recall: report.recall, precision: report.precision,
                hierarchicalRecall: report.hierarchicalRecall, trainSeconds: seconds, samplesPerSecond: rate, bestStep: best,
                stepsRun: stepsRun, budget: budget, validation: validation, meanReturned: report.meanReturned, usersShort: report.usersShort,
                users: report.userIndices, userRecall: report.userRecall, userPrecision: report.userPrecision,
                userHierarchicalRecall: report.userHierarchicalRecall.map { h in levels.map { $0 < h.count ? h[$0] : .nan } })
        }
        for (splitIndex, splitSeed) in options.splitSeeds.enumerated() {
            let split = EvaluationSplit(dataset: dataset, seed: splitSeed)
            let test = EvaluationSplit.usersWithTargets(split.test, in: dataset)
            testUsers.append(test.count)
            let mm = try itemMM(splitSeed)
            for seed in options.seeds {
                var treeOptions = IndexTree.BuildOptions()
                treeOptions.seed = seed
                func train(_ tree: IndexTree, _ configure: (inout EstimatorConfig) -> Void, label: String) throws -> ModelTraining.Outcome {
                    var o = options.training
                    configure(&o.config)
                    o.trainer.seed = seed
                    o.skipSeenSubtrees = options.skipSeenSubtrees
                    let s0 = Date()
                    let outcome = try ModelTraining.run(dataset: dataset, tree: tree, itemMM: mm, split: split, options: o)
                    log(String(format: "split %llu seed %llu %@: %d steps in %.0f s (%.0f samples/s), best validation Recall@%d %.4f at step %d",
                               splitSeed, seed, label, outcome.stepsRun, Date().timeIntervalSince(s0), outcome.samplesPerSecond,
                               o.validationK, outcome.best?.score ?? .nan, outcome.best?.step ?? outcome.stepsRun))
                    return outcome
                }
                let mmTree = IndexTree.build(embeddings: mm, kind: .multimodal, options: treeOptions)
                let randomTree = IndexTree.build(embeddings: mm, kind: .random, options: treeOptions)
                let stage1 = try train(randomTree, { $0.useMMGSU = false; $0.mmNodeFeature = false; $0.objectives = 1 },
                                       label: "TDM stage 1 (random tree → ID embeddings)")
                let idTree = IndexTree.build(embeddings: stage1.estimator.itemIDEmbeddings, kind: .idEmbedding, options: treeOptions)
                    .withNodeEmbeddings(from: mm)
                let trees = Trees(mm: mmTree, id: idTree)
                leafLevel = mmTree.leafLevel
                let levels = Evaluation.correspondingLevels(leafLevel: leafLevel)
                let detail = splitIndex < options.detailSplits
                let models = mainModels + (detail ? detailModels : [])
                for model in models {
                    let tree = trees[keyPath: model.tree]
                    let outcome = try train(tree, model.configure, label: model.key)
                    for k in options.ks {
                        let report = Evaluation.evaluate(estimator: outcome.estimator, tree: tree, dataset: dataset, users: test,
                                                         k: k, beamSize: options.beam.map { max($0, k) } ?? k, method: model.key,
                                                         skipSeenSubtrees: options.skipSeenSubtrees,
                                                         rankingObjective: options.training.rankingObjective)
                        let run = makeRun(splitSeed, seed, report, levels: levels, seconds: outcome.trainSeconds, rate: outcome.samplesPerSecond,
                                          best: outcome.best?.step ?? outcome.stepsRun, run: outcome.stepsRun, budget: options.training.trainer.steps,
                                          validation: outcome.history)
                        for (table, method) in model.rows where detail || (table != lengthStudy && table != table2b) {
                            record(table, method, k, run)
                        }
                    }
                }
                var so = options.sasrec
                so.seed = seed
                so.config.dim = options.training.config.idDim
                so.validationUsers = options.training.validationUsers; so.validationK = options.training.validationK
                so.patience = options.training.patience; so.targets = options.training.trainer.targets
                let s0 = Date()
                let sasrec = try SASRecTraining.run(dataset: dataset, split: split, options: so)
                log(String(format: "split %llu seed %llu SASRec: %d steps in %.0f s (%.0f samples/s), best validation Recall@%d %.4f at step %d",
                           splitSeed, seed, sasrec.stepsRun, Date().timeIntervalSince(s0), sasrec.samplesPerSecond, so.validationK,
                           sasrec.best?.recall ?? .nan, sasrec.best?.step ?? sasrec.stepsRun))
                for k in options.ks {
                    let report = Evaluation.evaluate(sasrec: sasrec.model, dataset: dataset, users: test, k: k)
                    record(table1, "SASRec", k, makeRun(splitSeed, seed, report, levels: [], seconds: sasrec.trainSeconds,
                                                        rate: sasrec.samplesPerSecond, best: sasrec.best?.step ?? sasrec.stepsRun,
                                                        run: sasrec.stepsRun, budget: so.steps, validation: sasrec.history))
                    let popularity = Evaluation.popularity(dataset: dataset, trainUsers: split.train, users: test, k: k)
                    record(table1, "popularity", k, makeRun(splitSeed, seed, popularity, levels: [], seconds: 0, rate: 0, best: 0, run: 0,
                                                            budget: 0, validation: []))
                }
            }
        }
        let levels = Evaluation.correspondingLevels(leafLevel: leafLevel)
        var finished = order.map { rows[$0]! }
        // The rows MISS's own model fills (in every table, and the length study's at MISS's L_mm) have no difference from it.
        let missRows = Set(mainModels.first { $0.key == "MISS" }!.rows.map { "\($0.0)|\($0.1)" })
        for i in finished.indices {
            summarise(&finished[i], against: finished, isMISS: missRows.contains("\(finished[i].table)|\(finished[i].method)"),
                      levels: levels.count, resamples: options.resamples)
        }
        // Tables in order; within one, the paper's method order and the length study by L_mm.
        let canonical = ["TDM", "TDM+MMoE", "SASRec", "MISS", "popularity", "v1: w/o MM-GSU", "v2: v1 w/o Co-GSU", "v3: v2 on the ID tree",
                         "w/o MM-GSU", "w/o Co-GSU", "w/o MM tree"] + options.mmLengths.sorted().map { "MISS L_mm=\($0)" }
        let tables = [table1, table2, table2b, lengthStudy]
        let rank = { (m: String) in canonical.firstIndex(of: m) ?? canonical.count }
        finished.sort { a, b in
            (tables.firstIndex(of: a.table) ?? 9, a.k, rank(a.method)) < (tables.firstIndex(of: b.table) ?? 9, b.k, rank(b.method))
        }
        return Result(dataset: dataset.name, items: dataset.itemCount, testUsers: testUsers, splitSeeds: options.splitSeeds,
                      seeds: options.seeds, steps: options.training.trainer.steps, sasrecSteps: options.sasrec.steps,
                      patience: options.training.patience, evalEvery: options.training.evalEvery,
                      validationK: options.training.validationK, beam: options.beam, skipSeenSubtrees: options.skipSeenSubtrees,
                      targets: options.training.trainer.targets, rankingObjective: options.training.rankingObjective,
                      objectives: dataset.objectives, leafLevel: leafLevel, levels: levels,
                      detailSplits: min(options.detailSplits, options.splitSeeds.count),
                      config: options.training.config, rows: finished, seconds: Date().timeIntervalSince(t0))
    }

    /// Per split seed (a stratum), each test user's value averaged over the training seeds' runs of that split.
    static func units(_ runs: [Run], splits: [UInt64], _ value: (Run) -> [Double]) -> [[Double]] {
        splits.map { split in
            let here = runs.filter { $0.splitSeed == split }
            guard let first = here.first else { return [] }
            return first.users.indices.map { i in here.reduce(0) { $0 + value($1)[i] } / Double(here.count) }
        }
    }

    /// Fills `row`'s intervals and its paired difference from MISS's row at the same K (over the splits both ran).
    /// `isMISS`: the row is MISS's own model (no difference from itself).
    static func summarise(_ row: inout Row, against all: [Row], isMISS: Bool, levels: Int, resamples: Int) {
        let splits = Array(Set(row.runs.map(\.splitSeed))).sorted()
        let seed = UInt64(row.k)
        row.recall = Statistics.bootstrapMean(strata: units(row.runs, splits: splits) { $0.userRecall }, resamples: resamples, seed: seed)
        row.precision = Statistics.bootstrapMean(strata: units(row.runs, splits: splits) { $0.userPrecision }, resamples: resamples, seed: seed)
        if row.runs.allSatisfy({ !$0.userHierarchicalRecall.isEmpty }) {
            row.hierarchicalRecall = (0..<levels).map { l in
                Statistics.bootstrapMean(strata: units(row.runs, splits: splits) { $0.userHierarchicalRecall.map { $0[l] } },
                                         resamples: resamples, seed: seed)
            }
        }
        guard !isMISS,
              let miss = all.first(where: { $0.method == "MISS" && $0.table == table1 && $0.k == row.k }) else { return }
        let missRuns = miss.runs.filter { splits.contains($0.splitSeed) }
        guard Set(missRuns.map(\.splitSeed)) == Set(splits) else { return }
        row.recallDifferenceFromMISS = Statistics.pairedDifference(units(row.runs, splits: splits) { $0.userRecall },
                                                                   units(missRuns, splits: splits) { $0.userRecall },
                                                                   resamples: resamples, seed: seed)
    }

    /// mean ± sample standard deviation.
    public static func meanStd(_ v: [Double]) -> (Double, Double) {
        guard !v.isEmpty else { return (.nan, .nan) }
        let m = v.reduce(0, +) / Double(v.count)
        guard v.count > 1 else { return (m, 0) }
        return (m, (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot())
    }

    /// "best/run" per run, a run whose best validation is its budget's last step marked "†"; "–" for a method that
    /// does not train.
    public static func stepsCell(_ row: Row) -> String {
        guard row.runs.contains(where: { $0.stepsRun > 0 }) else { return "–" }
        return row.runs.map { "\($0.bestStep)/\($0.stepsRun)" + ($0.bestAtBudget ? "†" : "") }.joined(separator: ", ")
    }

    /// "16.74 [15.10, 18.31]" in percent.
    static func cell(_ i: Statistics.Interval?) -> String {
        guard let i, !i.estimate.isNaN else { return "–" }
        return String(format: "%.2f [%.2f, %.2f]", i.estimate * 100, i.low * 100, i.high * 100)
    }

    /// "+1.20 [0.31, 2.05] *" in points, starred when the interval leaves out 0.
    static func differenceCell(_ i: Statistics.Interval?) -> String {
        guard let i else { return "–" }
        return String(format: "%+.2f [%+.2f, %+.2f]", i.estimate * 100, i.low * 100, i.high * 100) + (i.excludesZero ? " *" : "")
    }

    public static func markdown(_ r: Result, command: String) -> String {
        let units = r.testUsers.reduce(0, +)
        var md = "### \(r.dataset): \(r.items) items; split seeds \(r.splitSeeds.map(String.init).joined(separator: ", ")) "
        md += "(\(r.testUsers.map(String.init).joined(separator: " + ")) = \(units) test users); training seeds \(r.seeds.map(String.init).joined(separator: ", "))\n\n"
        md += "Command: `\(command)` (\(Int(r.seconds)) s).\n\n"
        md += "Training: at most \(r.steps) steps per tree model and \(r.sasrecSteps) for SASRec; every method early-stops on "
        md += "Recall@\(r.validationK) (beam \(r.validationK)) of the same validation users, validated every \(r.evalEvery) steps "
        md += "(SASRec: its own schedule), patience \(r.patience). "
        md += r.targets == .unseenItems
            ? "Training targets are the test's: the next distinct items not in the instance's history. "
            : "Training targets are the next behaviours, re-consumptions included (not the test's definition). "
        md += "Test targets: the distinct items of the second half of each test user's sequence that are not in the first half, "
        md += "every behaviour counting (objective \"\(r.objectives.first ?? "?")\" holds for all). Ranking: "
        md += r.rankingObjective.map { "objective \"\(r.objectives[$0])\" alone. " } ?? "the mean of the objectives' probabilities (the paper's). "
        md += "Retrieval beam: " + (r.beam.map { "max(\($0), K)" } ?? "K (the paper's)")
        md += r.skipSeenSubtrees ? ", not scoring subtrees whose items are all in the user's history. "
            : ", the plain beam search (subtrees whose items are all in the history take beam slots). "
        md += "d \(r.config.idDim), L_co \(r.config.coLength), L_mm \(r.config.mmLength), K \(r.config.topK).\n\n"
        md += "Cells: percent, the mean over every (split, test user) and its 95 % bootstrap interval (users resampled within each split). "
        md += "Δ MISS: the method's Recall@K minus MISS's over the same users, with its 95 % paired bootstrap interval; * = the interval leaves out 0. "
        md += "H@h: H@hRecall@K at tree level h of \(r.leafLevel) (the levels of the paper's 13, 16, 19 and 22 of 22: "
        md += "\(r.levels.map(String.init).joined(separator: ", "))). "
        md += "best / run: per split and seed, the step whose weights were evaluated and the steps trained; † = best at the budget's last step "
        md += "(the model may not have converged). Table 2b and the length study ran on the first \(r.detailSplits) split seed(s) only.\n"
        let titles = [table1: "Table 1: baselines and MISS", table2: "Table 2: progressive ablations (the paper's)",
                      table2b: "Table 2b: one module removed at a time", lengthStudy: "Length study: L_mm"]
        for table in [table1, table2, table2b, lengthStudy] {
            let rows = r.rows.filter { $0.table == table }
            guard !rows.isEmpty else { continue }
            for k in Array(Set(rows.map(\.k))).sorted() {
                md += "\n#### \(titles[table]!), K = \(k)\n\n"
                md += "| method | Recall@\(k) | Δ MISS | Precision@\(k) | " + r.levels.map { "H@\($0)" }.joined(separator: " | ") + " | samples/s | best / run |\n"
                md += "|---|---|---|---|" + r.levels.map { _ in "---|" }.joined() + "---|---|\n"
                for row in rows where row.k == k {
                    md += "| \(row.method) | \(cell(row.recall)) | \(differenceCell(row.recallDifferenceFromMISS)) | \(cell(row.precision)) |"
                    md += r.levels.indices.map { " " + (row.hierarchicalRecall.indices.contains($0) ? cell(row.hierarchicalRecall[$0]) : "–") + " |" }.joined()
                    let rate = row.runs.map(\.samplesPerSecond)
                    md += rate.allSatisfy { $0 == 0 } ? " – |" : String(format: " %.0f |", meanStd(rate).0)
                    md += " \(stepsCell(row)) |\n"
                }
                // Lists shorter than K lower recall and precision: say where it happened.
                for row in rows where row.k == k && row.runs.contains(where: { $0.usersShort > 0 }) {
                    md += String(format: "\n%@ at K = %d returned %.1f items per user on average; ", row.method, row.k, meanStd(row.runs.map(\.meanReturned)).0)
                    md += "users with fewer than \(row.k), per run: \(row.runs.map { String($0.usersShort) }.joined(separator: ", ")).\n"
                }
            }
        }
        return md
    }
}
