import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData
import MISSModel

@Suite struct ModelBundleTests {
    func makeBundle(items: Int = 300, idDim: Int = 8) throws -> (ModelBundle, Dataset) {
        var wc = SyntheticWorld.Config()
        wc.seed = 2; wc.items = items; wc.users = 40; wc.maxLength = 200
        let d = SyntheticWorld.generate(wc).dataset
        let content = try ContentFeatures.build(dataset: d)
        var rng = Xoshiro256StarStar(seed: 1)
        let mm = Matrix.randomNormal(items, 8, using: &rng).l2NormalizedRows()
        let tree = IndexTree.build(embeddings: mm, kind: .multimodal)
        var c = EstimatorConfig()
        c.idDim = idDim; c.coLength = 50; c.mmLength = 60; c.topK = 5; c.experts = 2; c.expertHidden = 6; c.towerHidden = 4
        let est = NodeEstimator(config: c, tree: tree, itemMM: mm, seed: 9)
        let b = ModelBundle(estimator: est, tree: tree, embeddings: ItemEmbeddings(content: content.matrix, multimodal: mm, textSource: "dataset"),
                            dataset: d, splitSeed: 1, training: ["steps": 0])
        return (b, d)
    }

    func editManifest(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let path = url.appendingPathComponent("manifest.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: path)
    }

    @Test func roundTripGivesTheSameScores() throws {
        let (b, d) = try makeBundle()
        let url = try temporaryDirectory().appendingPathComponent("bundle")
        try b.write(to: url)
        let back = try ModelBundle.load(from: url, dataset: d)
        #expect(back.manifest.checksums.count == 3 && back.manifest.config == b.manifest.config)
        let history = d.behaviourItems[d.behaviours(of: 0)]
        let nodes = Array(0..<20)
        let a = b.estimator.forward(b.estimator.context(history: history), nodes: nodes).logits
        let c = back.estimator.forward(back.estimator.context(history: history), nodes: nodes).logits
        #expect(a == c)
        #expect(back.itemTitles == d.itemTitles)
        #expect(back.sasrec == nil && back.manifest.sasrec == nil)
    }

    @Test func aSASRecBaselineTravelsWithTheBundle() throws {
        var (b, d) = try makeBundle()
        var c = SASRec.Config()
        c.dim = 6; c.maxLength = 12
        b.sasrec = SASRec(config: c, items: d.itemCount, seed: 4)
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("bundle")
        try b.write(to: url)
        let back = try ModelBundle.load(from: url, dataset: d)
        #expect(back.manifest.sasrec == c && back.manifest.checksums["sasrec.safetensors"] != nil)
        #expect(back.sasrec!.parameters.map(\.value) == b.sasrec!.parameters.map(\.value))
        let history = d.behaviourItems[d.behaviours(of: 1)]
        #expect(back.sasrec!.retrieve(history: history, k: 10) == b.sasrec!.retrieve(history: history, k: 10))
        // Weights that do not fit the manifest's SASRec config are refused, naming the tensor.
        try editManifest(url) { m in var s = m["sasrec"] as! [String: Any]; s["dim"] = 7; m["sasrec"] = s }
        let e = inputError { _ = try ModelBundle.load(from: url) }
        #expect(e?.file.hasSuffix("sasrec.safetensors") == true && e?.location == "tensor 'sasrec.item.table'", "\(String(describing: e))")
    }

    @Test func badBundlesAreRefusedWithTheReason() throws {
        let (b, d) = try makeBundle()
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("bundle")
        try b.write(to: url)

        // Another format version.
        try editManifest(url) { $0["version"] = 99 }
        #expect(inputError { _ = try ModelBundle.load(from: url) }?.location == "version")
        try editManifest(url) { $0["version"] = ModelBundle.version }

        // Weights that do not fit the config (idDim changed behind their back).
        try editManifest(url) { m in var c = m["config"] as! [String: Any]; c["idDim"] = 16; m["config"] = c }
        let e1 = inputError { _ = try ModelBundle.load(from: url) }
        #expect(e1?.problem.contains("tree and config need") == true, "\(String(describing: e1))")
        try editManifest(url) { m in var c = m["config"] as! [String: Any]; c["idDim"] = 8; m["config"] = c }

        // A tree that does not match the weights: weights of a larger tree, checksum updated.
        let (other, _) = try makeBundle(items: 500)
        let otherURL = dir.appendingPathComponent("other")
        try other.write(to: otherURL)
        let foreign = try Data(contentsOf: otherURL.appendingPathComponent("weights.safetensors"))
        try foreign.write(to: url.appendingPathComponent("weights.safetensors"))
        try editManifest(url) { m in var s = m["checksums"] as! [String: String]; s["weights.safetensors"] = ModelBundle.checksum(foreign); m["checksums"] = s }
        let e2 = inputError { _ = try ModelBundle.load(from: url) }
        #expect(e2?.location == "tensor 'node_embedding.table'" && e2?.fix.contains("do not belong to this tree") == true)

        // A damaged file fails its checksum.
        try Data("garbage".utf8).write(to: url.appendingPathComponent("weights.safetensors"))
        #expect(inputError { _ = try ModelBundle.load(from: url) }?.problem.contains("checksum") == true)

        // The wrong dataset.
        var wc = SyntheticWorld.Config(); wc.seed = 3; wc.items = 300; wc.users = 40; wc.maxLength = 200
        let otherData = SyntheticWorld.generate(wc).dataset
        try b.write(to: url)
        #expect(inputError { _ = try ModelBundle.load(from: url, dataset: otherData) }?.location == "dataset.fingerprint")
        _ = d
        #expect(inputError { _ = try ModelBundle.load(from: dir.appendingPathComponent("none")) }?.problem == "no such bundle folder")
    }
}
