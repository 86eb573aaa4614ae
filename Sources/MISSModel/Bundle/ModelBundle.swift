import Foundation
import MISSCore
import MISSData

/// A trained model as a directory, written atomically:
/// `manifest.json` (format version, config, dataset fingerprint, training metrics, file checksums),
/// `weights.safetensors` (every parameter by name; Python's safetensors loads it),
/// `tree.misstree`, `embeddings.missemb` (frozen item MM embeddings) and `items.safetensors`
/// (item ids and titles, so that a bundle can be read without its dataset); optionally `sasrec.safetensors`,
/// a SASRec two-tower baseline trained on the same split (the explorer's Fig. 5 compares its attention).
public struct ModelBundle {
    public static let format = "miss-bundle"
    public static let version = 1

    public struct Manifest: Codable, Sendable, Equatable {
        public var format: String
        public var version: Int
        public var config: EstimatorConfig
        public var dataset: DatasetInfo
        public var tree: TreeInfo
        public var training: [String: Double]
        /// FNV-1a 64-bit of each file's bytes, hex.
        public var checksums: [String: String]
        /// The SASRec baseline's configuration when the bundle carries one.
        public var sasrec: SASRec.Config?

        public init(format: String, version: Int, config: EstimatorConfig, dataset: DatasetInfo, tree: TreeInfo,
                    training: [String: Double], checksums: [String: String], sasrec: SASRec.Config? = nil) {
            self.format = format; self.version = version; self.config = config; self.dataset = dataset
            self.tree = tree; self.training = training; self.checksums = checksums; self.sasrec = sasrec
        }
    }

    public struct DatasetInfo: Codable, Sendable, Equatable {
        public var name: String
        public var fingerprint: String
        public var items: Int
        public var users: Int
        public var objectives: [String]
        public var splitSeed: UInt64

        public init(name: String, fingerprint: String, items: Int, users: Int, objectives: [String], splitSeed: UInt64) {
            self.name = name; self.fingerprint = fingerprint; self.items = items; self.users = users
            self.objectives = objectives; self.splitSeed = splitSeed
        }
    }

    public struct TreeInfo: Codable, Sendable, Equatable {
        public var kind: String
        public var levels: Int
        public var nodes: Int

        public init(kind: String, levels: Int, nodes: Int) { self.kind = kind; self.levels = levels; self.nodes = nodes }
    }

    public var manifest: Manifest
    public var estimator: NodeEstimator
    public var tree: IndexTree
    public var embeddings: ItemEmbeddings
    public var itemIDs: [String]
    public var itemTitles: [String]
    /// The SASRec baseline trained next to the estimator, if any.
    public var sasrec: SASRec?

    public init(manifest: Manifest, estimator: NodeEstimator, tree: IndexTree, embeddings: ItemEmbeddings,
                itemIDs: [String], itemTitles: [String]) {
        self.manifest = manifest; self.estimator = estimator; self.tree = tree; self.embeddings = embeddings
        self.itemIDs = itemIDs; self.itemTitles = itemTitles
    }

    /// A bundle for a model trained on `dataset`: the manifest's dataset and tree sections are filled in from them.
    public init(estimator: NodeEstimator, tree: IndexTree, embeddings: ItemEmbeddings, dataset: Dataset, splitSeed: UInt64,
                training: [String: Double]) {
        let manifest = Manifest(
            format: Self.format, version: Self.version, config: estimator.config,
            dataset: .init(name: dataset.name, fingerprint: Self.fingerprint(dataset), items: dataset.itemCount,
                           users: dataset.userCount, objectives: dataset.objectives, splitSeed: splitSeed),
            tree: .init(kind: tree.kind.rawValue, levels: tree.leafLevel + 1, nodes: tree.nodeCount),
            training: training, checksums: [:])
        self.init(manifest: manifest, estimator: estimator, tree: tree, embeddings: embeddings,
                  itemIDs: dataset.itemIDs, itemTitles: dataset.itemTitles)
    }

