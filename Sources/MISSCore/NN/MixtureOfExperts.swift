/// Mixture-of-experts gate (the "MMoE" gate of one task): g = softmax(x·Wg + bg) over E experts,
/// out = Σ_e g[:, e] · expert_e.
///
/// forward:  x (N, in), experts E × (N, h) -> out (N, h), gate g (N, E)
/// backward: dOut (N, h) -> dx (N, in) through the gate, dExperts E × (N, h); accumulates dWg, dbg.
public struct MixtureOfExpertsGate: ParameterContainer {
    public let gate: Linear

    public init(name: String, inputs: Int, experts: Int, rowwise: Bool = false, rng: inout Xoshiro256StarStar) {
        gate = Linear(name: name, inputs: inputs, outputs: experts, rowwise: rowwise, rng: &rng)
    }

    public init(gate: Linear) { self.gate = gate }

    public var parameters: [Parameter] { gate.parameters }
    public var experts: Int { gate.outputs }

    public func forward(x: Matrix, experts: [Matrix]) -> (out: Matrix, gate: Matrix) {
        forward(logits: gate.forward(x), experts: experts)
    }

    /// The same from the gate's logits x·Wg + bg (N, E), computed elsewhere (the estimator's head computes
    /// every expert's and gate's products in one pass).
    public func forward(logits: Matrix, experts: [Matrix]) -> (out: Matrix, gate: Matrix) {
        precondition(experts.count == self.experts && logits.cols == self.experts,
                     "MoE gate: \(experts.count) expert outputs and \(logits.cols) logits, expected \(self.experts)")
        let g = Softmax.forward(logits)
        let n = logits.rows, h = experts[0].cols, ne = self.experts
        var out = Matrix(rows: n, cols: h)
        // out[r] += g[r, e] · expert_e[r], expert by expert (the product rounded, then added).
        out.storage.withUnsafeMutableBufferPointer { o in
            g.storage.withUnsafeBufferPointer { gb in
                for (e, ex) in experts.enumerated() {
                    precondition(ex.rows == n && ex.cols == h, "MoE gate: expert \(e) is \(ex.rows)x\(ex.cols), expected \(n)x\(h)")
                    ex.storage.withUnsafeBufferPointer { xb in
                        for r in 0..<n {
                            SingleThreadKernels.axpy(gb[r * ne + e], xb.baseAddress! + r * h, o.baseAddress! + r * h, h)
                        }
                    }
                }
            }
        }
        return (out, g)
    }

    public func backward(x: Matrix, experts: [Matrix], gateWeights g: Matrix, dOut: Matrix) -> (dx: Matrix, dExperts: [Matrix]) {
        var dx = Matrix(rows: x.rows, cols: x.cols)
        let dExperts = backward(x: x, experts: experts, gateWeights: g, dOut: dOut, addingInputGradientTo: &dx)
        return (dx, dExperts)
    }

    /// The same, adding dx (through the gate) into `dxSum` (N, in); returns dExperts.
    public func backward(x: Matrix, experts: [Matrix], gateWeights g: Matrix, dOut: Matrix,
                         addingInputGradientTo dxSum: inout Matrix) -> [Matrix] {
        let n = x.rows, ne = self.experts
        var dG = Matrix(rows: n, cols: ne)
        var dExperts: [Matrix] = []
        for (e, ex) in experts.enumerated() {
            let dots = ex.rowDots(dOut)
            for r in 0..<n { dG.storage[r * ne + e] = dots[r] }
            dExperts.append(dOut.scalingRows(by: (0..<n).map { g.storage[$0 * ne + e] }))
        }
        gate.backward(x: x, dy: Softmax.backward(p: g, dy: dG), addingInputGradientTo: &dxSum)
        return dExperts
    }
}
