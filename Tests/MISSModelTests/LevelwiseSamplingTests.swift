import Foundation
import Testing
import MISSCore
import MISSData
@testable import MISSModel

@Suite struct LevelwiseSamplingTests {
    func world() throws -> (Dataset, IndexTree, EvaluationSplit) {
        var wc = SyntheticWorld.Config()
        wc.seed = 4; wc.items = 300; wc.users = 40; wc.maxLength = 120
        let d = SyntheticWorld.generate(wc).dataset
        let content = try ContentFeatures.build(dataset: d)
        return (d, IndexTree.build(embeddings: content.matrix, kind: .multimodal), EvaluationSplit(dataset: d, seed: 1))
    }

    @Test func neighbourhoodIsTheLevelUnderTheAncestorSpanLevelsUp() throws {
        let (d, tree, split) = try world()
        let trainer = LevelwiseTrainer(dataset: d, tree: tree, users: split.train)
        for h in 1...tree.leafLevel {
            for node in tree.nodes(atLevel: h) where node % 7 == 0 {
                for span in [1, 3, 20] {
                    let top = max(1, h - span)
                    let expected = tree.nodes(atLevel: h).filter {
                        tree.ancestor(of: $0, atLevel: top) == tree.ancestor(of: node, atLevel: top)
                    }
                    let got = trainer.neighbourhood(of: node, level: h, span: span)
                    #expect(Array(got) == expected, "node \(node), level \(h), span \(span)")
                }
            }
        }
    }

    @Test func nearNegativesComeFromTheNeighbourhoodAndZeroIsThePapersSampling() throws {
        let (d, tree, split) = try world()
        let trainer = LevelwiseTrainer(dataset: d, tree: tree, users: split.train)
        let config = LevelwiseTrainer.Config()
        var rng = Xoshiro256StarStar(seed: 9)
        var nearCount = 0, total = 0
        for _ in 0..<30 {
            guard let inst = trainer.instance(&rng, config: config) else { continue }
            // near = 0 draws exactly what the paper's sampling (the default call) draws.
            var a = rng, b = rng
            let paper = trainer.samples(inst, negatives: 5, &a)
            let zero = trainer.samples(inst, negatives: 5, near: 0, nearSpan: 2, &b)
            #expect(paper.nodes == zero.nodes && paper.labels == zero.labels)
            // near = 1: every negative is a cousin of its positive (never the positive itself).
            let nodes = trainer.samples(inst, negatives: 5, near: 1, nearSpan: 2, &rng).nodes
            var i = 0
            while i < nodes.count {
                let positive = nodes[i], h = tree.level(of: positive)
                let nearby = trainer.neighbourhood(of: positive, level: h, span: 2)
                for j in 1...5 where tree.nodes(atLevel: h).count > 1 {
                    let neg = nodes[i + j]
                    #expect(neg != positive)
                    #expect(tree.level(of: neg) == h)
                    if nearby.count > 1 { #expect(nearby.contains(neg)); nearCount += 1 }
                    total += 1
                }
                i += tree.nodes(atLevel: h).count > 1 ? 6 : 1
            }
        }
        #expect(total > 100 && nearCount > total / 2)
    }

    @Test func nearNegativesFromALevelOnlyBelowItAndLevelOneIsEveryLevel() throws {
        let (d, tree, split) = try world()
        let trainer = LevelwiseTrainer(dataset: d, tree: tree, users: split.train)
        let config = LevelwiseTrainer.Config()
        let from = tree.leafLevel - 2
        var rng = Xoshiro256StarStar(seed: 11)
        var deepNear = 0, deepTotal = 0, shallowOutside = 0, shallowTotal = 0
        for _ in 0..<30 {
            guard let inst = trainer.instance(&rng, config: config) else { continue }
            // nearFrom 1 (the default) draws exactly what near alone draws.
            var a = rng, b = rng
            let all = trainer.samples(inst, negatives: 5, near: 0.5, nearSpan: 2, &a)
            let fromOne = trainer.samples(inst, negatives: 5, near: 0.5, nearSpan: 2, nearFrom: 1, &b)
            #expect(all.nodes == fromOne.nodes && all.labels == fromOne.labels)
            let nodes = trainer.samples(inst, negatives: 5, near: 1, nearSpan: 2, nearFrom: from, &rng).nodes
            var i = 0
            while i < nodes.count {
                let positive = nodes[i], h = tree.level(of: positive)
                let sampled = tree.nodes(atLevel: h).count > 1
                let nearby = trainer.neighbourhood(of: positive, level: h, span: 2)
                for j in 1...5 where sampled {
                    let neg = nodes[i + j]
                    #expect(neg != positive && tree.level(of: neg) == h)
                    if h >= from {
                        if nearby.count > 1 { #expect(nearby.contains(neg), "level \(h): \(neg) not near \(positive)"); deepNear += 1 }
                        deepTotal += 1
                    } else if nearby.count < tree.nodes(atLevel: h).count {
                        shallowOutside += nearby.contains(neg) ? 0 : 1
                        shallowTotal += 1
                    }
                }
                i += sampled ? 6 : 1
            }
        }
        // Deep levels: every negative near; shallow ones: uniform over the level, so mostly elsewhere.
        #expect(deepTotal > 100 && deepNear > deepTotal / 2)
        #expect(shallowTotal > 100 && shallowOutside > shallowTotal / 3)
    }
}
