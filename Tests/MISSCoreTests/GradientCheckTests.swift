import Foundation
import Testing
import MISSCore
import MISSTestSupport

/// Finite-difference checks of every layer's backward pass (see `checkGradient` for tolerances).
@Suite struct GradientCheckTests {
    @Test func linear() {
        var rng = Xoshiro256StarStar(seed: 1)
        let layer = Linear(name: "lin", inputs: 5, outputs: 4, rng: &rng)
        layer.bias!.value = .randomUniform(1, 4, using: &rng)
        let x = Box(Matrix.randomUniform(3, 5, using: &rng))
        let w = Matrix.randomUniform(3, 4, using: &rng)
        let loss = { weightedSum(layer.forward(x.value), w) }
        layer.zeroGrad()
        let dx = layer.backward(x: x.value, dy: w)
        checkGradient(layer.weight, loss: loss)
        checkGradient(layer.bias!, loss: loss)
        checkGradient("lin.x", input: x, analytic: dx, loss: loss)
    }

    @Test func embeddingWithRepeatedIds() {
        var rng = Xoshiro256StarStar(seed: 2)
        let emb = Embedding(name: "emb", count: 6, dim: 3, std: 0.5, rng: &rng)
        let ids = [4, 1, 4, 0]  // row 4 twice: its gradient must be the sum of both uses
        let w = Matrix.randomUniform(4, 3, using: &rng)
        emb.zeroGrad()
        emb.backward(ids: ids, de: w)
        #expect(emb.table.sparseGrad.rowIndices == [4, 1, 0])
        checkGradient(emb.table) { weightedSum(emb.forward(ids), w) }
    }

    @Test func mlpWithReLU() {
        var rng = Xoshiro256StarStar(seed: 3)
        let mlp = MLP(name: "mlp", sizes: [6, 8, 5, 3], rng: &rng)
        let x = Box(Matrix.randomUniform(4, 6, using: &rng))
        let w = Matrix.randomUniform(4, 3, using: &rng)
        let loss = { weightedSum(mlp.forward(x.value).y, w) }
        mlp.zeroGrad()
        let (_, cache) = mlp.forward(x.value)
        let dx = mlp.backward(cache: cache, dy: w)
        for p in mlp.parameters { checkGradient(p, loss: loss) }
        checkGradient("mlp.x", input: x, analytic: dx, loss: loss)
    }

