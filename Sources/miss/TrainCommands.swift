import ArgumentParser
import Foundation
import MISSCore
import MISSData
import MISSModel

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the MISS node estimator level by level (Eq. 4–7) and write a model bundle.")

    @Option(help: "Dataset file (.missdata).") var data: String
    @Option(help: "Embeddings file from `miss embed`.") var embeddings: String
    @Option(help: "Tree file from `miss build-tree`.") var tree: String
    @Option(help: "Output bundle folder.") var out: String
    @Option(help: "Optimisation steps.") var steps = 1000
    @Option(help: "User instances per step.") var batch = 16
    @Option(help: "Negative nodes per level and target.") var negatives = 5
    @Option(help: "Adam learning rate.") var learningRate: Float = 2e-3
    @Option(help: "Seed for initialisation and sampling.") var seed: UInt64 = 1
    @Option(help: "Seed of the train/validation/test user split.") var splitSeed: UInt64 = 1
    @Option(help: "ID embedding dimension d.") var idDim = 32
    @Option(help: "Co-GSU sequence length L_co.") var coLength = 2000
    @Option(help: "MM-GSU sequence length L_mm.") var mmLength = 4000
    @Option(help: "Top-K of each GSU.") var topK = 50
    @Option(help: "MMoE experts.") var experts = 4

    func validate() throws {
        guard topK >= 1, topK <= coLength, topK <= mmLength else {
            throw ValidationError("--top-k (\(topK)) must be between 1 and both --co-length (\(coLength)) and --mm-length (\(mmLength))")
        }
        guard steps >= 1, batch >= 1, negatives >= 0, idDim >= 1, experts >= 1, learningRate > 0 else {
            throw ValidationError("need --steps, --batch, --id-dim, --experts ≥ 1, --negatives ≥ 0 and --learning-rate > 0")
        }
    }

    func run() throws {
        try runReportingInputErrors {
            let t0 = Date()
            let dataset = try loadDataset(data)
            let emb = try ItemEmbeddings.load(from: URL(fileURLWithPath: embeddings), expectedItems: dataset.itemCount)
            let indexTree = try IndexTree.load(from: URL(fileURLWithPath: tree), expectedItems: dataset.itemCount)
            guard indexTree.dim == emb.multimodal.cols else {
                throw InputError(file: tree, location: "node_embeddings", problem: "has \(indexTree.dim) dims but the MM embeddings have \(emb.multimodal.cols)",
                                 fix: "Build the tree from these embeddings with `miss build-tree --source mm`")
            }
            var config = EstimatorConfig()
            config.idDim = idDim; config.coLength = coLength; config.mmLength = mmLength; config.topK = topK
            config.experts = experts; config.objectives = dataset.objectives.count
            let estimator = NodeEstimator(config: config, tree: indexTree, itemMM: emb.multimodal, seed: seed)
            let split = EvaluationSplit(dataset: dataset, seed: splitSeed)
            var tc = LevelwiseTrainer.Config()
            tc.steps = steps; tc.instancesPerBatch = batch; tc.negativesPerLevel = negatives
            tc.learningRate = learningRate; tc.seed = seed
            let bar = ProgressBar("train", total: steps, unit: "steps")
            var samples = 0
            var lastLoss = 0.0
            let trainStart = Date()
            try LevelwiseTrainer(dataset: dataset, tree: indexTree, users: split.train).train(estimator, config: tc) { r in
                samples += r.samples
                lastLoss = r.loss
                let rate = Double(samples) / max(1e-9, Date().timeIntervalSince(trainStart))
                bar.update(r.step, status: String(format: "loss %.4f, %.0f samples/s", r.loss, rate))
            }
            bar.finish()
            let seconds = Date().timeIntervalSince(trainStart)
            let manifest = ModelBundle.Manifest(
                format: ModelBundle.format, version: ModelBundle.version, config: config,
                dataset: .init(name: dataset.name, fingerprint: ModelBundle.fingerprint(dataset), items: dataset.itemCount,
                               users: dataset.userCount, objectives: dataset.objectives, splitSeed: splitSeed),
                tree: .init(kind: indexTree.kind.rawValue, levels: indexTree.leafLevel + 1, nodes: indexTree.nodeCount),
                training: ["steps": Double(steps), "seed": Double(seed), "final_loss": lastLoss, "samples": Double(samples),
                           "seconds": seconds, "samples_per_second": Double(samples) / max(1e-9, seconds)],
                checksums: [:])
            let url = URL(fileURLWithPath: out)
            try ModelBundle(manifest: manifest, estimator: estimator, tree: indexTree, embeddings: emb,
                            itemIDs: dataset.itemIDs, itemTitles: dataset.itemTitles).write(to: url)
            print(String(format: "wrote bundle %@: %d steps, %d samples in %.1f s (%.0f samples/s), final loss %.4f; total %.1f s",
                         url.path, steps, samples, seconds, Double(samples) / max(1e-9, seconds), lastLoss, Date().timeIntervalSince(t0)))
        }
    }
}

