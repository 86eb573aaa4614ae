/// A trainable tensor with its gradient.
///
/// A reference type on purpose: a layer, the optimizer and the checkpoint writer all refer to
/// the same weights. Names are unique within a model and are the keys of the safetensors file
/// and of the optimizer's state.
public final class Parameter {
    public let name: String
    public var value: Matrix
    /// Dense gradient, same shape as `value` (unused when `isSparse`).
    public var grad: Matrix
    /// Embedding tables get row-sparse gradients: only the rows a batch touched.
    public let isSparse: Bool
    public var sparseGrad: SparseRowGradient

    public init(name: String, value: Matrix, sparse: Bool = false) {
        self.name = name
        self.value = value
        self.isSparse = sparse
        self.grad = sparse ? Matrix(rows: 0, cols: 0) : Matrix(rows: value.rows, cols: value.cols)
        self.sparseGrad = SparseRowGradient(cols: value.cols)
    }

    /// A parameter with the same name and (copy-on-write shared) value and its own, zero gradient.
    public func replica() -> Parameter { Parameter(name: name, value: value, sparse: isSparse) }

    /// Adds another parameter's gradient to this one's (sparse rows in the other's first-touch order).
    public func accumulateGradient(from other: Parameter) {
        if isSparse {
            for (i, row) in other.sparseGrad.rowIndices.enumerated() { sparseGrad.add(row: row, other.sparseGrad.gradient(at: i)) }
        } else {
            grad.addScaled(other.grad)
        }
    }

    public func zeroGrad() {
        if isSparse { sparseGrad.removeAll() } else { grad.fill(0) }
    }

    /// The gradient as a dense matrix (sparse rows scattered into zeros); for tests and checks.
    public var denseGradient: Matrix {
        guard isSparse else { return grad }
        var g = Matrix(rows: value.rows, cols: value.cols)
        for (i, r) in sparseGrad.rowIndices.enumerated() {
            for (c, v) in sparseGrad.gradient(at: i).enumerated() { g[r, c] += v }
        }
        return g
    }
}

/// Gradient rows of an embedding table, accumulated per distinct row in first-touch order
/// (deterministic for a deterministic batch order).
public struct SparseRowGradient: Sendable {
    public let cols: Int
    public private(set) var rowIndices: [Int] = []
    /// Gradient of `rowIndices[i]` at `flat[i*cols ..< (i+1)*cols]`.
    public private(set) var flat: [Float] = []
    private var slot: [Int: Int] = [:]

    public init(cols: Int) { self.cols = cols }

    /// Adds `g` (length cols) to the gradient of row `row`.
    public mutating func add(row: Int, _ g: ArraySlice<Float>) {
        precondition(g.count == cols, "sparse gradient row needs \(cols) values, got \(g.count)")
        let s: Int
        if let existing = slot[row] {
            s = existing
        } else {
            s = rowIndices.count
            slot[row] = s
            rowIndices.append(row)
            flat.append(contentsOf: repeatElement(0, count: cols))
        }
        flat.withUnsafeMutableBufferPointer { f in
            var j = s * cols
            for v in g { f[j] += v; j += 1 }
        }
    }

    /// No rows; the storage is kept for the next batch (which touches about as many rows).
    public mutating func removeAll() {
        rowIndices.removeAll(keepingCapacity: true)
        flat.removeAll(keepingCapacity: true)
        slot.removeAll(keepingCapacity: true)
    }

    /// Gradient of the i-th touched row.
    public func gradient(at i: Int) -> ArraySlice<Float> { flat[(i * cols)..<((i + 1) * cols)] }

    public var values: Matrix { Matrix(rows: rowIndices.count, cols: cols, storage: flat) }

    public var isEmpty: Bool { rowIndices.isEmpty }

    public mutating func scale(_ s: Float) {
        for i in flat.indices { flat[i] *= s }
    }
}

/// Anything that owns parameters (layers, models) lists them for the optimizer and checkpoints.
public protocol ParameterContainer {
    var parameters: [Parameter] { get }
}

extension ParameterContainer {
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}
