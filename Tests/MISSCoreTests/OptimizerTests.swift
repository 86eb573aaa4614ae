import Foundation
import Testing
import MISSCore
import MISSTestSupport

@Suite struct OptimizerTests {
    @Test func adamFirstStepsByHand() {
        let p = Parameter(name: "w", value: Matrix([[1, -2]]))
        var adam = Adam(learningRate: 0.1)
        p.grad = Matrix([[0.5, -4]])
        adam.step([p])
        // Step 1: m̂ = g, v̂ = g², update = lr·g/(|g| + ε) ≈ lr·sign(g).
        #expect(abs(p.value[0, 0] - 0.9) < 1e-6 && abs(p.value[0, 1] - (-1.9)) < 1e-6)
        p.grad = Matrix([[1, 0]])
        adam.step([p])
        // Step 2, element 0: m = 0.9·0.05 + 0.1·1 = 0.145, v = 0.999·0.00025 + 0.001 = 0.00124975,
        // m̂ = 0.145/0.19, v̂ = 0.00124975/0.001999; update = 0.1·m̂/(√v̂ + 1e-8).
        let m0 = 0.145 / 0.19, v0 = 0.00124975 / (1 - 0.999 * 0.999)
        #expect(abs(Double(p.value[0, 0]) - (0.9 - 0.1 * m0 / (v0.squareRoot() + 1e-8))) < 1e-5)
        // Element 1: m = -0.36, v = 0.015984.
        let m1 = -0.36 / 0.19, v1 = 0.015984 / (1 - 0.999 * 0.999)
        #expect(abs(Double(p.value[0, 1]) - (-1.9 - 0.1 * m1 / (v1.squareRoot() + 1e-8))) < 1e-5)
    }

    @Test func adagradByHand() {
        let p = Parameter(name: "w", value: Matrix([[1]]))
        var opt = Adagrad(learningRate: 0.5, epsilon: 0, initialAccumulator: 0)
        p.grad = Matrix([[2]])
        opt.step([p])  // acc = 4, update = 0.5·2/2 = 0.5
        #expect(p.value[0, 0] == 0.5)
        p.grad = Matrix([[1]])
        opt.step([p])  // acc = 5, update = 0.5/√5
        #expect(abs(Double(p.value[0, 0]) - (0.5 - 0.5 / 5.0.squareRoot())) < 1e-6)
    }

