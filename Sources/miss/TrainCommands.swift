import ArgumentParser
import Foundation
import MISSCore
import MISSData
import MISSModel

/// The training budget `miss train` and `miss eval --suite paper` default to: the library's own
/// (`LevelwiseTrainer.Config`, `ModelTraining.Options`; docs/RESULTS.md: shorter budgets stopped the tree models
/// on a plateau of their validation recall).
enum TrainingDefaults {
    static let steps = LevelwiseTrainer.Config().steps
    static let evalEvery = ModelTraining.Options().evalEvery, patience = ModelTraining.Options().patience
}

extension LevelwiseTrainer.TargetSampling: ExpressibleByArgument {}

/// `--rank-by`: an objective of `dataset` by name or index.
func rankingObjective(_ name: String, dataset: Dataset, file: String) throws -> Int {
    if let i = dataset.objectives.firstIndex(of: name) { return i }
    if let i = Int(name), dataset.objectives.indices.contains(i) { return i }
    throw InputError(file: file, location: "--rank-by \(name)", problem: "the dataset's objectives are \(dataset.objectives.joined(separator: ", "))",
                     fix: "Pass one of those names or an index 0…\(dataset.objectives.count - 1)")
}

/// `--skip-seen-subtrees` / `--no-skip-seen-subtrees` of `miss eval` and `miss retrieve`.
enum SkipSeenSubtrees {
    static let byDefault = BeamSearch.Config().skipSeenSubtrees
    static let help = ArgumentHelp("The beam search does not score inner nodes whose items are all in the user's history: they could take beam slots and yield no item (--no-… is the plain beam search, which can return fewer than K items; docs/RESULTS.md).")
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the MISS node estimator level by level (Eq. 4–7) and write a model bundle.")

    @Option(help: "Dataset file (.missdata).") var data: String
    @Option(help: "Embeddings file from `miss embed`.") var embeddings: String
    @Option(help: "Tree file from `miss build-tree`.") var tree: String
    @Option(help: "Output bundle folder.") var out: String
    @Option(help: "Optimisation steps at most (early stopping may end sooner). On SampleData a model is still improving at 4000 steps (about 2.5 min on 2 cores); at 1000 it sits on a plateau of its validation recall.") var steps = TrainingDefaults.steps
    @Option(help: "User instances per step.") var batch = 16
    @Option(help: "Negative nodes per level and target.") var negatives = 5
    @Option(help: "Not in the paper: the fraction (0…1) of negatives drawn near the positive (same level, under its ancestor --near-span levels up) instead of uniformly over the level. 0 = the paper's sampling.") var nearNegatives = 0.0
    @Option(help: "Levels up to the ancestor whose subtree holds the near negatives.") var nearSpan = 3
    @Option(help: "Near negatives only at levels ≥ this (the deep ones); shallower levels are sampled uniformly. 1 = every level.") var nearFromLevel = 1
    @Option(help: "Adam learning rate.") var learningRate: Float = 2e-3
    @Option(help: "Seed for initialisation and sampling.") var seed: UInt64 = 1
    @Option(help: "Seed of the train/validation/test user split.") var splitSeed: UInt64 = 1
    @Option(help: "ID embedding dimension d.") var idDim = 32
    @Option(help: "Co-GSU sequence length L_co.") var coLength = 2000
    @Option(help: "MM-GSU sequence length L_mm.") var mmLength = 4000
    @Option(help: "Top-K of each GSU.") var topK = 50
    @Option(help: "MMoE experts.") var experts = 4
    @Option(help: "Objectives to train (the dataset's first N; 1 = single objective, as TDM). Default: all.") var objectives: Int?
    @Flag(help: "Ablation \"w/o Co-GSU\": no Co-GSU/Co-SBS representation.") var noCoGsu = false
    @Flag(help: "Ablation \"w/o MM-GSU\" (and TDM): no MM-GSU/MM-SBS representation.") var noMmGsu = false
    @Flag(help: "No multi-modal node feature: the node's frozen MM embedding z_n is left out of the head's input (the paper's baselines, with --no-mm-gsu on a tree not built from MM embeddings, see no MM feature).") var noMmNodeFeature = false
    @Option(help: "Training targets: unseen-items (the test's: the next distinct items not in the history, labels OR-ed per node, negatives never a positive) or next-behaviours (the next behaviours, re-consumptions included).") var targets: LevelwiseTrainer.TargetSampling = .unseenItems
    @Option(help: "Rank the beam by this objective's probability (name or index) instead of the paper's mean over objectives (validation too).") var rankBy: String?
    @Option(help: "Validate (Recall@K with beam K on validation users, the early-stopping score) and checkpoint every N steps; 0 = never.") var evalEvery = TrainingDefaults.evalEvery
    @Option(help: "Stop after this many validations without improvement; 0 = never stop early.") var patience = TrainingDefaults.patience
    @Option(help: "Validation users per validation (the first N of the split's validation users).") var validationUsers = 60
    @Option(help: "K (and beam) of the validation retrieval.") var validationK = 50
    @Option(help: "Also train the SASRec two-tower baseline on the same split for at most N steps (batches of 128 users) and keep it in the bundle (the explorer's Fig. 5 shows its attention); 0 = none.")
    var sasrecSteps = 0

