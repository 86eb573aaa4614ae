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

    @Test func everyMethodIsTrainedPerSeedAndTabulated() throws {
        var wc = SyntheticWorld.Config()
        wc.seed = 4; wc.items = 256; wc.users = 60; wc.maxLength = 160
        let d = SyntheticWorld.generate(wc).dataset
        let mm = d.modalities[0].values.l2NormalizedRows()
        var o = PaperSuite.Options()
        o.seeds = [1, 2]; o.ks = [10]; o.beam = 10; o.mmLengths = [40, 80]
        o.training.trainer.steps = 3; o.training.trainer.instancesPerBatch = 2
        o.training.evalEvery = 0
        o.training.config.idDim = 8; o.training.config.coLength = 60; o.training.config.mmLength = 80; o.training.config.topK = 5
        o.training.config.experts = 2; o.training.config.expertHidden = 8; o.training.config.towerHidden = 4
        o.sasrec.config.dim = 8; o.sasrec.config.maxLength = 10; o.sasrec.config.negatives = 16; o.sasrec.batch = 8
        var lines: [String] = []
        let r = try PaperSuite.run(dataset: d, itemMM: mm, options: o) { lines.append($0) }
        // Per seed: TDM stage 1 + 6 variants + one extra length (80 is MISS itself) + SASRec.
        #expect(lines.count == 2 * 9)
        let methods = r.rows.map { "\($0.table)/\($0.method)" }
        #expect(methods == ["Length study/MISS L_mm=40", "Length study/MISS L_mm=80",
                            "Table 1/TDM", "Table 1/TDM+MMoE", "Table 1/SASRec", "Table 1/MISS", "Table 1/popularity",
                            "Table 2/w/o MM-GSU", "Table 2/w/o Co-GSU", "Table 2/w/o MM tree"])
        for row in r.rows {
            #expect(row.recall.count == 2 && row.precision.count == 2 && row.meanReturned.count == 2 && row.usersShort.count == 2)
            #expect(row.meanReturned.allSatisfy { $0 <= Double(row.k) } && row.usersShort.allSatisfy { $0 <= r.testUsers })
        }
        // The length study's L_mm 80 row is MISS's own evaluation.
        let miss = r.rows.first { $0.method == "MISS" }!, same = r.rows.first { $0.method == "MISS L_mm=80" }!
        #expect(miss.recall == same.recall)
        // Popularity does not depend on the seed.
        let pop = r.rows.first { $0.method == "popularity" }!
        #expect(pop.recall[0] == pop.recall[1])
        let md = PaperSuite.markdown(r, command: "miss eval --suite paper …")
        #expect(md.contains("#### Table 1") && md.contains("| TDM+MMoE |") && md.contains("| SASRec |") && md.contains("± "))
        // The record says which beam search the tree models ran, and the Markdown says it in words.
        #expect(r.skipSeenSubtrees == true && md.contains("retrieval beam 10, which does not score subtrees whose items are all in the user's history"))
        var plain = r
        plain.skipSeenSubtrees = false
        #expect(PaperSuite.markdown(plain, command: "").contains("retrieval beam 10, the plain beam search"))
        // A method that returned fewer than K items to some user says so under its table, and only then.
        for row in r.rows {
            let note = "\(row.method) at K = \(row.k) returned"
            #expect(md.contains(note) == row.usersShort.contains { $0 > 0 }, "\(note)")
        }
        // SASRec has no tree: no H@hRecall.
        let sasrec = r.rows.first { $0.method == "SASRec" }!
        #expect(sasrec.hierarchicalRecall.allSatisfy { $0.isEmpty })
        // Steps per seed: the tree models trained their 3 steps without validation (best = last); popularity
        // trains nothing; SASRec validated every evalEvery steps, and its best step is one of its validations.
        let tdm = r.rows.first { $0.method == "TDM" }!
        #expect(tdm.stepsRun == [3, 3] && tdm.bestStep == [3, 3] && tdm.validation == [[], []])
        #expect(PaperSuite.stepsCell(tdm) == "3/3, 3/3" && PaperSuite.stepsCell(pop) == "–")
        #expect(md.contains("| 3/3, 3/3 |\n") && md.contains("| – | – |\n"))
        for (seed, history) in sasrec.validation.enumerated() {
            let steps = history.map(\.step)
            #expect(!steps.isEmpty && steps.allSatisfy { $0 % o.sasrec.evalEvery == 0 || $0 == o.sasrec.steps })
            #expect(steps.last == sasrec.stepsRun[seed] && steps.contains(sasrec.bestStep[seed]))
            // The scores are the exact ones: the best step's is the first maximum (later ties do not replace it).
            let best = history.map(\.score).max()!
            #expect(history.first { $0.score == best }!.step == sasrec.bestStep[seed])
        }
    }
}
