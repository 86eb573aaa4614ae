import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData
import MISSModel

@Suite struct PaperSuiteTests {
    @Test func meanAndSampleStandardDeviationByHand() {
        let (m, s) = PaperSuite.meanStd([1, 2, 3, 6])
        #expect(m == 3)
        #expect(abs(s - (14.0 / 3).squareRoot()) < 1e-12)   // Σ(x−m)² = 4+1+0+9 = 14, n−1 = 3
        #expect(PaperSuite.meanStd([5]) == (5, 0))
    }

    @Test func everyMethodIsTrainedPerSplitAndTabulated() throws {
        var wc = SyntheticWorld.Config()
        wc.seed = 4; wc.items = 256; wc.users = 60; wc.maxLength = 160
        let d = SyntheticWorld.generate(wc).dataset
        let mm = d.modalities[0].values.l2NormalizedRows()
        var o = PaperSuite.Options()
        o.splitSeeds = [1, 2]; o.seeds = [1]; o.ks = [10]; o.mmLengths = [40, 80]; o.resamples = 200
        o.training.trainer.steps = 3; o.training.trainer.instancesPerBatch = 2
        o.training.evalEvery = 0; o.training.validationK = 10
        o.training.config.idDim = 8; o.training.config.coLength = 60; o.training.config.mmLength = 80; o.training.config.topK = 5
        o.training.config.experts = 2; o.training.config.expertHidden = 8; o.training.config.towerHidden = 4
        o.sasrec.config.dim = 8; o.sasrec.config.maxLength = 10; o.sasrec.config.negatives = 16; o.sasrec.batch = 8
        o.sasrec.steps = 30; o.sasrec.evalEvery = 10
        var lines: [String] = []
        var splits: [UInt64] = []
        let r = try PaperSuite.run(dataset: d, itemMM: { splits.append($0); return mm }, options: o) { lines.append($0) }
        #expect(splits == [1, 2])
        // Per split: TDM stage 1 + Tables 1–2's 6 tree models + SASRec; on the first (detail) split also Table 2b's
        // two own models and the length study's extra L_mm (80 is MISS).
        #expect(lines.count == 2 * 8 + 3 && lines.count == o.modelCount())
        let methods = r.rows.map { "\($0.table)/\($0.method)" }
        #expect(methods == ["Table 1/TDM", "Table 1/TDM+MMoE", "Table 1/SASRec", "Table 1/MISS", "Table 1/popularity",
                            "Table 2/MISS", "Table 2/v1: w/o MM-GSU", "Table 2/v2: v1 w/o Co-GSU", "Table 2/v3: v2 on the ID tree",
                            "Table 2b/MISS", "Table 2b/w/o MM-GSU", "Table 2b/w/o Co-GSU", "Table 2b/w/o MM tree",
                            "Length study/MISS L_mm=40", "Length study/MISS L_mm=80"])
        let row = { (table: String, method: String) in r.rows.first { $0.table == table && $0.method == method }! }
        for row in r.rows {
            let runs = row.table == "Length study" || row.table == "Table 2b" ? 1 : 2
            #expect(row.runs.count == runs && row.runs.map(\.splitSeed) == Array([1, 2].prefix(runs)))
            for run in row.runs {
                #expect(run.users.count == run.userRecall.count && run.userRecall.count == run.userPrecision.count)
                // The run's recall is the mean of its users' (what the intervals resample).
                #expect(abs(run.recall - run.userRecall.reduce(0, +) / Double(run.userRecall.count)) < 1e-12)
                #expect(run.meanReturned <= Double(row.k) && run.usersShort <= run.users.count)
            }
            let recall = try #require(row.recall)
            #expect(recall.low <= recall.estimate && recall.estimate <= recall.high)
        }
        // The pooled estimate is the mean over both splits' users; each split has its own test users.
        let miss = row("Table 1", "MISS")
        #expect(miss.runs[0].users != miss.runs[1].users && r.testUsers == miss.runs.map { $0.users.count })
        let pooled = (miss.runs[0].userRecall + miss.runs[1].userRecall).reduce(0, +) / Double(r.testUsers.reduce(0, +))
        #expect(abs(miss.recall!.estimate - pooled) < 1e-12)
        // One model fills several rows: MISS in every table, v1 as Table 2b's w/o MM-GSU, MISS at L_mm 80.
        #expect(row("Table 2", "MISS").runs.map(\.recall) == miss.runs.map(\.recall))
        #expect(row("Table 2b", "w/o MM-GSU").runs.map(\.recall) == row("Table 2", "v1: w/o MM-GSU").runs.prefix(1).map(\.recall))
        #expect(row("Length study", "MISS L_mm=80").runs[0].recall == miss.runs[0].recall)
        // Paired differences from MISS over the same users; none for MISS itself; MISS minus MISS would be 0.
        #expect(miss.recallDifferenceFromMISS == nil && row("Table 2", "MISS").recallDifferenceFromMISS == nil)
        #expect(row("Length study", "MISS L_mm=80").recallDifferenceFromMISS == nil && row("Length study", "MISS L_mm=40").recallDifferenceFromMISS != nil)
        let tdm = row("Table 1", "TDM"), diff = try #require(tdm.recallDifferenceFromMISS)
        #expect(abs(diff.estimate - (tdm.recall!.estimate - miss.recall!.estimate)) < 1e-12)
        // H@h at the levels of the paper's 13/16/19/22 of 22, for tree models only.
        #expect(r.levels == Evaluation.correspondingLevels(leafLevel: r.leafLevel) && miss.hierarchicalRecall.count == r.levels.count)
        #expect(row("Table 1", "SASRec").hierarchicalRecall.isEmpty && row("Table 1", "popularity").hierarchicalRecall.isEmpty)
        // Popularity does not depend on the training seed, and has no steps.
        let md = PaperSuite.markdown(r, command: "miss eval --suite paper …")
        #expect(md.contains("#### Table 1: baselines and MISS, K = 10") && md.contains("| TDM+MMoE |") && md.contains("#### Table 2: progressive"))
        #expect(md.contains("Δ MISS") && md.contains("H@\(r.levels[0])") && md.contains("not scoring subtrees whose items are all in the user's history"))
        // Steps: 3 of a budget of 3 without validation: every tree run's best is the budget's last step, marked †.
        #expect(PaperSuite.stepsCell(tdm) == "3/3†, 3/3†" && PaperSuite.stepsCell(row("Table 1", "popularity")) == "–")
        let sasrec = row("Table 1", "SASRec")
        for run in sasrec.runs {
            let steps = run.validation.map(\.step)
            #expect(!steps.isEmpty && steps.last == run.stepsRun && steps.contains(run.bestStep) && run.budget == 30)
            let best = run.validation.map(\.score).max()!
            #expect(run.validation.first { $0.score == best }!.step == run.bestStep)
        }
        // A method that returned fewer than K items to some user says so under its table, and only then.
        for row in r.rows {
            let note = "\(row.method) at K = \(row.k) returned"
            #expect(md.contains(note) == row.runs.contains { $0.usersShort > 0 }, "\(note)")
        }
    }
}
