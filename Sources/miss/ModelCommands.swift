import ArgumentParser
import Foundation
import MISSCore
import MISSData
import MISSModel

func loadDataset(_ path: String) throws -> Dataset {
    try Dataset.load(from: URL(fileURLWithPath: path))
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute content features and align them into frozen multi-modal item embeddings (Eq. 1–2).",
        discussion: """
            Trains the fusion encoder on item pairs that co-occur in training users' sequences (InfoNCE with \
            in-batch negatives plus masked-modality reconstruction), then reports item2item Recall@K on \
            held-out pairs from validation users for the raw content features and for the aligned embeddings. \
            The encoded text is each item's own text plus the tags written by the training users of \
            --split-seed only (train with the same --split-seed).
            """)

    @Option(help: "Dataset file (.missdata).") var data: String
    @Option(help: "Output embeddings file.") var out: String
    @Option(help: "Embedding dimension.") var dim = 64
    @Option(help: "Training steps.") var steps = 1500
    @Option(help: "Pairs per batch.") var batch = 256
    @Option(help: "InfoNCE temperature τ.") var temperature: Float = 0.1
    @Option(help: "Seed for the encoder and batches.") var seed: UInt64 = 1
    @Option(help: "Seed of the train/validation/test user split.") var splitSeed: UInt64 = 1
    @Option(help: "Held-out pairs for the recall report.") var evalPairs = 2000
    @Option(help: "Text encoder for datasets without a text modality: auto (MiniLM if installed), minilm, hashed.")
    var textEncoder: TextEncoderChoice = .auto

    enum TextEncoderChoice: String, ExpressibleByArgument, CaseIterable { case auto, minilm, hashed }

    /// MiniLM when chosen or available; nil means the hashed n-gram fallback.
    func makeTextEncoder() throws -> TextEncoder? {
        switch textEncoder {
        case .hashed: return nil
        case .auto where !MiniLM.isInstalled: return nil
        case .auto, .minilm:
            let model = try MiniLM()
            return TextEncoder(name: "minilm") { texts in
                let bar = ProgressBar("minilm", total: texts.count, unit: "texts")
                let e = model.encode(texts) { bar.update($0) }
                bar.finish()
                return e
            }
        }
    }

    /// What the text block was made from, in words, for the summary and the file's metadata.
    func textProvenance(dataset: Dataset, split: EvaluationSplit, textSource: String) -> String {
        guard textSource != "dataset" else { return "the dataset's own text modality (no item text or annotations encoded)" }
        let all = dataset.annotationCounts(writtenBy: 0..<dataset.userCount)
        guard all.annotations > 0 else { return "each item's own text (the dataset has no user annotations such as tags)" }
        let kept = dataset.annotationCounts(writtenBy: split.train)
        return "each item's own text (title, genres …) + the tags of \(kept.writers) training users of split seed \(split.seed)"
            + " (\(kept.annotations) of \(all.annotations) tags; \(all.annotations - kept.annotations) by \(all.writers - kept.writers) validation and test users left out)"
    }

    func validate() throws {
        guard dim >= 2, steps >= 1, batch >= 2, temperature > 0, evalPairs >= 1 else {
            throw ValidationError("need --dim ≥ 2, --steps ≥ 1, --batch ≥ 2, --temperature > 0 and --eval-pairs ≥ 1")
        }
    }

    func run() throws {
        try runReportingInputErrors {
            let t0 = Date()
            let dataset = try loadDataset(data)
            let split = EvaluationSplit(dataset: dataset, seed: splitSeed)
            // Only the training users' annotations: an evaluation user's tag may name a held-out target.
            let content = try ContentFeatures.build(dataset: dataset, texts: dataset.contentTexts(trainingUsers: split.train),
                                                    textEncoder: try makeTextEncoder())
            if content.textSource == "hashed-ngram" {
                FileHandle.standardError.write(Data(("warning: text features use the hashed n-gram fallback"
                    + (textEncoder == .hashed ? " (--text-encoder hashed)" : " (MiniLM weights not installed: run `bash scripts/fetch-minilm.sh`)") + "\n").utf8))
            }
            let text = textProvenance(dataset: dataset, split: split, textSource: content.textSource)
            var config = ItemAlignment.Config()
            config.outputDim = dim; config.steps = steps; config.batchSize = batch
            config.temperature = temperature; config.seed = seed
            let bar = ProgressBar("align", total: steps, unit: "steps")
            let model = try ItemAlignment.train(content: content, dataset: dataset, trainUsers: split.train, config: config) { s, r in
                bar.update(s, status: String(format: "InfoNCE %.3f recon %.4f", r.contrastive, r.reconstruction))
            }
            bar.finish()
            let mm = model.embed(content.matrix)
            var rng = Xoshiro256StarStar(seed: splitSeed).derived("held-out-pairs")
            let heldOut = CooccurrenceSampler(dataset: dataset, users: split.validation, window: config.window).pairs(evalPairs, &rng)
            let ks = [10, 50, 100]
            let raw = ItemToItemRecall.evaluate(embeddings: content.matrix, pairs: heldOut, ks: ks)
            let aligned = ItemToItemRecall.evaluate(embeddings: mm, pairs: heldOut, ks: ks)
            var meta: [String: String] = ["dataset": dataset.name, "steps": String(steps), "seed": String(seed), "split_seed": String(splitSeed),
                                          "text": text]
            for k in ks {
                meta["recall@\(k).raw"] = String(format: "%.4f", raw[k]!)
                meta["recall@\(k).aligned"] = String(format: "%.4f", aligned[k]!)
            }
            let url = URL(fileURLWithPath: out)
            try ItemEmbeddings(content: content.matrix, multimodal: mm, textSource: content.textSource, metadata: meta).write(to: url)
            print("item2item Recall@K on \(heldOut.count) held-out pairs of \(split.validation.count) validation users:")
            print("  K      raw content   aligned MM")
            for k in ks { print(String(format: "  %-6d %11.4f %12.4f", k, raw[k]!, aligned[k]!)) }
            print("text: \(text)")
            print("wrote \(url.path) (\(fileSize(url))): content \(content.matrix.rows)×\(content.matrix.cols) (\(content.blocks.map(\.name).joined(separator: " + ")), text from \(content.textSource)), mm \(mm.rows)×\(mm.cols) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
        }
    }
}

