import Foundation
import Testing
import MISSCore
import MISSData
@testable import MISSModel
import MISSTestSupport

@Suite struct SASRecTests {
    func tiny() -> SASRec {
        var c = SASRec.Config()
        c.dim = 4; c.maxLength = 5; c.ffnHidden = 6; c.negatives = 4
        let m = SASRec(config: c, items: 12, seed: 3)
        // Larger than the initial scale so that the attention is far from uniform; biases off zero so that no
        // ReLU input sits on its kink (an empty history has h = 0).
        var rng = Xoshiro256StarStar(seed: 11)
        for p in m.parameters { p.value.scale(3) }
        for b in [m.ffn1.bias!, m.ffn2.bias!] { b.value = .randomNormal(1, b.value.cols, std: 0.5, using: &rng) }
        return m
    }

    @Test func wholeLossGradient() {
        let m = tiny()
        // Longer than maxLength (truncated), length 1, empty, and one whose positive is also a negative (masked).
        let histories: [ArraySlice<Int32>] = [[1, 2, 3, 4, 5, 6, 7], [9], [], [3, 3, 8]]
        let positives = [0, 4, 11, 7], negatives = [2, 7, 10, 5]
        m.zeroGrad()
        m.trainStep(histories: histories, positives: positives, negatives: negatives)
        for p in m.parameters {
            checkGradient(p) { m.loss(histories: histories, positives: positives, negatives: negatives) }
        }
    }

    @Test func userTowerMatchesAHandComputedAttention() {
        let m = tiny()
        let history: ArraySlice<Int32> = [2, 5, 7]
        let u = m.userForward([history]).users
        // By hand in Double: x_j = e + p (positions counted back from the end), one query from the last.
        let d = 4, l = 5, e = m.itemEmbedding.table.value, pos = m.position.value
        let x = (0..<3).map { j in (0..<d).map { Double(e[Int(history[history.startIndex + j]), $0]) + Double(pos[l - 3 + j, $0]) } }
        func mul(_ v: [Double], _ w: Matrix) -> [Double] { (0..<w.cols).map { c in (0..<v.count).reduce(0.0) { $0 + v[$1] * Double(w[$1, c]) } } }
        let q = mul(x[2], m.wq.value)
        let s = x.map { xj in zip(q, mul(xj, m.wk.value)).reduce(0.0) { $0 + $1.0 * $1.1 } / 2 }
        let ex = s.map { Foundation.exp($0 - s.max()!) }
        let a = ex.map { $0 / ex.reduce(0, +) }
        let att = m.attention(history: history)
        #expect(att.count == 3)
        for j in 0..<3 { #expect(abs(Double(att[j]) - a[j]) < 1e-5, "attention[\(j)] = \(att[j]), expected \(a[j])") }
        var h = x[2]
        for j in 0..<3 { let v = mul(x[j], m.wv.value); for c in 0..<d { h[c] += a[j] * v[c] } }
        var z = mul(h, m.ffn1.weight.value)
        for c in 0..<z.count { z[c] = max(0, z[c] + Double(m.ffn1.bias!.value[0, c])) }
        let f = mul(z, m.ffn2.weight.value)
        for c in 0..<d {
            let expected = h[c] + f[c] + Double(m.ffn2.bias!.value[0, c])
            #expect(abs(Double(u[0, c]) - expected) < 1e-4 * max(1, abs(expected)), "u[\(c)] = \(u[0, c]), expected \(expected)")
        }
    }

    @Test func retrievalIsTheExactTopKOfAllItemsWithoutTheHistory() {
        let m = tiny()
        let history: ArraySlice<Int32> = [1, 4, 6]
        let got = m.retrieve(history: history, k: 5, exclude: Set(history))
        let u = m.userForward([history]).users
        let e = m.itemEmbedding.table.value
        let scores = (0..<12).map { i in (0..<4).reduce(Float(0)) { $0 + u[0, $1] * e[i, $1] } }
        let expected = (0..<12).filter { ![1, 4, 6].contains($0) }.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        #expect(got.map(Int.init) == Array(expected.prefix(5)))
    }

    @Test func trainingLearnsASequentialPatternAndIsDeterministic() throws {
        // Every user walks the items in a cycle: the next item is always the last one + 1.
        let items = 30
        var users: [[Int32]] = []
        var rng = Xoshiro256StarStar(seed: 5)
        for _ in 0..<200 {
            let start = rng.nextInt(below: items)
            users.append((0..<12).map { Int32((start + $0) % items) })
        }
        var builder = BehaviourTableBuilder()
        for (u, seq) in users.enumerated() {
            for (t, item) in seq.enumerated() { builder.add(user: "u\(u)", item: Int(item), time: Int64(t), labels: 1) }
        }
        let t = builder.build()
        let dataset = Dataset(name: "cycle", objectives: ["view"], itemIDs: (0..<items).map { "i\($0)" }, itemTitles: (0..<items).map { "\($0)" },
                              itemTexts: Array(repeating: "", count: items), itemCategories: Array(repeating: -1, count: items), categoryNames: [],
                              modalities: [], userIDs: t.userIDs, userOffsets: t.offsets, behaviourItems: t.items, behaviourTimes: t.times,
                              behaviourLabels: t.labels)
        let split = EvaluationSplit(dataset: dataset, seed: 1)
        var o = SASRecTraining.Options()
        o.config.dim = 16; o.config.maxLength = 8; o.config.negatives = 20
        o.steps = 400; o.batch = 32; o.learningRate = 1e-2; o.evalEvery = 50; o.validationK = 5
        let a = try SASRecTraining.run(dataset: dataset, split: split, options: o)
        let b = try SASRecTraining.run(dataset: dataset, split: split, options: o)
        #expect(a.model.parameters.map(\.value) == b.model.parameters.map(\.value))
        // Held-out halves continue the cycle: 6 targets, K = 6 → an ideal model recalls ≥ the first one.
        let test = EvaluationSplit.usersWithTargets(split.test, in: dataset)
        let r = Evaluation.evaluate(sasrec: a.model, dataset: dataset, users: test, k: 6)
        let pop = Evaluation.popularity(dataset: dataset, trainUsers: split.train, users: test, k: 6)
        #expect(r.recall > 1.5 * pop.recall, "SASRec \(r.recall) vs popularity \(pop.recall)")
        // The pattern itself: the best item is the next one in the cycle.
        let hits = test.filter { u in
            let h = dataset.behaviourItems[EvaluationSplit.history(of: u, in: dataset)]
            return a.model.retrieve(history: h, k: 1, exclude: Set(h)) == [(h.last! + 1) % Int32(items)]
        }
        #expect(Double(hits.count) >= 0.9 * Double(test.count), "next item first for \(hits.count) of \(test.count) test users")
    }
}
