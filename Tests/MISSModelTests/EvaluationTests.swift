import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData
import MISSModel

@Suite struct EvaluationTests {
    /// Items 0–3. Training users: a sees 0,0,1; b sees 0,2. Test user c: history 3,1 — targets 0,2.
    func toy() -> Dataset {
        var b = BehaviourTableBuilder()
        for (t, item) in [0, 0, 1].enumerated() { b.add(user: "a", item: item, time: Int64(t), labels: 1) }
        for (t, item) in [0, 2].enumerated() { b.add(user: "b", item: item, time: Int64(t), labels: 1) }
        for (t, item) in [3, 1, 0, 2].enumerated() { b.add(user: "c", item: item, time: Int64(t), labels: 1) }
        let t = b.build()
        return Dataset(name: "toy", objectives: ["view"], itemIDs: ["i0", "i1", "i2", "i3"], itemTitles: ["0", "1", "2", "3"],
                       itemTexts: ["", "", "", ""], itemCategories: [-1, -1, -1, -1], categoryNames: [], modalities: [],
                       userIDs: t.userIDs, userOffsets: t.offsets, behaviourItems: t.items, behaviourTimes: t.times, behaviourLabels: t.labels)
    }

    @Test func popularityByHand() throws {
        let d = toy()
        try d.validate(source: "toy")
        // Counts 3, 1, 1, 0 → ranking 0, 1, 2, 3; minus history {3, 1} → 0, 2.
        let r1 = Evaluation.popularity(dataset: d, trainUsers: [0, 1], users: [2], k: 1)
        #expect(r1.users == 1 && r1.recall == 0.5 && r1.precision == 1)
        let r2 = Evaluation.popularity(dataset: d, trainUsers: [0, 1], users: [2], k: 2)
        #expect(r2.recall == 1 && r2.precision == 1)
        #expect(r2.meanReturned == 2 && r2.usersShort == 0)
        // Only 2 items are not in c's history: K = 3 returns 2, and c is a user short of K.
        let r3 = Evaluation.popularity(dataset: d, trainUsers: [0, 1], users: [2], k: 3)
        #expect(r3.meanReturned == 2 && r3.usersShort == 1 && r3.recall == 1)
    }

    @Test func beamEvaluationReportsEveryLevel() {
        var rng = Xoshiro256StarStar(seed: 1)
        let d = toy()
        let mm = Matrix.randomNormal(4, 3, using: &rng).l2NormalizedRows()
        let tree = IndexTree.build(embeddings: mm, kind: .multimodal)
        var c = EstimatorConfig()
        c.idDim = 4; c.coLength = 4; c.mmLength = 4; c.topK = 2; c.experts = 1; c.expertHidden = 4; c.towerHidden = 2; c.objectives = 1
        let est = NodeEstimator(config: c, tree: tree, itemMM: mm, seed: 1)
        // With a beam as wide as the tree and K = 2 of the 2 non-history items, both targets are found.
        let r = Evaluation.evaluate(estimator: est, tree: tree, dataset: d, users: [2], k: 2, beamSize: 8)
        #expect(r.recall == 1 && r.precision == 1)
        #expect(r.hierarchicalRecall.count == tree.leafLevel + 1 && r.hierarchicalRecall.allSatisfy { $0 == 1 })
        #expect(r.meanReturned == 2 && r.usersShort == 0)
        // K = 3 of the 2 unseen items: the leaf level has only those two to return, whatever the beam.
        let r3 = Evaluation.evaluate(estimator: est, tree: tree, dataset: d, users: [2], k: 3, beamSize: 8)
        #expect(r3.meanReturned == 2 && r3.usersShort == 1 && r3.recall == 1)
    }
}