    func validate() throws {
        guard topK >= 1, topK <= coLength, topK <= mmLength else {
            throw ValidationError("--top-k (\(topK)) must be between 1 and both --co-length (\(coLength)) and --mm-length (\(mmLength))")
        }
        guard steps >= 1, batch >= 1, negatives >= 0, idDim >= 1, experts >= 1, learningRate > 0 else {
            throw ValidationError("need --steps, --batch, --id-dim, --experts ≥ 1, --negatives ≥ 0 and --learning-rate > 0")
        }
        guard nearNegatives >= 0, nearNegatives <= 1, nearSpan >= 1, nearFromLevel >= 1 else {
            throw ValidationError("--near-negatives must be in 0…1 (got \(nearNegatives)), --near-span ≥ 1 (got \(nearSpan)) and --near-from-level ≥ 1 (got \(nearFromLevel))")
        }
        guard evalEvery >= 0, patience >= 0, validationUsers >= 1, validationK >= 1, sasrecSteps >= 0 else {
            throw ValidationError("need --eval-every ≥ 0, --patience ≥ 0, --validation-users ≥ 1, --validation-k ≥ 1 and --sasrec-steps ≥ 0")
        }
    }

    func run() throws {
        try runReportingInputErrors {
            let t0 = Date()
            let dataset = try loadDataset(data)
            let emb = try ItemEmbeddings.load(from: URL(fileURLWithPath: embeddings), expectedItems: dataset.itemCount)
            // Embeddings aligned (and, for tags, written) on another split's training users have seen this split's evaluation users.
            if let recorded = emb.metadata["split_seed"], recorded != String(splitSeed) {
                throw InputError(file: embeddings, location: "__metadata__.split_seed", problem: "was aligned on split seed \(recorded), not --split-seed \(splitSeed)",
                                 fix: "Run `miss embed --data \(data) --split-seed \(splitSeed) --out …`, or train with --split-seed \(recorded)")
            }
            let indexTree = try IndexTree.load(from: URL(fileURLWithPath: tree), expectedItems: dataset.itemCount)
            guard indexTree.dim == emb.multimodal.cols else {
                throw InputError(file: tree, location: "node_embeddings", problem: "has \(indexTree.dim) dims but the MM embeddings have \(emb.multimodal.cols)",
                                 fix: "Build the tree from these embeddings with `miss build-tree --source mm`")
            }
            guard nearFromLevel <= indexTree.leafLevel else {
                throw InputError(file: tree, location: "--near-from-level \(nearFromLevel)", problem: "the tree's deepest level is \(indexTree.leafLevel)",
                                 fix: "Pass a level in 1…\(indexTree.leafLevel)")
            }
            var config = EstimatorConfig()
            config.idDim = idDim; config.coLength = coLength; config.mmLength = mmLength; config.topK = topK
            config.experts = experts; config.objectives = dataset.objectives.count
            if let objectives {
                guard objectives >= 1 && objectives <= dataset.objectives.count else {
                    throw InputError(file: data, location: "--objectives \(objectives)", problem: "the dataset has \(dataset.objectives.count) objectives (\(dataset.objectives.joined(separator: ", ")))",
                                     fix: "Pass 1…\(dataset.objectives.count)")
                }
                config.objectives = objectives
            }
            config.useCoGSU = !noCoGsu; config.useMMGSU = !noMmGsu; config.mmNodeFeature = !noMmNodeFeature
            let split = EvaluationSplit(dataset: dataset, seed: splitSeed)
            var options = ModelTraining.Options()
            options.config = config
            options.trainer.steps = steps; options.trainer.instancesPerBatch = batch; options.trainer.negativesPerLevel = negatives
            options.trainer.learningRate = learningRate; options.trainer.seed = seed
            options.trainer.nearNegatives = nearNegatives; options.trainer.nearSpan = nearSpan
            options.trainer.nearFromLevel = nearFromLevel; options.trainer.targets = targets
            options.rankingObjective = try rankBy.map { try rankingObjective($0, dataset: dataset, file: data) }
            options.evalEvery = evalEvery; options.patience = patience
            options.validationUsers = validationUsers; options.validationK = validationK
            let bar = ProgressBar("train", total: steps, unit: "steps")
            let url = URL(fileURLWithPath: out)
            let checkpointURL = URL(fileURLWithPath: out + ".checkpoint")
            func bundle(_ estimator: NodeEstimator, _ training: [String: Double]) -> ModelBundle {
                var t = training
                t["seed"] = Double(seed)
                if nearNegatives > 0 {
                    t["near_negatives"] = nearNegatives; t["near_span"] = Double(nearSpan); t["near_from_level"] = Double(nearFromLevel)
                }
                return ModelBundle(estimator: estimator, tree: indexTree, embeddings: emb, dataset: dataset, splitSeed: splitSeed, training: t)
            }
            let outcome = try ModelTraining.run(dataset: dataset, tree: indexTree, itemMM: emb.multimodal, split: split, options: options,
                                                progress: { r, rate, best in
                let v = best.map { String(format: ", best val Recall@%d %.3f @%d", validationK, $0.score, $0.step) } ?? ""
                bar.update(r.step, status: String(format: "loss %.4f, %.0f samples/s", r.loss, rate) + v)
            }, checkpoint: { estimator, step, score in
                // A checkpoint of the current weights, atomically (a crash leaves the previous one intact).
                try bundle(estimator, ["steps": Double(step), "validated_score": score]).write(to: checkpointURL)
            })
            bar.finish()
            if let best = outcome.best {
                print(String(format: "validation (%d users, Recall@%d, beam %d) by step: %@; best %.4f at step %d%@",
                             min(validationUsers, split.validation.count), validationK, validationK, outcome.history.map(\.short).joined(separator: " "),
                             best.score, best.step, outcome.stepsRun < steps ? "; stopped early at step \(outcome.stepsRun)" : ""))
            }
            var final = bundle(outcome.estimator, outcome.trainingMetrics)
            if sasrecSteps > 0 {
                var so = SASRecTraining.Options()
                so.steps = sasrecSteps; so.seed = seed; so.config.dim = idDim
                so.validationUsers = validationUsers; so.validationK = validationK
                let sbar = ProgressBar("SASRec", total: sasrecSteps, unit: "steps")
                let s = try SASRecTraining.run(dataset: dataset, split: split, options: so) { step, loss in
                    sbar.update(step, status: String(format: "loss %.4f", loss))
                }
                sbar.finish()
                print(String(format: "SASRec: %d steps in %.1f s (%.0f users/s), best validation Recall@%d %.4f at step %d",
                             s.stepsRun, s.trainSeconds, s.samplesPerSecond, validationK, s.best?.recall ?? .nan, s.best?.step ?? s.stepsRun))
                final.sasrec = s.model
                final.manifest.training["sasrec_steps"] = Double(s.stepsRun)
                if let b = s.best { final.manifest.training["sasrec_validation_recall"] = b.recall }
            }
            try final.write(to: url)
            try? FileManager.default.removeItem(at: checkpointURL)
            print(String(format: "wrote bundle %@: %d steps, %d samples in %.1f s of training (%.0f samples/s) + %.1f s of validation, final loss %.4f; total %.1f s",
                         url.path, outcome.stepsRun, outcome.samples, outcome.trainSeconds, outcome.samplesPerSecond, outcome.validationSeconds,
                         outcome.lastLoss, Date().timeIntervalSince(t0)))
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
    @Flag(inversion: .prefixedNo, help: SkipSeenSubtrees.help) var skipSeenSubtrees = SkipSeenSubtrees.byDefault

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
                                   config: .init(beamSize: beam, finalK: k, skipSeenSubtrees: skipSeenSubtrees), exclude: Set(items))
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
        discussion: "With --suite paper: TDM, TDM+MMoE, SASRec, MISS, popularity, the ablations and the MM-GSU length study over several seeds.")

