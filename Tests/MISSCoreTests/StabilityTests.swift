import Foundation
import Testing
import MISSCore
import MISSTestSupport

@Suite struct StabilityTests {
    @Test func bceIsFiniteAndCorrectAtLargeLogits() {
        let logits = Matrix([[100, -100, 100, -100, 0]])
        let labels = Matrix([[1, 1, 0, 0, 1]])
        let (loss, grad) = BCEWithLogits.loss(logits: logits, labels: labels)
        // By hand: 0 + 100 + 100 + 0 + log 2 (the tiny e^-100 terms are below Double's resolution here).
        #expect(abs(loss - (200 + log(2.0))) < 1e-9)
        #expect(grad.isFinite)
        #expect(grad.storage.map { ($0 * 1000).rounded() / 1000 } == [0, -1, 1, 0, -0.5])
        let big = BCEWithLogits.loss(logits: Matrix([[1e4, -1e4]]), labels: Matrix([[0, 1]]))
        #expect(big.loss == 2e4 && big.dLogits.isFinite)
    }

    @Test func sigmoidSaturatesWithoutNaN() {
        #expect(sigmoid(100) == 1)
        #expect(sigmoid(-100) > 0 && sigmoid(-100) < 1e-38)
        #expect(sigmoid(-1e4) == 0 && !sigmoid(-1e4).isNaN)
        #expect(abs(sigmoid(0) - 0.5) < 1e-7)
    }

    @Test func softmaxIsStableAtLargeInputs() {
        let p = Softmax.forward(Matrix([[100, -100, 0], [1000, 1000, -1000], [-100, -100, -100]]))
        #expect(p.isFinite)
        #expect(abs(p[0, 0] - 1) < 1e-6 && p[0, 1] < 1e-38)
        #expect(p[1, 0] == 0.5 && p[1, 1] == 0.5 && p[1, 2] == 0)
        for j in 0..<3 { #expect(abs(p[2, j] - 1.0 / 3) < 1e-6) }
    }

    @Test func fullyMaskedSoftmaxRowIsZeroNotNaN() {
        let p = Softmax.forward(Matrix([[-.infinity, -.infinity], [0, -.infinity]]))
        #expect(p == Matrix([[0, 0], [1, 0]]))
    }

    /// The 8-lane e^x against Double's exp over softmax's whole range (x ≤ 0), and at its edges.
    @Test func vectorExpIsWithinAFewUlpOfExp() {
        var rng = Xoshiro256StarStar(seed: 9)
        var worst = 0.0
        for trial in 0..<20_000 {
            var x = SIMD8<Float>()
            for l in 0..<8 { x[l] = trial < 10_000 ? -rng.nextFloat() * 87.3 : -rng.nextFloat() * 2 }
            let e = Softmax.exp(x)
            for l in 0..<8 {
                let exact = Foundation.exp(Double(x[l]))
                worst = max(worst, abs(Double(e[l]) - exact) / exact)
            }
        }
        #expect(worst < 4 * Double(Float.ulpOfOne), "worst relative error \(worst)")
        let edges = Softmax.exp(SIMD8(0, -.infinity, -88, -87.3, -1e30, .nan, -0.0, -1e-8))
        #expect(edges[0] == 1 && edges[1] == 0 && edges[2] == 0 && edges[4] == 0 && edges[5].isNaN && edges[6] == 1)
        #expect(edges[3] > 0 && abs(Double(edges[3]) / Foundation.exp(-87.3) - 1) < 1e-5 && edges[7] == 1)
    }

    /// Rows of every length (full vectors and a padded tail) against a Double softmax; an entry gets the
    /// same probability in the tail as in a full vector.
    @Test func softmaxRowsOfEveryLengthMatchADoubleReference() {
        var rng = Xoshiro256StarStar(seed: 10)
        for n in 1...41 {
            var row = (0..<n).map { _ in rng.nextFloat() * 20 - 10 }
            if n > 8 { row[n - 1] = row[0] }
            let m = Double(row.max()!), e = row.map { Foundation.exp(Double($0) - m) }, s = e.reduce(0, +)
            let p = Softmax.forward(vector: row)
            for j in 0..<n { #expect(abs(Double(p[j]) - e[j] / s) < 1e-6, "n \(n), entry \(j)") }
            if n > 8 { #expect(p[n - 1] == p[0], "n \(n): the tail's copy of entry 0") }
        }
    }
}