struct BuildTree: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-tree",
        abstract: "Build the index tree by recursive balanced 2-means over item embeddings (Eq. 3).")

    enum Source: String, ExpressibleByArgument, CaseIterable { case mm, content, id }
    enum Kind: String, ExpressibleByArgument, CaseIterable { case multimodal, random }

    @Option(help: "Dataset file (.missdata).") var data: String
    @Option(help: "Embeddings file from `miss embed`.") var embeddings: String
    @Option(help: "Which embeddings to cluster: mm (aligned, MISS), content (raw), or id (the learned item ID embeddings of --bundle: TDM and the \"w/o MM tree\" ablation; node embeddings stay multi-modal means).") var source: Source = .mm
    @Option(help: "With --source id: the trained bundle whose item ID embeddings are clustered.") var bundle: String?
    @Option(help: "multimodal (2-means) or random (a baseline).") var kind: Kind = .multimodal
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Output tree file.") var out: String

    func run() throws {
        try runReportingInputErrors {
            let dataset = try loadDataset(data)
            let e = try ItemEmbeddings.load(from: URL(fileURLWithPath: embeddings), expectedItems: dataset.itemCount)
            let x: Matrix
            switch source {
            case .mm: x = e.multimodal
            case .content: x = e.content
            case .id:
                guard let bundle else { throw ValidationError("--source id needs --bundle: the trained bundle whose item ID embeddings to cluster") }
                let b = try ModelBundle.load(from: URL(fileURLWithPath: bundle), dataset: dataset)
                x = b.estimator.itemIDEmbeddings
            }
            var options = IndexTree.BuildOptions()
            options.seed = seed
            let t0 = Date()
            let bar = ProgressBar("tree", total: 1, unit: "levels")
            var tree = IndexTree.build(embeddings: x, kind: kind == .random ? .random : source == .id ? .idEmbedding : .multimodal,
                                       options: options) { h, total in
                bar.update(h)
            }
            bar.finish()
            // Node embeddings (z_n for MM-GSU) are always the multi-modal means, whatever shaped the tree.
            if source != .mm { tree = tree.withNodeEmbeddings(from: e.multimodal) }
            let url = URL(fileURLWithPath: out)
            try tree.write(to: url)
            print("wrote \(url.path) (\(fileSize(url))): \(tree.itemCount) leaves, \(tree.leafLevel + 1) levels, \(tree.nodeCount) nodes, structure from \(x.cols)-d \(source.rawValue) embeddings, built in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
        }
    }
}

struct TreeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tree", abstract: "Inspect an index tree.", subcommands: [Stats.self])

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Depth, leaves, balance and per-level purity against the dataset's categories.")

        @Option(help: "Tree file.") var tree: String
        @Option(help: "Dataset file the tree was built for.") var data: String

        func run() throws {
            try runReportingInputErrors {
                let dataset = try loadDataset(data)
                let t = try IndexTree.load(from: URL(fileURLWithPath: tree), expectedItems: dataset.itemCount)
                print("tree \(tree): kind \(t.kind.rawValue), \(t.itemCount) leaves at level \(t.leafLevel), \(t.nodeCount) nodes, \(t.dim)-d node embeddings")
                print("purity = share of a node's items in its most common category, over the level (\(dataset.categoryNames.count) categories)")
                print("  level    nodes  one-child   purity")
                for s in t.levelStatistics(labels: dataset.itemCategories) {
                    print(String(format: "  %5d %8d %10d %8.3f", s.level, s.nodes, s.singleChildNodes, s.purity))
                }
            }
        }
    }
}