    @Option(help: "Bundle folder from `miss train` (not with --suite).") var bundle: String?
    @Option(help: "Dataset (.missdata).") var data: String
    @Option(help: "Comma-separated K values.") var k = "50,100,200"
    @Option(help: "Beam size (at least K); default: K, the paper's.") var beam: Int?
    @Option(help: "Evaluate on the test or the validation users.") var users: UserSet = .test
    @Option(help: "Also write the reports as JSON here.") var json: String?
    @Flag(help: "Also score every item with the estimator, without the tree (a diagnostic of what beam search loses; slow).") var exhaustive = false
    @Flag(inversion: .prefixedNo, help: SkipSeenSubtrees.help) var skipSeenSubtrees = SkipSeenSubtrees.byDefault
    @Option(help: "paper: train and evaluate the baselines, MISS, its ablations and the MM-GSU length study on several split seeds (needs --embeddings).")
    var suite: Suite?
    @Option(help: "With --suite: embeddings files from `miss embed --split-seed S`, comma-separated, one per --split-seeds value in that order (each aligned on its split's training users).") var embeddings: String?
    @Option(help: "With --suite: comma-separated split seeds (each its own train / validation / test users).") var splitSeeds = "1,2,3"
    @Option(help: "With --suite: comma-separated training seeds per split.") var seeds = "1"
    @Option(help: "With --suite: training steps per tree model at most: a cap, early stopping on validation Recall@K ends the runs (on ml-latest-small MISS's best validation came at step 5600, and training stopped at 7600); a model whose best validation is the last step is marked in the tables.") var steps = 20_000
    @Option(help: "With --suite: validate every N steps (early stopping).") var evalEvery = TrainingDefaults.evalEvery
    @Option(help: "With --suite: validations without gain before stopping (every method).") var patience = TrainingDefaults.patience
    @Option(help: "With --suite: K of the validation Recall@K every method early-stops on (default: the first --k).") var validationK: Int?
    @Option(help: "With --suite: comma-separated L_mm values of the length study (L_mm 4000 is MISS itself).") var mmLengths = "1000,2000,4000,8000"
    @Option(help: "With --suite: Table 2b's own models (w/o Co-GSU, w/o MM tree) and the length study run on this many of the split seeds (the first ones).") var detailSplits = 1
    @Option(help: "With --suite: training targets of every method (unseen-items: the test's definition; next-behaviours: re-consumptions included).") var targets: LevelwiseTrainer.TargetSampling = .unseenItems
    @Option(help: "Rank by this objective (name or index) instead of the paper's mean over objectives.") var rankBy: String?
    @Option(help: "With --suite: also write the tables as Markdown here.") var markdown: String?
    @Option(help: "With --suite: SASRec training steps at most (batches of 128 users; validated every 250).") var sasrecSteps = 5000

