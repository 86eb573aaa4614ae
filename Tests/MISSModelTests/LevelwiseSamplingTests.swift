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

    @Test func distinctNodesKeepFirstAppearanceOrder() {
        let (nodes, index) = LevelwiseTrainer.distinctNodes([5, 2, 5, 9, 2, 2])
        #expect(nodes == [5, 2, 9] && index == [0, 1, 0, 2, 1, 1])
        #expect(LevelwiseTrainer.distinctNodes([]).nodes.isEmpty)
    }

    /// Training scores each distinct node of an instance once; its loss and gradient are those of scoring
    /// every sample, duplicates included (up to rounding: the duplicates' gradients are summed earlier).
    @Test func scoringEachDistinctNodeOnceGivesTheGradientOfEverySample() throws {
        let (d, tree, split) = try world()
        var c = EstimatorConfig()
        c.idDim = 8; c.coLength = 40; c.mmLength = 60; c.topK = 6; c.experts = 2; c.expertHidden = 8; c.towerHidden = 4
        c.objectives = d.objectives.count
        var rng = Xoshiro256StarStar(seed: 8)
        let itemMM = try ContentFeatures.build(dataset: d).matrix   // what the tree was built over
        let trainer = LevelwiseTrainer(dataset: d, tree: tree, users: split.train)
        var config = LevelwiseTrainer.Config()
        config.targetsPerInstance = 4
        let inst = try #require(trainer.instance(&rng, config: config))
        let (nodes, labels) = trainer.samples(inst, negatives: 5, &rng)
        let distinct = LevelwiseTrainer.distinctNodes(nodes)
        #expect(distinct.nodes.count < nodes.count)   // the shallow levels repeat nodes
        let history = d.behaviourItems[d.behaviours(of: inst.user).lowerBound..<inst.cut]
        let deduplicated = NodeEstimator(config: c, tree: tree, itemMM: itemMM, seed: 3)
        let everySample = NodeEstimator(config: c, tree: tree, itemMM: itemMM, seed: 3)
        let loss = LevelwiseTrainer.accumulateGradient(deduplicated, history: history, samples: distinct, labels: labels)
        let ctx = everySample.context(history: history)
        let f = everySample.forward(ctx, nodes: nodes)
        let (reference, dLogits) = BCEWithLogits.loss(logits: f.logits, labels: labels)
        everySample.backward(ctx, f, dLogits: dLogits)
        #expect(abs(loss - reference) <= 1e-9 * abs(reference))
        for (p, q) in zip(deduplicated.parameters, everySample.parameters) {
            let a = p.denseGradient, b = q.denseGradient
            let scale = max(b.maxAbs, 1e-6)
            let worst = zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-4 * scale, "\(p.name): off by \(worst) of \(scale)")
        }
    }
}

