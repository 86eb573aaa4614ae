import Foundation
import MISSCore
import MISSData

/// The paper's evaluation in one harness (§6, Tables 1–2): baselines, MISS, its ablations and the MM-GSU
/// length study, each trained per seed on the same split and evaluated on the test users (Recall@K,
/// Precision@K, H@hRecall@K). Early stopping uses the validation users only.
///
/// - TDM: one GSU on ID embeddings + ESU (no MM-GSU), a single objective, on a tree shaped by learned ID
///   embeddings (a first TDM model trained on a random tree supplies them: one round of TDM's alternation).
/// - TDM+MMoE: the same with all objectives and the MMoE towers.
/// - MISS: Co-GSU + MM-GSU + ESU + MMoE on the multi-modal tree.
/// - Ablations: w/o MM-GSU, w/o Co-GSU (on the MM tree), w/o MM tree (full MISS on the ID tree).
/// - Length study: MISS with L_mm in `mmLengths` (L_co fixed).
/// - SASRec: the two-tower baseline (self-attention user tower, ID item tower, sampled softmax, exact top-K),
///   early-stopped on validation Recall@K.
/// - Popularity: the K most frequent training items.
public enum PaperSuite {
    public struct Options: Sendable {
        public var seeds: [UInt64] = [1, 2, 3]
        public var training = ModelTraining.Options()
        /// SASRec's own training options (steps of `batch` instances, validation schedule); its seed, validation users
        /// and K, and its dimension (= d) follow `training`'s.
        public var sasrec = SASRecTraining.Options()
        public var ks = [50, 200]
        public var beam = 200
        /// Every tree model's beam search, in validation and test, skips subtrees whose items are all in the
        /// user's history (`BeamSearch.Config`; off in the tables before the twentieth session).
        public var skipSeenSubtrees = BeamSearch.Config().skipSeenSubtrees
        public var mmLengths = [1000, 2000, 4000, 8000]
        public var splitSeed: UInt64 = 1
        public init() {}
    }

    public struct Row: Codable, Sendable {
        public var table: String
        public var method: String
        public var k: Int
        /// Per seed, in `seeds` order.
        public var recall: [Double]
        public var precision: [Double]
        public var hierarchicalRecall: [[Double]]
        public var trainSeconds: [Double]
        public var samplesPerSecond: [Double]
        public var bestStep: [Int]
        /// Per seed: the steps the model trained (fewer than the budget when early stopping ended it) and its
        /// validations, exact (empty for popularity).
        public var stepsRun: [Int]
        public var validation: [[Validation]]
        /// Per seed: items returned per user on average, and the users who got fewer than K (`Evaluation.Report`).
        public var meanReturned: [Double]
        public var usersShort: [Int]
    }

    public struct Result: Codable, Sendable {
        public var dataset: String
        public var items: Int
        public var testUsers: Int
        public var seeds: [UInt64]
        public var steps: Int
        public var beam: Int
        /// Absent in results written before it was recorded (they were made without the skip).
        public var skipSeenSubtrees: Bool?
        public var config: EstimatorConfig
        public var rows: [Row]
        public var seconds: Double
    }

    struct Variant {
        var table: String, method: String
        var tree: KeyPath<Trees, IndexTree>
        var configure: (inout EstimatorConfig) -> Void
    }

    struct Trees { var mm: IndexTree; var id: IndexTree }