    /// A stable fingerprint of a dataset's catalogue and behaviours (not of its file bytes).
    public static func fingerprint(_ d: Dataset) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ v: UInt64) { h = (h ^ v) &* 0x0000_0100_0000_01B3 }
        for id in d.itemIDs { for b in id.utf8 { mix(UInt64(b)) }; mix(0xFF) }
        for id in d.userIDs { for b in id.utf8 { mix(UInt64(b)) }; mix(0xFE) }
        mix(UInt64(d.behaviourCount))
        for i in stride(from: 0, to: d.behaviourCount, by: max(1, d.behaviourCount / 4096)) { mix(UInt64(bitPattern: Int64(d.behaviourItems[i]))) }
        return String(h, radix: 16)
    }

    public static func checksum(_ data: Data) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in data { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return String(h, radix: 16)
    }

    public func write(to url: URL) throws {
        var weights = SafetensorsWriter(metadata: ["format": "miss-weights", "version": String(Self.version)])
        for p in estimator.parameters { weights.add(p.name, matrix: p.value) }
        var files: [String: Data] = [:]
        var manifest = self.manifest
        manifest.sasrec = sasrec?.config
        if let sasrec {
            var w = SafetensorsWriter(metadata: ["format": "miss-sasrec", "version": String(Self.version)])
            for p in sasrec.parameters { w.add(p.name, matrix: p.value) }
            files["sasrec.safetensors"] = w.serialized()
        }
        var items = SafetensorsWriter(metadata: ["format": "miss-items", "version": String(Self.version)])
        items.add("item.ids", strings: itemIDs)
        items.add("item.titles", strings: itemTitles)
        files["weights.safetensors"] = weights.serialized()
        files["tree.misstree"] = tree.fileData()
        files["items.safetensors"] = items.serialized()
        for (name, data) in files { manifest.checksums[name] = Self.checksum(data) }
        try AtomicWrite.writeDirectory(at: url) { dir in
            for (name, data) in files { try AtomicWrite.write(data, to: dir.appendingPathComponent(name)) }
            try embeddings.write(to: dir.appendingPathComponent("embeddings.missemb"))
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicWrite.write(try enc.encode(manifest), to: dir.appendingPathComponent("manifest.json"))
        }
    }

    /// Loads and checks a bundle: format version, file checksums, tree vs weights vs config shapes,
    /// and (with `dataset`) that it was trained on this dataset.
    public static func load(from url: URL, dataset: Dataset? = nil) throws -> ModelBundle {
        let dir = url.path
        let manifestPath = url.appendingPathComponent("manifest.json").path
        guard FileManager.default.fileExists(atPath: dir) else {
            throw InputError(file: dir, problem: "no such bundle folder", fix: "Train one with `miss train --out \(dir)`")
        }
        guard let manifestData = FileManager.default.contents(atPath: manifestPath) else {
            throw InputError(file: manifestPath, problem: "missing", fix: "Pass a folder written by `miss train`")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: manifestData) } catch {
            throw InputError(file: manifestPath, problem: "is not a valid bundle manifest (\(error))", fix: "Retrain with `miss train`")
        }
        guard manifest.format == format else {
            throw InputError(file: manifestPath, location: "format", problem: "is '\(manifest.format)', not '\(format)'", fix: "Pass a folder written by `miss train`")
        }
        guard manifest.version == version else {
            throw InputError(file: manifestPath, location: "version", problem: "bundle format version \(manifest.version) is not the supported version \(version)",
                             fix: "Retrain with this version of `miss train`")
        }
        for (name, sum) in manifest.checksums.sorted(by: { $0.key < $1.key }) {
            let path = url.appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw InputError(file: path, problem: "missing from the bundle", fix: "Retrain with `miss train`")
            }
            guard checksum(data) == sum else {
                throw InputError(file: path, problem: "checksum \(checksum(data)) does not match the manifest's \(sum): the file was changed or damaged",
                                 fix: "Retrain with `miss train`")
            }
        }
        let tree = try IndexTree.load(from: url.appendingPathComponent("tree.misstree"), expectedItems: manifest.dataset.items)
        let embeddings = try ItemEmbeddings.load(from: url.appendingPathComponent("embeddings.missemb"), expectedItems: manifest.dataset.items)
        if let dataset {
            let fp = fingerprint(dataset)
            guard fp == manifest.dataset.fingerprint else {
                throw InputError(file: manifestPath, location: "dataset.fingerprint",
                                 problem: "the bundle was trained on '\(manifest.dataset.name)' (\(manifest.dataset.fingerprint)), not on this dataset '\(dataset.name)' (\(fp))",
                                 fix: "Pass the dataset the bundle was trained on, or train a bundle for this one")
            }
        }
        let weightsPath = url.appendingPathComponent("weights.safetensors")
        let estimator = NodeEstimator(config: manifest.config, tree: tree, itemMM: embeddings.multimodal, seed: 0)
        try loadParameters(estimator.parameters, from: weightsPath, shapesFrom: "the tree and config")
        var sasrec: SASRec?
        if let c = manifest.sasrec {
            let model = SASRec(config: c, items: manifest.dataset.items, seed: 0)
            try loadParameters(model.parameters, from: url.appendingPathComponent("sasrec.safetensors"), shapesFrom: "the manifest's sasrec config")
            sasrec = model
        }
        let itemsPath = url.appendingPathComponent("items.safetensors")
        do {
            let items = try SafetensorsFile(path: itemsPath.path)
            var bundle = ModelBundle(manifest: manifest, estimator: estimator, tree: tree, embeddings: embeddings,
                                     itemIDs: try items.strings("item.ids"), itemTitles: try items.strings("item.titles"))
            bundle.sasrec = sasrec
            return bundle
        } catch let e as SafetensorsError {
            throw InputError(file: itemsPath.path, safetensors: e, fix: "Retrain with `miss train`")
        }
    }

    /// Every parameter's value from a safetensors file, by name, with its shape checked.
    static func loadParameters(_ parameters: [Parameter], from url: URL, shapesFrom source: String) throws {
        do {
            let f = try SafetensorsFile(path: url.path)
            for p in parameters {
                let m = try f.matrix(p.name)
                guard m.rows == p.value.rows && m.cols == p.value.cols else {
                    throw InputError(file: url.path, location: "tensor '\(p.name)'",
                                     problem: "has shape [\(m.rows), \(m.cols)] but \(source) need [\(p.value.rows), \(p.value.cols)]",
                                     fix: "The weights do not belong to this tree; retrain with `miss train`")
                }
                p.value = m
            }
        } catch let e as SafetensorsError {
            throw InputError(file: url.path, safetensors: e, fix: "Retrain with `miss train`")
        }
    }
}
