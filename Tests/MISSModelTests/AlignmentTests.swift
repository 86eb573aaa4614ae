import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData
import MISSModel

@Suite struct AlignmentTests {
    func world(items: Int = 1500, users: Int = 200) -> Dataset {
        var c = SyntheticWorld.Config()
        c.seed = 13; c.items = items; c.users = users; c.maxLength = 1500
        return SyntheticWorld.generate(c).dataset
    }

    @Test func recallByHand() {
        // Items on a circle: 0 at 0°, 1 at 10°, 2 at 90°, 3 at 180°.
        let deg = [0.0, 10, 90, 180].map { $0 * Double.pi / 180 }
        let e = Matrix(deg.map { [Float(cos($0)), Float(sin($0))] })
        // Pair (0,1): 1 is the nearest to 0 → hit at K=1. Pair (0,3): 3 is last of three others → hit only at K=3.
        let r = ItemToItemRecall.evaluate(embeddings: e, pairs: [(0, 1), (0, 3)], ks: [1, 2, 3])
        #expect(r[1] == 0.5 && r[2] == 0.5 && r[3] == 1.0)
    }

    @Test func samplerDrawsPairsWithinTheWindowOfTheGivenUsers() {
        let d = world(items: 300, users: 30)
        let users = [0, 3, 7]
        let sampler = CooccurrenceSampler(dataset: d, users: users, window: 2)
        var rng = Xoshiro256StarStar(seed: 1)
        var allowed = Set<[Int32]>()
        for u in users {
            let r = d.behaviours(of: u)
            for t in r { for k in 1...2 where t + k < r.upperBound { allowed.insert([d.behaviourItems[t], d.behaviourItems[t + k]]) } }
        }
        for (a, b) in sampler.pairs(500, &rng) {
            #expect(a != b)
            #expect(allowed.contains([Int32(a), Int32(b)]))
        }
    }

    @Test func alignedEmbeddingsBeatRawContentOnHeldOutPairs() throws {
        let d = world()
        let content = try ContentFeatures.build(dataset: d)
        // Each modality block has norm 1/√2, so the concatenation has unit rows.
        for r in [0, 5, 99] { #expect(abs(content.matrix.rowDots(content.matrix)[r] - 1) < 1e-4) }
        let split = EvaluationSplit(dataset: d, seed: 1)
        var config = ItemAlignment.Config()
        config.steps = 300
        let model = try ItemAlignment.train(content: content, dataset: d, trainUsers: split.train, config: config)
        let mm = model.embed(content.matrix)
        #expect(mm.rows == d.itemCount && mm.cols == 64)
        for r in [0, 1000] { #expect(abs(mm.rowDots(mm)[r] - 1) < 1e-4) }
        var rng = Xoshiro256StarStar(seed: 2)
        let heldOut = CooccurrenceSampler(dataset: d, users: split.validation).pairs(1000, &rng)
        let raw = ItemToItemRecall.evaluate(embeddings: content.matrix, pairs: heldOut, ks: [50])[50]!
        let aligned = ItemToItemRecall.evaluate(embeddings: mm, pairs: heldOut, ks: [50])[50]!
        #expect(aligned > raw + 0.03, "aligned \(aligned) vs raw \(raw)")
        // Deterministic per seed.
        let again = try ItemAlignment.train(content: content, dataset: d, trainUsers: split.train, config: config).embed(content.matrix)
        #expect(again == mm)
    }

    @Test func hashedTextIsDeterministicAndTopical() {
        let t = HashedTextEncoder.encode(["space opera with robots", "robots in space opera", "a quiet cooking show"])
        #expect(t == HashedTextEncoder.encode(["space opera with robots", "robots in space opera", "a quiet cooking show"]))
        let dots = matmul(t, t, transposeB: true)
        #expect(dots[0, 1] > dots[0, 2] + 0.3)
    }

    @Test func embeddingsFileRoundTripAndErrors() throws {
        let dir = try temporaryDirectory()
        var rng = Xoshiro256StarStar(seed: 1)
        let e = ItemEmbeddings(content: .randomNormal(10, 5, using: &rng), multimodal: .randomNormal(10, 4, using: &rng), textSource: "dataset")
        let url = dir.appendingPathComponent("e.missemb")
        try e.write(to: url)
        let back = try ItemEmbeddings.load(from: url, expectedItems: 10)
        #expect(back.content == e.content && back.multimodal == e.multimodal && back.textSource == "dataset")
        #expect(inputError { _ = try ItemEmbeddings.load(from: url, expectedItems: 11) }?.problem.contains("10 items") == true)
        #expect(inputError { _ = try ItemEmbeddings.load(from: dir.appendingPathComponent("none")) }?.fix.contains("miss embed") == true)
    }
}