    public static func run(dataset: Dataset, itemMM: Matrix, options: Options, log: (String) -> Void) throws -> Result {
        let t0 = Date()
        let split = EvaluationSplit(dataset: dataset, seed: options.splitSeed)
        let test = EvaluationSplit.usersWithTargets(split.test, in: dataset)
        let all = dataset.objectives.count
        var variants: [Variant] = [
            Variant(table: "Table 1", method: "TDM", tree: \.id) { $0.useMMGSU = false; $0.objectives = 1 },
            Variant(table: "Table 1", method: "TDM+MMoE", tree: \.id) { $0.useMMGSU = false; $0.objectives = all },
            Variant(table: "Table 1", method: "MISS", tree: \.mm) { $0.objectives = all },
            Variant(table: "Table 2", method: "w/o MM-GSU", tree: \.mm) { $0.useMMGSU = false; $0.objectives = all },
            Variant(table: "Table 2", method: "w/o Co-GSU", tree: \.mm) { $0.useCoGSU = false; $0.objectives = all },
            Variant(table: "Table 2", method: "w/o MM tree", tree: \.id) { $0.objectives = all },
        ]
        for l in options.mmLengths where l != options.training.config.mmLength {
            variants.append(Variant(table: "Length study", method: "MISS L_mm=\(l)", tree: \.mm) { $0.mmLength = l; $0.objectives = all })
        }
        var rows: [String: Row] = [:]
        var order: [String] = []
        typealias Cost = (seconds: Double, samplesPerSecond: Double, bestStep: Int, stepsRun: Int, validation: [Validation])
        func cost(_ o: ModelTraining.Outcome) -> Cost {
            (o.trainSeconds, o.samplesPerSecond, o.best?.step ?? o.stepsRun, o.stepsRun, o.history)
        }
        func record(_ table: String, _ method: String, _ k: Int, _ report: Evaluation.Report, _ cost: Cost?) {
            let key = "\(table)|\(method)|\(k)"
            if rows[key] == nil {
                rows[key] = Row(table: table, method: method, k: k, recall: [], precision: [], hierarchicalRecall: [], trainSeconds: [],
                                samplesPerSecond: [], bestStep: [], stepsRun: [], validation: [], meanReturned: [], usersShort: [])
                order.append(key)
            }
            rows[key]!.recall.append(report.recall)
            rows[key]!.precision.append(report.precision)
            rows[key]!.hierarchicalRecall.append(report.hierarchicalRecall)
            rows[key]!.trainSeconds.append(cost?.seconds ?? 0)
            rows[key]!.samplesPerSecond.append(cost?.samplesPerSecond ?? 0)
            rows[key]!.bestStep.append(cost?.bestStep ?? 0)
            rows[key]!.stepsRun.append(cost?.stepsRun ?? 0)
            rows[key]!.validation.append(cost?.validation ?? [])
            rows[key]!.meanReturned.append(report.meanReturned)
            rows[key]!.usersShort.append(report.usersShort)
        }
        for seed in options.seeds {
            var treeOptions = IndexTree.BuildOptions()
            treeOptions.seed = seed
            func train(_ tree: IndexTree, _ configure: (inout EstimatorConfig) -> Void, label: String) throws -> ModelTraining.Outcome {
                var o = options.training
                configure(&o.config)
                o.trainer.seed = seed
                o.skipSeenSubtrees = options.skipSeenSubtrees
                let s0 = Date()
                let outcome = try ModelTraining.run(dataset: dataset, tree: tree, itemMM: itemMM, split: split, options: o)
                log(String(format: "seed %llu %@: %d steps in %.0f s (%.0f samples/s), best validation H@hRecall %.3f at step %d",
                           seed, label, outcome.stepsRun, Date().timeIntervalSince(s0), outcome.samplesPerSecond,
                           outcome.best?.score ?? .nan, outcome.best?.step ?? outcome.stepsRun))
                return outcome
            }
            let mmTree = IndexTree.build(embeddings: itemMM, kind: .multimodal, options: treeOptions)
            let randomTree = IndexTree.build(embeddings: itemMM, kind: .random, options: treeOptions)
            let stage1 = try train(randomTree, { $0.useMMGSU = false; $0.objectives = 1 }, label: "TDM stage 1 (random tree → ID embeddings)")
            let idTree = IndexTree.build(embeddings: stage1.estimator.itemIDEmbeddings, kind: .idEmbedding, options: treeOptions).withNodeEmbeddings(from: itemMM)
            let trees = Trees(mm: mmTree, id: idTree)
            for v in variants {
                let outcome = try train(trees[keyPath: v.tree], v.configure, label: v.method)
                for k in options.ks {
                    let report = Evaluation.evaluate(estimator: outcome.estimator, tree: trees[keyPath: v.tree], dataset: dataset, users: test,
                                                     k: k, beamSize: max(options.beam, k), method: v.method,
                                                     skipSeenSubtrees: options.skipSeenSubtrees)
                    record(v.table, v.method, k, report, cost(outcome))
                    if v.method == "MISS" && options.mmLengths.contains(options.training.config.mmLength) {
                        record("Length study", "MISS L_mm=\(options.training.config.mmLength)", k, report, cost(outcome))
                    }
                }
            }
            var so = options.sasrec
            so.seed = seed
            so.config.dim = options.training.config.idDim
            so.validationUsers = options.training.validationUsers; so.validationK = options.training.validationK
            let s0 = Date()
            let sasrec = try SASRecTraining.run(dataset: dataset, split: split, options: so)
            log(String(format: "seed %llu SASRec: %d steps in %.0f s (%.0f samples/s), best validation Recall@%d %.3f at step %d",
                       seed, sasrec.stepsRun, Date().timeIntervalSince(s0), sasrec.samplesPerSecond, so.validationK,
                       sasrec.best?.recall ?? .nan, sasrec.best?.step ?? sasrec.stepsRun))
            for k in options.ks {
                record("Table 1", "SASRec", k, Evaluation.evaluate(sasrec: sasrec.model, dataset: dataset, users: test, k: k),
                       (sasrec.trainSeconds, sasrec.samplesPerSecond, sasrec.best?.step ?? sasrec.stepsRun, sasrec.stepsRun, sasrec.history))
                record("Table 1", "popularity", k, Evaluation.popularity(dataset: dataset, trainUsers: split.train, users: test, k: k), nil)
            }
        }
        // Tables in order; within one, the paper's method order and the length study by L_mm.
        let canonical = ["TDM", "TDM+MMoE", "SASRec", "MISS", "popularity", "w/o MM-GSU", "w/o Co-GSU", "w/o MM tree"]
            + options.mmLengths.sorted().map { "MISS L_mm=\($0)" }
        let rank = { (m: String) in canonical.firstIndex(of: m) ?? canonical.count }
        let ordered = order.map { rows[$0]! }.sorted { a, b in
            (a.table, a.k, rank(a.method)) < (b.table, b.k, rank(b.method))
        }
        return Result(dataset: dataset.name, items: dataset.itemCount, testUsers: test.count, seeds: options.seeds,
                      steps: options.training.trainer.steps, beam: options.beam,
                      skipSeenSubtrees: options.skipSeenSubtrees, config: options.training.config, rows: ordered,
                      seconds: Date().timeIntervalSince(t0))
    }

