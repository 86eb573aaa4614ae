import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData

@Suite struct DatasetTests {
    @Test func builderGroupsUsersAndSortsByTimeStably() {
        var b = BehaviourTableBuilder()
        b.add(user: "b", item: 5, time: 30, labels: 1)
        b.add(user: "a", item: 1, time: 20, labels: 1)
        b.add(user: "b", item: 6, time: 10, labels: 3)
        b.add(user: "a", item: 2, time: 20, labels: 1)  // same time as item 1: arrival order kept
        b.add(user: "a", item: 0, time: 5, labels: 1)
        let t = b.build()
        #expect(t.userIDs == ["b", "a"])
        #expect(t.offsets == [0, 2, 5])
        #expect(t.items == [6, 5, 0, 1, 2])
        #expect(t.times == [10, 30, 5, 20, 20])
        #expect(t.labels == [3, 1, 1, 1, 1])
    }

    @Test func recentBehavioursIsASliceOfTheLastL() {
        let d = tinyWorld()
        let u = (0..<d.userCount).max { d.sequenceLength(of: $0) < d.sequenceLength(of: $1) }!
        let all = d.behaviours(of: u)
        #expect(d.recentBehaviours(of: u, limit: 10) == (all.upperBound - 10)..<all.upperBound)
        #expect(d.recentBehaviours(of: u, before: all.lowerBound + 3, limit: 10) == all.lowerBound..<(all.lowerBound + 3))
        #expect(d.recentBehaviours(of: u, limit: 1_000_000) == all)
    }

    @Test func cacheRoundTripKeepsEverything() throws {
        let d = tinyWorld()
        let url = try temporaryDirectory().appendingPathComponent("w.missdata")
        try d.write(to: url)
        let e = try Dataset.load(from: url)
        #expect(e.name == d.name && e.objectives == d.objectives)
        #expect(e.itemIDs == d.itemIDs && e.itemTitles == d.itemTitles && e.itemTexts == d.itemTexts)
        #expect(e.itemCategories == d.itemCategories && e.categoryNames == d.categoryNames)
        #expect(e.modalities == d.modalities)
        #expect(e.userIDs == d.userIDs && e.userOffsets == d.userOffsets)
        #expect(e.behaviourItems == d.behaviourItems && e.behaviourTimes == d.behaviourTimes && e.behaviourLabels == d.behaviourLabels)
    }

    @Test func badCacheFilesNameTheProblem() throws {
        let dir = try temporaryDirectory()
        let missing = dir.appendingPathComponent("nope.missdata")
        let e1 = inputError { _ = try Dataset.load(from: missing) }
        #expect(e1?.file == missing.path && e1?.problem.contains("no such file") == true)

        let good = tinyWorld().cacheData()
        let cut = dir.appendingPathComponent("cut.missdata")
        try good.prefix(good.count / 2).write(to: cut)
        let e2 = inputError { _ = try Dataset.load(from: cut) }
        #expect(e2?.file == cut.path)
        // The file itself, not a path repeated inside the problem; the problem says it is cut short and by how much.
        #expect(e2?.problem.hasPrefix("truncated safetensors file: its header places tensor") == true, "\(String(describing: e2))")
        #expect(e2?.problem.contains(cut.path) == false && e2?.problem.hasSuffix("missing)") == true)

        var w = SafetensorsWriter(metadata: ["format": Dataset.cacheFormat, "version": "999"])
        w.add("x", floats: [1], shape: [1])
        let future = dir.appendingPathComponent("future.missdata")
        try w.write(to: future)
        let e3 = inputError { _ = try Dataset.load(from: future) }
        #expect(e3?.location == "__metadata__.version")
        #expect(e3?.problem.contains("999") == true)

        var other = SafetensorsWriter(metadata: ["format": "something-else"])
        other.add("x", floats: [1], shape: [1])
        let foreign = dir.appendingPathComponent("foreign.missdata")
        try other.write(to: foreign)
        #expect(inputError { _ = try Dataset.load(from: foreign) }?.location == "__metadata__.format")
    }

    @Test func validationCatchesBrokenInvariants() {
        var d = tinyWorld()
        d.behaviourItems[3] = Int32(d.itemCount)
        #expect(inputError { try d.validate(source: "x") }?.location == "field 'behaviourItems'")
        var e = tinyWorld()
        e.userOffsets[1] = e.userOffsets[0]  // user 0 with no behaviours
        #expect(inputError { try e.validate(source: "x") }?.problem.contains("no behaviours") == true)
    }
}

