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
    @Option(help: "Validate (H@hRecall and Recall@K on validation users) and checkpoint every N steps; 0 = never.") var evalEvery = TrainingDefaults.evalEvery
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
            config.useCoGSU = !noCoGsu; config.useMMGSU = !noMmGsu
            let split = EvaluationSplit(dataset: dataset, seed: splitSeed)
            var options = ModelTraining.Options()
            options.config = config
            options.trainer.steps = steps; options.trainer.instancesPerBatch = batch; options.trainer.negativesPerLevel = negatives
            options.trainer.learningRate = learningRate; options.trainer.seed = seed
            options.trainer.nearNegatives = nearNegatives; options.trainer.nearSpan = nearSpan
            options.trainer.nearFromLevel = nearFromLevel
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
                let v = best.map { String(format: ", best val H@hRecall %.3f @%d", $0.score, $0.step) } ?? ""
                bar.update(r.step, status: String(format: "loss %.4f, %.0f samples/s", r.loss, rate) + v)
            }, checkpoint: { estimator, step, score in
                // A checkpoint of the current weights, atomically (a crash leaves the previous one intact).
                try bundle(estimator, ["steps": Double(step), "validated_score": score]).write(to: checkpointURL)
            })
            bar.finish()
            if let best = outcome.best {
                print(String(format: "validation (%d users, mean H@hRecall@%d over levels) by step: %@; best %.4f at step %d (Recall@%d %.4f)%@",
                             min(validationUsers, split.validation.count), validationK, outcome.history.map(\.short).joined(separator: " "), best.score, best.step,
                             validationK, best.recall, outcome.stepsRun < steps ? "; stopped early at step \(outcome.stepsRun)" : ""))
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
    @Option(help: "Beam size.") var beam = 200
    @Option(help: "Evaluate on the test or the validation users.") var users: UserSet = .test
    @Option(help: "Also write the reports as JSON here.") var json: String?
    @Flag(help: "Also score every item with the estimator, without the tree (a diagnostic of what beam search loses; slow).") var exhaustive = false
    @Flag(inversion: .prefixedNo, help: SkipSeenSubtrees.help) var skipSeenSubtrees = SkipSeenSubtrees.byDefault
    @Option(help: "paper: train and evaluate the baselines, MISS, its ablations and the MM-GSU length study over several seeds (needs --embeddings).")
    var suite: Suite?
    @Option(help: "With --suite: embeddings file from `miss embed`.") var embeddings: String?
    @Option(help: "With --suite: comma-separated seeds.") var seeds = "1,2,3"
    @Option(help: "With --suite: training steps per model at most (4000 on 2 cores, 3 seeds: about an hour on SampleData with the length study, 40 min on ml-latest-small without it; shorter budgets stop the tree models on a plateau, see docs/RESULTS.md).") var steps = TrainingDefaults.steps
    @Option(help: "With --suite: validate every N steps (early stopping).") var evalEvery = TrainingDefaults.evalEvery
    @Option(help: "With --suite: validations without gain before stopping.") var patience = TrainingDefaults.patience
    @Option(help: "With --suite: comma-separated L_mm values of the length study (L_mm 4000 is MISS itself).") var mmLengths = "1000,2000,4000,8000"
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
            var reports: [Evaluation.Report] = []
            for kk in ks {
                let bar = ProgressBar("eval K=\(kk)", total: evalUsers.count, unit: "users")
                reports.append(Evaluation.evaluate(estimator: b.estimator, tree: b.tree, dataset: dataset, users: evalUsers,
                                                   k: kk, beamSize: max(beam, kk), skipSeenSubtrees: skipSeenSubtrees) { bar.update($0) })
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
            print("\(users.rawValue) users of \(dataset.name) (split seed \(b.manifest.dataset.splitSeed)), beam \(beam)")
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
        guard let embeddings else { throw ValidationError("--suite paper needs --embeddings (from `miss embed`)") }
        let seedList = seeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        let lengths = mmLengths.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !seedList.isEmpty, !lengths.isEmpty, lengths.allSatisfy({ $0 >= 1 }), steps >= 1, sasrecSteps >= 1 else {
            throw ValidationError("--seeds and --mm-lengths need comma-separated numbers, --steps and --sasrec-steps ≥ 1")
        }
        try runReportingInputErrors {
            let dataset = try loadDataset(data)
            let emb = try ItemEmbeddings.load(from: URL(fileURLWithPath: embeddings), expectedItems: dataset.itemCount)
            var o = PaperSuite.Options()
            o.seeds = seedList; o.ks = ks; o.beam = beam; o.mmLengths = lengths; o.skipSeenSubtrees = skipSeenSubtrees
            o.training.trainer.steps = steps; o.training.evalEvery = evalEvery; o.training.patience = patience
            o.training.config.objectives = dataset.objectives.count
            o.sasrec.steps = sasrecSteps
            let t0 = Date()
            let perSeed = 2 + 5 + 1 + lengths.filter { $0 != o.training.config.mmLength }.count
            let bar = ProgressBar("suite", total: seedList.count * perSeed, unit: "models")
            var done = 0
            let result = try PaperSuite.run(dataset: dataset, itemMM: emb.multimodal, options: o) { line in
                done += 1
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line + "\n").utf8))
                bar.update(done)
            }
            bar.finish()
            let command = "miss eval --suite paper --data \(data) --embeddings \(embeddings) --seeds \(seeds) --steps \(steps) --eval-every \(evalEvery) --patience \(patience) --sasrec-steps \(sasrecSteps) --k \(k) --beam \(beam) --mm-lengths \(mmLengths)"
                + (skipSeenSubtrees == SkipSeenSubtrees.byDefault ? "" : " --no-skip-seen-subtrees")
            let md = PaperSuite.markdown(result, command: command)
            print(md)
            if let json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                try AtomicWrite.write(try enc.encode(result), to: URL(fileURLWithPath: json))
                print("wrote \(json)")
            }
            if let markdown {
                try AtomicWrite.write(md, to: URL(fileURLWithPath: markdown))
                print("wrote \(markdown)")
            }
            print(String(format: "suite done in %.0f s", Date().timeIntervalSince(t0)))
        }
    }
}