    /// mean ± sample standard deviation.
    public static func meanStd(_ v: [Double]) -> (Double, Double) {
        guard !v.isEmpty else { return (.nan, .nan) }
        let m = v.reduce(0, +) / Double(v.count)
        guard v.count > 1 else { return (m, 0) }
        return (m, (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot())
    }

    /// "best/run" per seed, e.g. "4000/4000, 800/2000"; "–" for a method that does not train.
    public static func stepsCell(_ row: Row) -> String {
        guard row.stepsRun.contains(where: { $0 > 0 }) else { return "–" }
        return zip(row.bestStep, row.stepsRun).map { "\($0)/\($1)" }.joined(separator: ", ")
    }

    public static func markdown(_ r: Result, command: String) -> String {
        func cell(_ v: [Double], scale: Double = 100) -> String {
            let (m, s) = meanStd(v)
            return String(format: "%.2f ± %.2f", m * scale, s * scale)
        }
        var md = "### \(r.dataset): \(r.items) items, \(r.testUsers) test users, seeds \(r.seeds.map(String.init).joined(separator: ", "))\n\n"
        md += "Command: `\(command)` (\(Int(r.seconds)) s). Training: \(r.steps) steps at most per model (early stopping on validation H@hRecall), "
        md += "d \(r.config.idDim), L_co \(r.config.coLength), L_mm \(r.config.mmLength), K \(r.config.topK); retrieval beam \(r.beam)"
        md += r.skipSeenSubtrees == true ? ", which does not score subtrees whose items are all in the user's history. "
            : r.skipSeenSubtrees == false ? ", the plain beam search (subtrees whose items are all in the history take beam slots). " : ". "
        md += "Values are percentages, mean ± std over the seeds. "
        md += "\"best / run\": per seed, the step of the best validation (the weights evaluated) and the steps trained; "
        md += "a best step at the budget means the model was still improving, fewer steps run than the budget that early stopping ended it.\n"
        for table in ["Table 1", "Table 2", "Length study"] {
            let rows = r.rows.filter { $0.table == table }
            guard !rows.isEmpty else { continue }
            let ks = Array(Set(rows.map(\.k))).sorted()
            md += "\n#### \(table)\n\n| method | " + ks.map { "Recall@\($0) | Precision@\($0) | H@hRecall@\($0) (mean over levels)" }.joined(separator: " | ") + " | samples/s | best / run |\n"
            md += "|---|" + ks.map { _ in "---|---|---|" }.joined() + "---|---|\n"
            var methods: [String] = []
            for row in rows where !methods.contains(row.method) { methods.append(row.method) }
            for m in methods {
                md += "| \(m) |"
                for k in ks {
                    guard let row = rows.first(where: { $0.method == m && $0.k == k }) else { md += " | | |"; continue }
                    let h = row.hierarchicalRecall.map { $0.isEmpty ? Double.nan : Evaluation.meanOverLevels($0) }
                    md += " \(cell(row.recall)) | \(cell(row.precision)) | \(h.allSatisfy { $0.isNaN } ? "–" : cell(h)) |"
                }
                let first = rows.first { $0.method == m }!
                md += first.samplesPerSecond.allSatisfy { $0 == 0 } ? " – |" : String(format: " %.0f |", meanStd(first.samplesPerSecond).0)
                md += " \(stepsCell(first)) |\n"
            }
            // Lists shorter than K (without the skip, a beam full of the history's subtrees), which lower recall and precision.
            for row in rows where row.usersShort.contains(where: { $0 > 0 }) {
                md += String(format: "\n%@ at K = %d returned %.1f items per user on average; ", row.method, row.k, meanStd(row.meanReturned).0)
                md += "users with fewer than \(row.k), per seed: \(row.usersShort.map(String.init).joined(separator: ", ")) of \(r.testUsers).\n"
            }
        }
        return md
    }
}
