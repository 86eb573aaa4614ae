/// Fully connected layer: y = x·W + b.
///
/// forward:  x (N, in) -> y (N, out)
/// backward: dy (N, out) -> dx (N, in); accumulates dW (in, out) += xᵀ·dy and db (out) += Σ_rows dy.
public struct Linear: ParameterContainer {
    public let weight: Parameter  // (in, out)
    public let bias: Parameter?   // (1, out)
    /// Forward products by `RelevanceKernel` instead of BLAS: each output is one fused multiply-add chain
    /// over the inputs in order, so a row's outputs are the same bit for bit whatever the other rows, the
    /// split of the rows into calls or the thread. (OpenBLAS rounds a row differently depending on how the
    /// rows are blocked and threaded.) For layers whose rows are scored in parallel blocks: the estimator's head.
    public let rowwise: Bool

    public init(name: String, inputs: Int, outputs: Int, bias: Bool = true, rowwise: Bool = false, rng: inout Xoshiro256StarStar) {
        weight = Parameter(name: "\(name).weight", value: .glorot(inputs, outputs, using: &rng))
        self.bias = bias ? Parameter(name: "\(name).bias", value: Matrix(rows: 1, cols: outputs)) : nil
        self.rowwise = rowwise
    }

    /// The same layer over other parameter objects (a training worker's gradient replica).
    public init(weight: Parameter, bias: Parameter?, rowwise: Bool = false) {
        self.weight = weight
        self.bias = bias
        self.rowwise = rowwise
    }

    public var inputs: Int { weight.value.rows }
    public var outputs: Int { weight.value.cols }
    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ x: Matrix) -> Matrix {
        precondition(x.cols == inputs, "\(weight.name): input has \(x.cols) columns, expected \(inputs)")
        if rowwise { return forwardRowwise(x) }
        var y = Matrix(rows: x.rows, cols: outputs)
        if let bias {
            // Broadcast the bias into y first, then let GEMM accumulate onto it (beta = 1).
            y.addRowVector(bias.value.storage)
            BLAS.gemm(x.view(), weight.value.view(), beta: 1, into: &y)
        } else {
            BLAS.gemm(x.view(), weight.value.view(), into: &y)
        }
        return y
    }

    /// y = x·W + b by `RelevanceKernel.rowwiseProduct`; then the bias, added to each finished sum (as BLAS
    /// with beta = 1 adds its sum to a bias-filled y).
    func forwardRowwise(_ x: Matrix) -> Matrix {
        var y = RelevanceKernel.rowwiseProduct(x, weight.value)
        if let bias { y.addRowVector(bias.value.storage) }
        return y
    }

    /// `x` is the input the forward pass saw.
    public func backward(x: Matrix, dy: Matrix) -> Matrix {
        var dx = Matrix(rows: x.rows, cols: inputs)
        backward(x: x, dy: dy, addingInputGradientTo: &dx)
        return dx
    }

    /// The same, adding dx into `dxSum` (N, in): for layers that share an input (the MMoE's experts and
    /// gates), no dx of their own to allocate and add up afterwards.
    public func backward(x: Matrix, dy: Matrix, addingInputGradientTo dxSum: inout Matrix) {
        precondition(dy.rows == x.rows && dy.cols == outputs, "\(weight.name): dy shape mismatch")
        precondition(dxSum.rows == x.rows && dxSum.cols == inputs, "\(weight.name): dx is \(dxSum.rows)x\(dxSum.cols), expected \(x.rows)x\(inputs)")
        BLAS.gemm(x.view(), transposeA: true, dy.view(), beta: 1, into: &weight.grad)
        if let bias {
            let db = dy.columnSums()
            BLAS.axpy(1, db, &bias.grad.storage)
        }
        BLAS.gemm(dy.view(), weight.value.view(), transposeB: true, beta: 1, into: &dxSum)
    }
}

/// ID embedding table with row-sparse gradients.
///
/// forward:  ids (N) -> e (N, d)
/// backward: de (N, d) -> sparse rows of dTable, one per distinct id.
public struct Embedding: ParameterContainer {
    public let table: Parameter  // (vocabulary, d)

    public init(name: String, count: Int, dim: Int, std: Float = 0.05, rng: inout Xoshiro256StarStar) {
        table = Parameter(name: "\(name).table", value: .randomNormal(count, dim, std: std, using: &rng), sparse: true)
    }

    public init(table: Parameter) { self.table = table }

    public var count: Int { table.value.rows }
    public var dim: Int { table.value.cols }
    public var parameters: [Parameter] { [table] }

    public func forward(_ ids: [Int]) -> Matrix {
        table.value.gatherRows(ids)
    }

    public func backward(ids: [Int], de: Matrix) {
        precondition(de.rows == ids.count && de.cols == dim, "\(table.name): gradient shape mismatch")
        let d = dim
        de.storage.withUnsafeBufferPointer { g in
            for (i, id) in ids.enumerated() { table.sparseGrad.add(row: id, g.baseAddress! + i * d) }
        }
    }
}