    enum UserSet: String, ExpressibleByArgument, CaseIterable { case test, validation }
    enum Suite: String, ExpressibleByArgument, CaseIterable { case paper }

    func run() throws {
        let ks = k.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ks.isEmpty, ks.allSatisfy({ $0 > 0 }) else { throw ValidationError("--k needs comma-separated positive numbers, got '\(k)'") }
        if suite == .paper { return try runSuite(ks: ks) }
        guard let bundle else { throw ValidationError("--bundle is needed (or --suite paper)") }
        try runReportingInputErrors {
            let dataset = try loadDataset(data)
            let b = try ModelBundle.load(from: URL(fileURLWithPath: bundle), dataset: dataset)
            let split = EvaluationSplit(dataset: dataset, seed: b.manifest.dataset.splitSeed)
            let evalUsers = users == .test ? split.test : split.validation
            let ranking = try rankBy.map { try rankingObjective($0, dataset: dataset, file: data) }
            var reports: [Evaluation.Report] = []
            for kk in ks {
                let bar = ProgressBar("eval K=\(kk)", total: evalUsers.count, unit: "users")
                reports.append(Evaluation.evaluate(estimator: b.estimator, tree: b.tree, dataset: dataset, users: evalUsers,
                                                   k: kk, beamSize: max(beam ?? kk, kk), skipSeenSubtrees: skipSeenSubtrees,
                                                   rankingObjective: ranking) { bar.update($0) })
                bar.finish()
                if exhaustive {
                    let xbar = ProgressBar("all leaves K=\(kk)", total: evalUsers.count, unit: "users")
                    reports.append(Evaluation.evaluateExhaustive(estimator: b.estimator, tree: b.tree, dataset: dataset, users: evalUsers, k: kk) {
                        xbar.update($0)
                    })
                    xbar.finish()
                }
                reports.append(Evaluation.popularity(dataset: dataset, trainUsers: split.train, users: evalUsers, k: kk))
            }
            print("\(users.rawValue) users of \(dataset.name) (split seed \(b.manifest.dataset.splitSeed)), beam \(beam.map(String.init) ?? "K")"
                  + (ranking.map { ", ranked by \(dataset.objectives[$0])" } ?? ""))
            print("  method        K   users   Recall@K  Precision@K  returned (mean, users short of K)")
            for r in reports {
                print("  " + r.method.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + String(format: " %5d %7d %10.4f %12.4f  %8.1f %4d", r.k, r.users, r.recall, r.precision, r.meanReturned, r.usersShort))
            }
            if let short = reports.first(where: { $0.usersShort > 0 }) {
                print("  \(short.usersShort) users got fewer than \(short.k) items from \(short.method): "
                      + (skipSeenSubtrees ? "the catalogue holds fewer than K items outside their history"
                                          : "the beam excludes their history only at the leaves, and already-seen items' subtrees "
                                            + "took beam slots (--skip-seen-subtrees, the default, or a larger --beam leaves more)"))
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

    func runSuite(ks: [Int]) throws {
        guard let embeddings else { throw ValidationError("--suite paper needs --embeddings (from `miss embed`, one per split seed)") }
        let splitList = splitSeeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        let seedList = seeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        let lengths = mmLengths.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let embeddingFiles = embeddings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !splitList.isEmpty, !seedList.isEmpty, !lengths.isEmpty, lengths.allSatisfy({ $0 >= 1 }), steps >= 1, sasrecSteps >= 1,
              detailSplits >= 0, (validationK ?? 1) >= 1, (beam ?? 1) >= 1 else {
            throw ValidationError("--split-seeds, --seeds and --mm-lengths need comma-separated numbers, --steps and --sasrec-steps ≥ 1")
        }
        guard embeddingFiles.count == splitList.count else {
            throw ValidationError("--embeddings has \(embeddingFiles.count) files for \(splitList.count) split seeds: give one per split seed, in the order of --split-seeds")
        }
        try runReportingInputErrors {
            let dataset = try loadDataset(data)
            // Each split's embeddings were aligned on that split's training users: check it, then load them as needed.
            var files: [UInt64: String] = [:]
            for (split, file) in zip(splitList, embeddingFiles) {
                let emb = try ItemEmbeddings.load(from: URL(fileURLWithPath: file), expectedItems: dataset.itemCount)
                if let recorded = emb.metadata["split_seed"], recorded != String(split) {
                    throw InputError(file: file, location: "__metadata__.split_seed", problem: "was aligned on split seed \(recorded), listed for split seed \(split)",
                                     fix: "Run `miss embed --data \(data) --split-seed \(split) --out …` and list its output at that place in --embeddings")
                }
                files[split] = file
            }
            var o = PaperSuite.Options()
            o.splitSeeds = splitList; o.seeds = seedList; o.ks = ks; o.beam = beam; o.mmLengths = lengths
            o.detailSplits = detailSplits; o.skipSeenSubtrees = skipSeenSubtrees
            o.training.trainer.steps = steps; o.training.evalEvery = evalEvery; o.training.patience = patience
            o.training.validationK = validationK ?? ks[0]; o.training.trainer.targets = targets
            o.training.rankingObjective = try rankBy.map { try rankingObjective($0, dataset: dataset, file: data) }
            o.training.config.objectives = dataset.objectives.count
            o.sasrec.steps = sasrecSteps
            let t0 = Date()
            let bar = ProgressBar("suite", total: o.modelCount(), unit: "models")
            var done = 0
            let result = try PaperSuite.run(dataset: dataset, itemMM: { split in
                try ItemEmbeddings.load(from: URL(fileURLWithPath: files[split]!), expectedItems: dataset.itemCount).multimodal
            }, options: o) { line in
                done += 1
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line + "\n").utf8))
                bar.update(done)
            }
            bar.finish()
            var command = "miss eval --suite paper --data \(data) --embeddings \(embeddings) --split-seeds \(splitSeeds) --seeds \(seeds) --steps \(steps)"
            command += " --eval-every \(evalEvery) --patience \(patience) --sasrec-steps \(sasrecSteps) --k \(k) --mm-lengths \(mmLengths)"
            command += " --detail-splits \(detailSplits)"
            if let beam { command += " --beam \(beam)" }
            if let validationK { command += " --validation-k \(validationK)" }
            if targets != .unseenItems { command += " --targets \(targets.rawValue)" }
            if let rankBy { command += " --rank-by \(rankBy)" }
            if skipSeenSubtrees != SkipSeenSubtrees.byDefault { command += " --no-skip-seen-subtrees" }
            let md = PaperSuite.markdown(result, command: command)
            print(md)
            if let json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                try AtomicWrite.write(try enc.encode(result), to: URL(fileURLWithPath: json))
                print("wrote \(json) (every run's per-user numbers)")
            }
            if let markdown {
                try AtomicWrite.write(md, to: URL(fileURLWithPath: markdown))
                print("wrote \(markdown)")
            }
            print(String(format: "suite done in %.0f s: %d models trained", Date().timeIntervalSince(t0), done))
        }
    }
}