@Suite struct SyntheticWorldTests {
    @Test func sameSeedSameBytesOtherSeedOtherBytes() {
        #expect(tinyWorld(seed: 11).cacheData() == tinyWorld(seed: 11).cacheData())
        #expect(tinyWorld(seed: 11).cacheData() != tinyWorld(seed: 12).cacheData())
    }

    @Test func worldHasTheDescribedStructure() throws {
        var c = SyntheticWorld.Config()
        c.seed = 5; c.items = 1000; c.users = 120; c.minLength = 20; c.maxLength = 2000
        let (d, truth) = SyntheticWorld.generate(c)
        try d.validate(source: "synthetic")
        #expect(d.objectives == ["view", "long_view", "like"])
        #expect(d.modalities.map(\.name) == ["text", "visual"] && d.modalities.map(\.dim) == [32, 24])
        for u in 0..<d.userCount { #expect((20...2000).contains(d.sequenceLength(of: u))) }
        // Every behaviour is a view; a like implies a long view.
        #expect(d.behaviourLabels.allSatisfy { $0 & 1 == 1 && ($0 & 4 == 0 || $0 & 2 == 2) })
        // Feedback is correlated but not constant.
        let longViews = d.behaviourLabels.filter { $0 & 2 != 0 }.count
        let likes = d.behaviourLabels.filter { $0 & 4 != 0 }.count
        #expect(longViews > d.behaviourCount / 5 && longViews < d.behaviourCount * 9 / 10)
        #expect(likes > 0 && likes < longViews)
        // Users concentrate on their interests: the share of a user's behaviours in their top topic
        // is far above the 1/32 a uniform user would show.
        var share = 0.0
        for u in 0..<d.userCount {
            var counts = [Int](repeating: 0, count: d.categoryNames.count)
            for b in d.behaviours(of: u) { counts[Int(d.itemCategories[Int(d.behaviourItems[b])])] += 1 }
            share += Double(counts.max()!) / Double(d.sequenceLength(of: u))
        }
        #expect(share / Double(d.userCount) > 0.25)
        // Titles are readable words; items of one sub-topic share a word.
        #expect(d.itemTitles.allSatisfy { $0.split(separator: " ").count == 4 })
        #expect(truth.itemSubtopic.count == 1000 && Set(truth.itemSubtopic).count == 128)
        // Content sees topics: same-topic items are closer in the text modality than random pairs.
        let text = d.modalities[0].values.l2NormalizedRows()
        var same = 0.0, diff = 0.0, ns = 0, nd = 0
        for i in 0..<300 {
            for j in (i + 1)..<300 {
                let cos = Double(zip(text.row(i), text.row(j)).reduce(0) { $0 + $1.0 * $1.1 })
                if d.itemCategories[i] == d.itemCategories[j] { same += cos; ns += 1 } else { diff += cos; nd += 1 }
            }
        }
        #expect(same / Double(ns) > diff / Double(nd) + 0.2)
    }
}

extension SyntheticWorldTests {
    /// The premise of MISS: old interests come back after long gaps. Measured on this world (seed 1, 8000 items,
    /// 40 users of 500–4000 behaviours, 53,610 in all): recurring, 20.6 % of behaviours are on an interest that
    /// returned after more than 200 behaviours away (2.0 % begin such a return), 1.9 % re-watch an item; the
    /// control, 0.0 % and 1.9 %. (SampleData's world, `miss synth --seed 7 --items 8000 --users 800`: 32.3 %
    /// and 1.9 %; with `--no-recurrence` 0.0 % and 5.9 %.)
    @Test func interestsRecurAfterLongGapsUnlessTheControlIsAsked() throws {
        var c = SyntheticWorld.Config()
        c.seed = 1; c.items = 8000; c.users = 40; c.minLength = 500; c.maxLength = 4000
        let (d, truth) = SyntheticWorld.generate(c)
        c.recurrence = false
        let (e, control) = SyntheticWorld.generate(c)
        try d.validate(source: "recurring"); try e.validate(source: "control")
        #expect(truth.behaviourInterest.count == d.behaviourCount && control.behaviourInterest.count == e.behaviourCount)
        // The same users (lengths, styles) live in both worlds; only their interests' course differs.
        #expect(d.userOffsets == e.userOffsets && d.name != e.name)
        #expect(truth.behaviourInterest.allSatisfy { (-1..<128).contains($0) })

        let recurring = SyntheticWorld.recurrence(in: d, truth: truth, gap: 200)
        let drifting = SyntheticWorld.recurrence(in: e, truth: control, gap: 200)
        #expect(recurring.returning > 0.10, "\(recurring)")
        #expect(recurring.returns > 0 && recurring.returns < recurring.returning)
        #expect(drifting.returning < 0.01, "\(drifting)")
        // Users seldom watch an item twice, in either world: interests predict, not re-consumption.
        #expect(recurring.reconsumption < 0.05 && drifting.reconsumption < 0.05, "\(recurring) \(drifting)")
        // A longer window sees fewer returns: at a gap of 1000 some remain, in the recurring world only.
        let far = SyntheticWorld.recurrence(in: d, truth: truth, gap: 1000)
        #expect(far.returning > 0 && far.returning < recurring.returning)
        #expect(SyntheticWorld.recurrence(in: e, truth: control, gap: 1000).returning == 0)
    }