struct Retrieve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Beam-search one user's top items with a trained bundle.")

    @Option(help: "Bundle folder from `miss train`.") var bundle: String
    @Option(help: "Dataset the bundle was trained on.") var data: String
    @Option(help: "User id (as in the dataset).") var user: String
    @Option(help: "Items to return.") var k = 20
    @Option(help: "Beam size.") var beam = 100

    func run() throws {
        try runReportingInputErrors {
            let dataset = try loadDataset(data)
            let b = try ModelBundle.load(from: URL(fileURLWithPath: bundle), dataset: dataset)
            guard let u = dataset.userIndex()[user] else {
                throw InputError(file: data, location: "user '\(user)'", problem: "no such user",
                                 fix: "Pass an id from the dataset (e.g. '\(dataset.userIDs.first ?? "")')")
            }
            let split = EvaluationSplit(dataset: dataset, seed: b.manifest.dataset.splitSeed)
            let isEval = split.test.contains(u) || split.validation.contains(u)
            let history = isEval ? EvaluationSplit.history(of: u, in: dataset) : dataset.behaviours(of: u)
            let items = dataset.behaviourItems[history]
            let targets = isEval ? EvaluationSplit.targetItems(of: u, in: dataset) : []
            let r = BeamSearch.run(estimator: b.estimator, tree: b.tree, context: b.estimator.context(history: items),
                                   config: .init(beamSize: beam, finalK: k), exclude: Set(items))
            print("user \(user): \(history.count) behaviours of history" + (isEval ? ", \(targets.count) held-out targets" : " (a training user: no held-out targets)"))
            for (rank, (item, score)) in zip(r.items, r.scores).enumerated() {
                let hit = targets.contains(item) ? "✓" : " "
                print(String(format: "%3d %@ %.4f  ", rank + 1, hit, score) + "\(dataset.itemIDs[Int(item)])  \(dataset.itemTitles[Int(item)])")
            }
            if isEval {
                print(String(format: "Recall@%d = %.3f", k, RetrievalMetrics.recall(retrieved: r.items, targets: targets)))
            }
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recall@K, Precision@K and H@hRecall of a bundle on the evaluation users, next to the popularity baseline.",
        discussion: "Baselines (TDM, TDM+MMoE, SASRec), ablations and the paper suite with several seeds are not built yet.")

    @Option(help: "Bundle folder from `miss train`.") var bundle: String
    @Option(help: "Dataset the bundle was trained on.") var data: String
    @Option(help: "Comma-separated K values.") var k = "50,100,200"
    @Option(help: "Beam size.") var beam = 200
    @Option(help: "Evaluate on the test or the validation users.") var users: UserSet = .test
    @Option(help: "Also write the reports as JSON here.") var json: String?

    enum UserSet: String, ExpressibleByArgument, CaseIterable { case test, validation }

    func run() throws {
        let ks = k.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ks.isEmpty, ks.allSatisfy({ $0 > 0 }) else { throw ValidationError("--k needs comma-separated positive numbers, got '\(k)'") }
        try runReportingInputErrors {
            let dataset = try loadDataset(data)
            let b = try ModelBundle.load(from: URL(fileURLWithPath: bundle), dataset: dataset)
            let split = EvaluationSplit(dataset: dataset, seed: b.manifest.dataset.splitSeed)
            let evalUsers = users == .test ? split.test : split.validation
            var reports: [Evaluation.Report] = []
            for kk in ks {
                let bar = ProgressBar("eval K=\(kk)", total: evalUsers.count, unit: "users")
                reports.append(Evaluation.evaluate(estimator: b.estimator, tree: b.tree, dataset: dataset, users: evalUsers,
                                                   k: kk, beamSize: max(beam, kk)) { bar.update($0) })
                bar.finish()
                reports.append(Evaluation.popularity(dataset: dataset, trainUsers: split.train, users: evalUsers, k: kk))
            }
            print("\(users.rawValue) users of \(dataset.name) (split seed \(b.manifest.dataset.splitSeed)), beam \(beam)")
            print("  method        K   users   Recall@K  Precision@K")
            for r in reports {
                print("  " + r.method.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + String(format: " %5d %7d %10.4f %12.4f", r.k, r.users, r.recall, r.precision))
            }
            if let miss = reports.first(where: { $0.method == "MISS" }) {
                let levels = miss.hierarchicalRecall.enumerated().map { String(format: "%d:%.2f", $0.offset, $0.element) }
                print("  H@hRecall@\(miss.k) by level: " + levels.joined(separator: " "))
            }
            if let json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                try AtomicWrite.write(try enc.encode(reports), to: URL(fileURLWithPath: json))
                print("wrote \(json)")
            }
        }
    }
}