@Suite struct SkipSeenSubtreesTests {
    /// Items 0 and 2 are close, 1 and 3 are close, so the 2-means tree's level 1 is {0, 2} and {1, 3}; user c's
    /// history {3, 1} fills the second subtree. With `skipSeenSubtrees` that node is never a candidate and a beam
    /// of 1 keeps the other, so c gets both unseen items; without it, the node is scored like any other.
    @Test func aFullySeenSubtreeTakesNoBeamSlot() throws {
        let d = EvaluationTests().toy()
        let mm = Matrix(rows: 4, cols: 3, storage: [1, 0, 0, 0, 1, 0, 0.9, 0.1, 0, 0, 0.9, 0.1]).l2NormalizedRows()
        let tree = IndexTree.build(embeddings: mm, kind: .multimodal)
        try #require(tree.leafLevel == 2)
        let seenNode = tree.ancestor(of: tree.leafNode(position: Int(tree.itemLeafPositions()[1])), atLevel: 1)
        #expect(seenNode == tree.ancestor(of: tree.leafNode(position: Int(tree.itemLeafPositions()[3])), atLevel: 1))
        #expect(Set(tree.items(under: seenNode)) == [1, 3])
        var c = EstimatorConfig()
        c.idDim = 4; c.coLength = 4; c.mmLength = 4; c.topK = 2; c.experts = 1; c.expertHidden = 4; c.towerHidden = 2; c.objectives = 1
        let est = NodeEstimator(config: c, tree: tree, itemMM: mm, seed: 1)
        let history: [Int32] = [3, 1]
        for skip in [false, true] {
            let r = BeamSearch.run(estimator: est, tree: tree, context: est.context(history: history[...]),
                                   config: .init(beamSize: 1, finalK: 2, skipSeenSubtrees: skip), exclude: Set(history), trace: true)
            #expect(r.levels[0].candidates.contains(seenNode) == !skip)
            #expect(r.levels[0].skipped == (skip ? 1 : 0))
            // At the leaf level the history's leaves are never scored: with the skip they were never children.
            #expect(r.levels[1].skipped == (skip ? 0 : r.beams[1].flatMap { Set(tree.items(under: $0)) }.filter(history.contains).count))
            if skip { #expect(Set(r.items) == [0, 2]) }
            // Without it, the beam of 1 keeps whichever subtree scores higher: the seen one leaves nothing to return.
            if !skip && r.beams[1] == [seenNode] { #expect(r.items.isEmpty) }
        }
        // The skip is the default, of the configuration and of the evaluation.
        #expect(BeamSearch.Config().skipSeenSubtrees)
        let report = Evaluation.evaluate(estimator: est, tree: tree, dataset: d, users: [2], k: 2, beamSize: 1)
        #expect(report.recall == 1 && report.meanReturned == 2 && report.usersShort == 0)
    }
}

@Suite struct ExhaustiveEvaluationTests {
    @Test func allLeavesEqualsABeamThatKeepsEveryNode() {
        // With a beam as wide as the catalogue nothing is pruned, so the beam search must return exactly the
        // exhaustive ranking (the same estimator scores, the same mean over objectives, the same top-K order).
        var wc = SyntheticWorld.Config()
        wc.seed = 6; wc.items = 96; wc.users = 30; wc.maxLength = 60
        let d = SyntheticWorld.generate(wc).dataset
        let mm = d.modalities[0].values.l2NormalizedRows()
        let tree = IndexTree.build(embeddings: mm, kind: .multimodal)
        var c = EstimatorConfig()
        c.idDim = 6; c.coLength = 30; c.mmLength = 40; c.topK = 5; c.experts = 2; c.expertHidden = 6; c.towerHidden = 3
        c.objectives = d.objectives.count
        let est = NodeEstimator(config: c, tree: tree, itemMM: mm, seed: 3)
        let users = EvaluationSplit.usersWithTargets(EvaluationSplit(dataset: d, seed: 1).test, in: d)
        #expect(!users.isEmpty)
        let exhaustive = Evaluation.evaluateExhaustive(estimator: est, tree: tree, dataset: d, users: users, k: 10)
        let beam = Evaluation.evaluate(estimator: est, tree: tree, dataset: d, users: users, k: 10, beamSize: 96)
        #expect(exhaustive.users == beam.users)
        #expect(abs(exhaustive.recall - beam.recall) < 1e-12 && abs(exhaustive.precision - beam.precision) < 1e-12)
        #expect(exhaustive.recall > 0)
    }
}
