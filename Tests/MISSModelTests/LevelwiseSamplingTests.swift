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
        var config = LevelwiseTrainer.Config()
        config.targets = .nextBehaviours   // one positive then its negatives, per target and level
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
        var config = LevelwiseTrainer.Config()
        config.targets = .nextBehaviours   // one positive then its negatives, per target and level
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

    /// One user, items 0–15 (a 16-leaf tree, levels 0–4), sequence 0 1 2 1 3 0 4 5 4 6 7 2 8 with labels
    /// (bit 0 every behaviour; bit 1 on the behaviours at indices 6 and 8: both are item 4).
    func handMade() -> (Dataset, IndexTree) {
        var b = BehaviourTableBuilder()
        for (t, item) in [0, 1, 2, 1, 3, 0, 4, 5, 4, 6, 7, 2, 8].enumerated() {
            b.add(user: "u", item: item, time: Int64(t), labels: t == 6 || t == 8 ? 3 : 1)
        }
        let t = b.build()
        let d = Dataset(name: "hand", objectives: ["view", "like"], itemIDs: (0..<16).map { "i\($0)" }, itemTitles: (0..<16).map { "\($0)" },
                        itemTexts: Array(repeating: "", count: 16), itemCategories: Array(repeating: -1, count: 16), categoryNames: [],
                        modalities: [], userIDs: t.userIDs, userOffsets: t.offsets, behaviourItems: t.items, behaviourTimes: t.times,
                        behaviourLabels: t.labels)
        var rng = Xoshiro256StarStar(seed: 2)
        return (d, IndexTree.build(embeddings: Matrix.randomNormal(16, 3, using: &rng).l2NormalizedRows(), kind: .multimodal))
    }

    /// The test's targets, by hand: after the cut, the next distinct items not in the history.
    @Test func unseenTargetsSkipTheHistoryAndRepeats() {
        let (d, tree) = handMade()
        let trainer = LevelwiseTrainer(dataset: d, tree: tree, users: [0])
        // Cut 3 (history 0 1 2): 1 (index 3) and 0 (5) are in the history, 4 repeats at 8, 2 at 11.
        #expect(trainer.unseenTargets(from: 3, end: 13, count: 4) == [4, 6, 7, 9])
        #expect(trainer.unseenTargets(from: 3, end: 13, count: 9) == [4, 6, 7, 9, 10, 12])
        // Cut 7 (history holds 4): index 8 (4 again) and 11 (2) are not targets.
        #expect(trainer.unseenTargets(from: 7, end: 13, count: 9) == [7, 9, 10, 12])
        #expect(trainer.unseenTargets(from: 13, end: 13, count: 4).isEmpty)
        // Every drawn instance: targets distinct, none in its history; the legacy sampling takes the next behaviours.
        var rng = Xoshiro256StarStar(seed: 5)
        var config = LevelwiseTrainer.Config()
        for _ in 0..<200 {
            let inst = try! #require(trainer.instance(&rng, config: config))
            let history = Set(d.behaviourItems[d.behaviours(of: 0).lowerBound..<inst.cut])
            let items = inst.targets.map { d.behaviourItems[$0] }
            #expect(Set(items).count == items.count && history.isDisjoint(with: items) && inst.targets.allSatisfy { $0 >= inst.cut })
            #expect(inst.targets == trainer.unseenTargets(from: inst.cut, end: 13, count: config.targetsPerInstance))
        }
        config.targets = .nextBehaviours
        let legacy = try! #require(trainer.instance(&rng, config: config))
        #expect(legacy.targets == Array(legacy.cut..<min(13, legacy.cut + 4)) && legacy.sampling == .nextBehaviours)
    }

    /// Samples of unseen targets: per level, each positive once with its targets' labels OR-ed, and `negatives`
    /// per target that are never a positive of the level; the legacy sampling repeats shared ancestors.
    @Test func mergedSamplesOrLabelsAndNeverUseAPositiveAsNegative() {
        let (d, tree) = handMade()
        let trainer = LevelwiseTrainer(dataset: d, tree: tree, users: [0])
        var rng = Xoshiro256StarStar(seed: 7)
        // Targets: item 4 (index 6, labels view + like), 5 (7, view), 6 (9, view).
        let inst = LevelwiseTrainer.Instance(user: 0, cut: 6, targets: [6, 7, 9], sampling: .unseenItems)
        for near in [0.0, 1.0] {
            let (nodes, labels) = trainer.samples(inst, negatives: 3, near: near, nearSpan: 1, &rng)
            var i = 0
            for h in stride(from: tree.leafLevel, through: 1, by: -1) {
                let ancestors = [4, 5, 6].map { tree.ancestor(of: tree.leafNode(position: Int(tree.itemLeafPositions()[$0])), atLevel: h) }
                var positives: [Int] = []
                for a in ancestors where !positives.contains(a) { positives.append(a) }
                #expect(Array(nodes[i..<(i + positives.count)]) == positives, "level \(h)")
                for (j, p) in positives.enumerated() {
                    // like (objective 1) only where item 4 is under the node; view everywhere.
                    #expect(labels[i + j, 0] == 1 && labels[i + j, 1] == (p == ancestors[0] ? 1 : 0))
                }
                i += positives.count
                let width = tree.nodes(atLevel: h).count
                let negatives = width > positives.count ? 3 * 3 : 0
                for j in i..<(i + negatives) {
                    #expect(tree.level(of: nodes[j]) == h && !positives.contains(nodes[j]) && labels[j, 0] == 0 && labels[j, 1] == 0)
                }
                i += negatives
            }
            #expect(i == nodes.count)
        }
        // The same targets sampled as next behaviours: a shared ancestor is a positive once per target.
        let legacy = LevelwiseTrainer.Instance(user: 0, cut: 6, targets: [6, 7, 9], sampling: .nextBehaviours)
        let level1 = trainer.samples(legacy, negatives: 0, &rng).nodes.filter { tree.level(of: $0) == 1 }
        #expect(level1.count == 3)
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

