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
}
