/// Mixture-of-experts gate (the "MMoE" gate of one task): g = softmax(x·Wg + bg) over E experts,
/// out = Σ_e g[:, e] · expert_e.
///
/// forward:  x (N, in), experts E × (N, h) -> out (N, h), gate g (N, E)
/// backward: dOut (N, h) -> dx (N, in) through the gate, dExperts E × (N, h); accumulates dWg, dbg.
public struct MixtureOfExpertsGate: ParameterContainer {
    public let gate: Linear

    public init(name: String, inputs: Int, experts: Int, rng: inout Xoshiro256StarStar) {
        gate = Linear(name: name, inputs: inputs, outputs: experts, rng: &rng)
    }

    public init(gate: Linear) { self.gate = gate }

    public var parameters: [Parameter] { gate.parameters }
    public var experts: Int { gate.outputs }

    public func forward(x: Matrix, experts: [Matrix]) -> (out: Matrix, gate: Matrix) {
        precondition(experts.count == self.experts, "MoE gate: \(experts.count) expert outputs, expected \(self.experts)")
        let g = Softmax.forward(gate.forward(x))
        var out = Matrix(rows: x.rows, cols: experts[0].cols)
        for (e, ex) in experts.enumerated() {
            let w = (0..<x.rows).map { g[$0, e] }
            out.addScaled(ex.scalingRows(by: w))
        }
        return (out, g)
    }

    public func backward(x: Matrix, experts: [Matrix], gateWeights g: Matrix, dOut: Matrix) -> (dx: Matrix, dExperts: [Matrix]) {
        var dG = Matrix(rows: x.rows, cols: self.experts)
        var dExperts: [Matrix] = []
        for (e, ex) in experts.enumerated() {
            let dots = ex.rowDots(dOut)
            for r in 0..<x.rows { dG[r, e] = dots[r] }
            dExperts.append(dOut.scalingRows(by: (0..<x.rows).map { g[$0, e] }))
        }
        let dLogits = Softmax.backward(p: g, dy: dG)
        let dx = gate.backward(x: x, dy: dLogits)
        return (dx, dExperts)
    }
}