    @Test func softmaxRows() {
        var rng = Xoshiro256StarStar(seed: 4)
        let x = Box(Matrix.randomUniform(3, 7, low: -3, high: 3, using: &rng))
        let w = Matrix.randomUniform(3, 7, using: &rng)
        let p = Softmax.forward(x.value)
        for r in 0..<3 { #expect(abs(p.row(r).reduce(0, +) - 1) < 1e-6) }
        let dx = Softmax.backward(p: p, dy: w)
        checkGradient("softmax", input: x, analytic: dx) { weightedSum(Softmax.forward(x.value), w) }
    }

    @Test func reluAwayFromTheKink() {
        var rng = Xoshiro256StarStar(seed: 5)
        // Keep |x| ≥ 0.1 so that the finite difference never straddles 0.
        let x = Box(Matrix.randomUniform(4, 5, low: 0.1, high: 2, using: &rng).zipMap(
            Matrix.randomUniform(4, 5, using: &rng)) { v, s in s < 0 ? -v : v })
        let w = Matrix.randomUniform(4, 5, using: &rng)
        let dx = ReLU.backward(y: ReLU.forward(x.value), dy: w)
        checkGradient("relu", input: x, analytic: dx) { weightedSum(ReLU.forward(x.value), w) }
    }

    /// The 8-lane ReLU against Swift's scalar `max(x, 0)`, bit for bit: NaN stays NaN, −0 becomes +0,
    /// every length around the lane width.
    @Test func reluMatchesTheScalarMaxBitForBit() {
        var rng = Xoshiro256StarStar(seed: 8)
        let specials: [Float] = [.nan, -0.0, 0, -.infinity, .infinity, -1e-30, 1e-30]
        for n in [1, 7, 8, 9, 16, 31, 40] {
            let v = (0..<n).map { i in i % 3 == 0 ? specials[(i / 3) % specials.count] : rng.nextFloat() * 2 - 1 }
            let got = ReLU.forward(Matrix(rows: 1, cols: n, storage: v)).storage
            #expect(got.map(\.bitPattern) == v.map { max($0, 0).bitPattern }, "n \(n)")
        }
    }

    @Test func bceWithLogits() {
        var rng = Xoshiro256StarStar(seed: 6)
        let logits = Box(Matrix.randomUniform(5, 3, low: -4, high: 4, using: &rng))
        let labels = Matrix.randomUniform(5, 3, low: 0, high: 1, using: &rng).map { $0 < 0.5 ? 0 : 1 }
        let weights = Matrix.randomUniform(5, 3, low: 0, high: 2, using: &rng)
        let (_, grad) = BCEWithLogits.loss(logits: logits.value, labels: labels, weights: weights)
        checkGradient("bce", input: logits, analytic: grad) {
            BCEWithLogits.loss(logits: logits.value, labels: labels, weights: weights).loss
        }
    }

    @Test func targetAttentionWithMask() {
        var rng = Xoshiro256StarStar(seed: 7)
        let b = 3, t = 5, d = 4, dv = 3
        let q = Box(Matrix.randomUniform(b, d, using: &rng))
        let k = Box(Matrix.randomUniform(b * t, d, using: &rng))
        let v = Box(Matrix.randomUniform(b * t, dv, using: &rng))
        var mask = [Bool](repeating: true, count: b * t)
        mask[3] = false; mask[7] = false; mask[8] = false  // padding positions
        let w = Matrix.randomUniform(b, dv, using: &rng)
        let fwd = TargetAttention.forward(query: q.value, keys: k.value, values: v.value, mask: mask)
        #expect(fwd.weights[0, 3] == 0 && fwd.weights[1, 2] == 0)
        let g = TargetAttention.backward(query: q.value, keys: k.value, values: v.value, weights: fwd.weights, dOut: w)
        let loss = { weightedSum(TargetAttention.forward(query: q.value, keys: k.value, values: v.value, mask: mask).out, w) }
        checkGradient("attention.q", input: q, analytic: g.dQuery, loss: loss)
        checkGradient("attention.k", input: k, analytic: g.dKeys, loss: loss)
        checkGradient("attention.v", input: v, analytic: g.dValues, loss: loss)
        // Masked positions get no gradient at all.
        for j in 0..<d { #expect(g.dKeys[3, j] == 0) }
        for j in 0..<dv { #expect(g.dValues[7, j] == 0) }
    }

    @Test func mixtureOfExpertsGate() {
        var rng = Xoshiro256StarStar(seed: 8)
        let n = 4, inputs = 5, experts = 3, h = 2
        let gate = MixtureOfExpertsGate(name: "gate", inputs: inputs, experts: experts, rng: &rng)
        let x = Box(Matrix.randomUniform(n, inputs, using: &rng))
        let ex = (0..<experts).map { _ in Box(Matrix.randomUniform(n, h, using: &rng)) }
        let w = Matrix.randomUniform(n, h, using: &rng)
        let loss = { weightedSum(gate.forward(x: x.value, experts: ex.map(\.value)).out, w) }
        gate.zeroGrad()
        let fwd = gate.forward(x: x.value, experts: ex.map(\.value))
        for r in 0..<n { #expect(abs(fwd.gate.row(r).reduce(0, +) - 1) < 1e-6) }
        let g = gate.backward(x: x.value, experts: ex.map(\.value), gateWeights: fwd.gate, dOut: w)
        for p in gate.parameters { checkGradient(p, loss: loss) }
        checkGradient("gate.x", input: x, analytic: g.dx, loss: loss)
        for e in 0..<experts { checkGradient("gate.expert\(e)", input: ex[e], analytic: g.dExperts[e], loss: loss) }
    }

    /// MLP → target attention → linear read-out → BCE: gradients flow through every piece.
    @Test func composedNetwork() {
        var rng = Xoshiro256StarStar(seed: 9)
        let b = 3, t = 4, d = 4
        let mlp = MLP(name: "q", sizes: [5, 6, d], rng: &rng)
        let readout = Linear(name: "out", inputs: d, outputs: 1, rng: &rng)
        let x = Box(Matrix.randomUniform(b, 5, using: &rng))
        let keys = Box(Matrix.randomUniform(b * t, d, using: &rng))
        let values = Matrix.randomUniform(b * t, d, using: &rng)
        let labels = Matrix([[1], [0], [1]])
        func forward() -> (loss: Double, dLogits: Matrix, q: Matrix, cache: MLP.Cache, att: TargetAttention.Output) {
            let (q, cache) = mlp.forward(x.value)
            let att = TargetAttention.forward(query: q, keys: keys.value, values: values)
            let logits = readout.forward(att.out)
            let (l, dl) = BCEWithLogits.loss(logits: logits, labels: labels)
            return (l, dl, q, cache, att)
        }
        for p in mlp.parameters + readout.parameters { p.zeroGrad() }
        let f = forward()
        let dAtt = readout.backward(x: f.att.out, dy: f.dLogits)
        let g = TargetAttention.backward(query: f.q, keys: keys.value, values: values, weights: f.att.weights, dOut: dAtt)
        let dx = mlp.backward(cache: f.cache, dy: g.dQuery)
        let loss = { forward().loss }
        for p in mlp.parameters + readout.parameters { checkGradient(p, loss: loss) }
        checkGradient("composed.x", input: x, analytic: dx, loss: loss)
        checkGradient("composed.keys", input: keys, analytic: g.dKeys, loss: loss)
    }
}

@Suite struct ContrastiveGradientTests {
    @Test func l2Normalize() {
        var rng = Xoshiro256StarStar(seed: 21)
        let x = Box(Matrix.randomUniform(4, 5, using: &rng))
        let w = Matrix.randomUniform(4, 5, using: &rng)
        let (y, norms) = L2Normalize.forward(x.value)
        for r in 0..<4 { #expect(abs(y.rowDots(y)[r] - 1) < 1e-5) }
        let dx = L2Normalize.backward(y: y, norms: norms, dy: w)
        checkGradient("l2norm", input: x, analytic: dx) { weightedSum(L2Normalize.forward(x.value).y, w) }
    }

    @Test func infoNCE() {
        var rng = Xoshiro256StarStar(seed: 22)
        let a = Box(Matrix.randomUniform(5, 4, using: &rng))
        let p = Box(Matrix.randomUniform(5, 4, using: &rng))
        let r = InfoNCE.loss(anchors: a.value, positives: p.value, temperature: 0.5)
        let loss = { InfoNCE.loss(anchors: a.value, positives: p.value, temperature: 0.5).loss }
        checkGradient("infonce.anchors", input: a, analytic: r.dAnchors, loss: loss)
        checkGradient("infonce.positives", input: p, analytic: r.dPositives, loss: loss)
    }

    @Test func infoNCEByHand() {
        // Two orthogonal unit pairs, τ = 1: S = I, each softmax row is (e, 1)/(e + 1),
        // so the loss is −log(e/(e+1)) = log(1 + 1/e) in both directions.
        let i2 = Matrix([[1, 0], [0, 1]])
        let r = InfoNCE.loss(anchors: i2, positives: i2, temperature: 1)
        #expect(abs(r.loss - log(1 + exp(-1.0))) < 1e-6)
    }

    @Test func maskedMSE() {
        var rng = Xoshiro256StarStar(seed: 23)
        let pred = Box(Matrix.randomUniform(3, 4, using: &rng))
        let target = Matrix.randomUniform(3, 4, using: &rng)
        let mask = Matrix([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]])
        let r = MeanSquaredError.loss(prediction: pred.value, target: target, mask: mask)
        checkGradient("mse", input: pred, analytic: r.dPrediction) {
            MeanSquaredError.loss(prediction: pred.value, target: target, mask: mask).loss
        }
        #expect(MeanSquaredError.loss(prediction: Matrix([[1, 2]]), target: Matrix([[0, 0]])).loss == 2.5)
    }
}