    @Test func sparseUpdatesTouchOnlyTheirRows() {
        var rng = Xoshiro256StarStar(seed: 1)
        let emb = Embedding(name: "e", count: 5, dim: 3, rng: &rng)
        let before = emb.table.value
        emb.backward(ids: [3, 1, 3], de: Matrix(rows: 3, cols: 3, repeating: 1))
        var adam = Adam(learningRate: 0.01)
        adam.step(emb.parameters)
        for r in 0..<5 {
            let changed = emb.table.value.row(r) != before.row(r)
            #expect(changed == (r == 1 || r == 3), "row \(r)")
        }
        var ada = Adagrad()
        let mid = emb.table.value
        emb.zeroGrad()
        emb.backward(ids: [0], de: Matrix([[1, 2, 3]]))
        ada.step(emb.parameters)
        for r in 1..<5 { #expect(emb.table.value.row(r) == mid.row(r)) }
        #expect(emb.table.value.row(0) != mid.row(0))
    }

    /// Minimises a small regression with Adam; the same seed must give bit-identical weights.
    func trainTiny(seed: UInt64) -> [Float] {
        var rng = Xoshiro256StarStar(seed: seed)
        let mlp = MLP(name: "m", sizes: [4, 8, 1], rng: &rng)
        let emb = Embedding(name: "e", count: 10, dim: 4, rng: &rng)
        var adam = Adam(learningRate: 0.01)
        for _ in 0..<5 {
            let ids = (0..<16).map { _ in rng.nextInt(below: 10) }
            let x = emb.forward(ids)
            let (y, cache) = mlp.forward(x)
            let labels = Matrix(rows: 16, cols: 1, storage: ids.map { $0 % 2 == 0 ? 1 : 0 })
            let (_, dy) = BCEWithLogits.loss(logits: y, labels: labels)
            mlp.zeroGrad(); emb.zeroGrad()
            let dx = mlp.backward(cache: cache, dy: dy)
            emb.backward(ids: ids, de: dx)
            adam.step(mlp.parameters + emb.parameters)
        }
        return (mlp.parameters + emb.parameters).flatMap(\.value.storage)
    }

    @Test func sameSeedGivesIdenticalWeightsAfterAdamSteps() {
        let a = trainTiny(seed: 77), b = trainTiny(seed: 77), c = trainTiny(seed: 78)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(a != c)
    }

    @Test func adamReducesALoss() {
        var rng = Xoshiro256StarStar(seed: 3)
        let lin = Linear(name: "l", inputs: 3, outputs: 1, rng: &rng)
        let x = Matrix.randomUniform(64, 3, using: &rng)
        let labels = Matrix(rows: 64, cols: 1, storage: (0..<64).map { x[$0, 0] - x[$0, 2] > 0 ? 1 : 0 })
        var adam = Adam(learningRate: 0.05)
        var first = 0.0, last = 0.0
        for step in 0..<200 {
            lin.zeroGrad()
            let (l, dy) = BCEWithLogits.loss(logits: lin.forward(x), labels: labels)
            _ = lin.backward(x: x, dy: dy)
            adam.step(lin.parameters)
            if step == 0 { first = l }
            last = l
        }
        #expect(last < first * 0.5, "loss \(first) → \(last)")
    }

    /// The update runs 8 lanes at a time, and large parameters in pieces on all cores: each element must get
    /// exactly the scalar formula's value, bit for bit, for dense parameters of every length around the lane
    /// width and past a piece (32 768), and for sparse rows of odd width, few or more than a block (1024 rows).
    @Test func adamMatchesTheScalarFormulaBitForBit() {
        var rng = Xoshiro256StarStar(seed: 11)
        let lr: Float = 0.01, b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8
        for n in [1, 7, 8, 9, 16, 23, 64, 67, 70_001] {
            let p = Parameter(name: "w\(n)", value: .randomNormal(1, n, using: &rng))
            var value = p.value.storage, m = [Float](repeating: 0, count: n), v = m
            var adam = Adam(learningRate: lr)
            for t in 1...3 {
                p.grad = .randomNormal(1, n, std: 3, using: &rng)
                adam.step([p])
                let c1 = 1 - powf(b1, Float(t)), c2 = 1 - powf(b2, Float(t))
                for i in 0..<n {
                    let g = p.grad.storage[i]
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    value[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                }
                #expect(p.value.storage.map(\.bitPattern) == value.map(\.bitPattern), "n \(n), step \(t)")
            }
        }
        // Sparse rows of width 11 (one 8-lane block and a tail), touched in a scrambled order.
        for (count, touched) in [(6, [4, 0, 2]), (3000, (0..<2500).map { ($0 * 7919) % 3000 })] {
            let emb = Embedding(name: "e", count: count, dim: 11, rng: &rng)
            var value = emb.table.value.storage, m = [Float](repeating: 0, count: count * 11), v = m
            var adam = Adam(learningRate: lr)
            let de = Matrix.randomNormal(touched.count, 11, using: &rng)
            emb.backward(ids: touched, de: de)
            adam.step(emb.parameters)
            for (k, row) in touched.enumerated() {
                for j in 0..<11 {
                    let i = row * 11 + j, g = de[k, j]
                    m[i] = b1 * 0 + (1 - b1) * g
                    v[i] = b2 * 0 + (1 - b2) * g * g
                    value[i] -= lr * (m[i] / (1 - b1)) / ((v[i] / (1 - b2)).squareRoot() + eps)
                }
            }
            #expect(emb.table.value.storage.map(\.bitPattern) == value.map(\.bitPattern), "\(touched.count) rows")
        }
    }

    /// Rows accumulate in first-touch order; a reset forgets every row (and the next batch starts afresh,
    /// including rows beyond anything seen so far).
    @Test func sparseRowGradientAccumulatesInFirstTouchOrderAndResets() {
        var s = SparseRowGradient(cols: 9)
        let a = (0..<9).map { Float($0) }, b = (0..<9).map { Float($0) * 0.5 - 1 }
        s.add(row: 7, a[...]); s.add(row: 2, b[...]); s.add(row: 7, b[...])
        #expect(s.rowIndices == [7, 2])
        #expect(Array(s.gradient(at: 0)) == zip(a, b).map { $0 + $1 })
        #expect(Array(s.gradient(at: 1)) == b)
        var t = SparseRowGradient(cols: 9)
        t.add(row: 2, a[...]); t.add(s)
        #expect(t.rowIndices == [2, 7])
        #expect(Array(t.gradient(at: 0)) == zip(a, b).map { $0 + $1 })
        s.removeAll()
        #expect(s.isEmpty && s.rowIndices.isEmpty && s.flat.isEmpty)
        s.add(row: 1000, a[...]); s.add(row: 7, a[...])
        #expect(s.rowIndices == [1000, 7])
        #expect(Array(s.gradient(at: 1)) == a, "row 7 starts from zero after the reset")
    }
}
