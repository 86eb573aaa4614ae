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
            sparseGrad.add(other.sparseGrad)
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
    /// Per table row: its slot in `rowIndices` plus one, 0 while untouched. Grown on demand to the
    /// largest row seen; only the touched entries are reset (a dictionary cost a hash per added row).
    private var slotPlusOne: [Int32] = []

    public init(cols: Int) { self.cols = cols }

    /// Adds `g` (length cols) to the gradient of row `row`.
    public mutating func add(row: Int, _ g: ArraySlice<Float>) {
        precondition(g.count == cols, "sparse gradient row needs \(cols) values, got \(g.count)")
        g.withUnsafeBufferPointer { b in
            withUnsafePointer(to: Float(0)) { none in add(row: row, b.baseAddress ?? none) }   // none: cols 0
        }
    }

    /// Adds the `cols` floats at `g` to the gradient of row `row` (element by element, in place).
    public mutating func add(row: Int, _ g: UnsafePointer<Float>) {
        precondition(row >= 0 && row < Int(Int32.max), "sparse gradient row \(row) out of range")
        if row >= slotPlusOne.count {
            slotPlusOne.append(contentsOf: repeatElement(0, count: max(row + 1, 2 * slotPlusOne.count) - slotPlusOne.count))
        }
        var s = Int(slotPlusOne[row]) - 1
        if s < 0 {
            s = rowIndices.count
            slotPlusOne[row] = Int32(truncatingIfNeeded: s + 1)
            rowIndices.append(row)
            flat.append(contentsOf: repeatElement(0, count: cols))
        }
        let cols = self.cols
        // axpy with a = 1: 1 · g is g exactly, so each element is the plain y + g.
        flat.withUnsafeMutableBufferPointer { f in SingleThreadKernels.axpy(1, g, f.baseAddress! + s * cols, cols) }
    }

    /// Adds every row of `other` (in its first-touch order).
    public mutating func add(_ other: SparseRowGradient) {
        precondition(other.cols == cols, "sparse gradient rows of \(other.cols) values added to rows of \(cols)")
        other.flat.withUnsafeBufferPointer { f in
            withUnsafePointer(to: Float(0)) { none in
                for (i, row) in other.rowIndices.enumerated() { add(row: row, f.baseAddress.map { $0 + i * cols } ?? none) }
            }
        }
    }

    /// No rows; the storage is kept for the next batch (which touches about as many rows).
    public mutating func removeAll() {
        for row in rowIndices { slotPlusOne[row] = 0 }
        rowIndices.removeAll(keepingCapacity: true)
        flat.removeAll(keepingCapacity: true)
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