    @Test func recurrenceCountsRunsAndRepeatsByHand() {
        // One user, interests (sub-topic per behaviour, -1 = exploration) and items chosen by hand:
        // interest 1 for 3 behaviours, then 2 for 4 (an exploration inside), then 1 again after a gap of 5.
        var b = BehaviourTableBuilder()
        let items = [10, 11, 12, 20, 21, 99, 22, 13, 10]
        for (t, i) in items.enumerated() { b.add(user: "u", item: i, time: Int64(t), labels: 1) }
        let t = b.build()
        let d = Dataset(name: "hand", objectives: ["view"], itemIDs: (0..<100).map { "i\($0)" },
                        itemTitles: Array(repeating: "", count: 100), itemTexts: Array(repeating: "", count: 100),
                        itemCategories: Array(repeating: 0, count: 100), categoryNames: ["c"], modalities: [],
                        userIDs: t.userIDs, userOffsets: t.offsets, behaviourItems: t.items,
                        behaviourTimes: t.times, behaviourLabels: t.labels)
        let truth = SyntheticWorld.Truth(itemSubtopic: Array(repeating: 0, count: 100), itemStyle: Array(repeating: 0, count: 100),
                                         behaviourInterest: [1, 1, 1, 2, 2, -1, 2, 1, 1])
        // Interest 1 last appeared at 2, its run starts again at 7: a gap of 5.
        let r4 = SyntheticWorld.recurrence(in: d, truth: truth, gap: 4)
        #expect(r4.returning == 2.0 / 9 && r4.returns == 1.0 / 9 && r4.reconsumption == 1.0 / 9, "\(r4)")
        let r5 = SyntheticWorld.recurrence(in: d, truth: truth, gap: 5)
        #expect(r5.returning == 0 && r5.returns == 0 && r5.reconsumption == 1.0 / 9)
    }
}

@Suite struct SplitTests {
    @Test func splitIsDisjointDeterministicAndTenPercent() {
        let d = tinyWorld(users: 200)
        let s = EvaluationSplit(dataset: d, seed: 1)
        #expect(s == EvaluationSplit(dataset: d, seed: 1))
        #expect(s != EvaluationSplit(dataset: d, seed: 2))
        #expect(s.validation.count == 20 && s.test.count == 20 && s.train.count == 160)
        #expect(Set(s.train).isDisjoint(with: s.test) && Set(s.train).isDisjoint(with: s.validation)
                && Set(s.test).isDisjoint(with: s.validation))
        #expect(Set(s.train + s.test + s.validation) == Set(0..<200))
    }

    @Test func historyAndTargetsAreTheTwoHalves() {
        let d = tinyWorld()
        let u = 0
        let all = d.behaviours(of: u)
        let h = EvaluationSplit.history(of: u, in: d), t = EvaluationSplit.targets(of: u, in: d)
        #expect(h.lowerBound == all.lowerBound && h.upperBound == t.lowerBound && t.upperBound == all.upperBound)
        #expect(h.count == all.count / 2)
        let targets = EvaluationSplit.targetItems(of: u, in: d)
        let seen = Set(d.behaviourItems[h])
        #expect(!targets.isEmpty && targets.isDisjoint(with: seen))
    }
}

@Suite struct SampleDataTests {
    /// SampleData/README.md promises that `miss synth --seed 7 --items 8000 --users 800` rebuilds the file exactly.
    @Test func sampleDataRegeneratesByteForByte() throws {
        var c = SyntheticWorld.Config()
        c.seed = 7; c.items = 8000; c.users = 800
        let committed = try Data(contentsOf: Paths.sampleData.appendingPathComponent("world.missdata"))
        let made = SyntheticWorld.generate(c).dataset.cacheData()
        // Compared as a Bool: on a mismatch the testing library would otherwise diff 8 MB byte by byte.
        let firstDifference = zip(made, committed).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(made.count, committed.count)
        #expect(Bool(made == committed), "made \(made.count) bytes, committed \(committed.count); first difference at byte \(firstDifference)")
    }
}
