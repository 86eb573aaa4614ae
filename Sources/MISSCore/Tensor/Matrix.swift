import Foundation

/// A dense float32 matrix in row-major order.
///
/// Value semantics (copy-on-write through `Array`). Every heavy product goes through
/// BLAS (`BLAS.gemm`, `BLAS.gemv`); see `Matrix+Products.swift`.
public struct Matrix: Equatable, Sendable, CustomStringConvertible {
    public private(set) var rows: Int
    public private(set) var cols: Int
    /// Row-major storage, `rows * cols` elements; element (r, c) is at `r * cols + c`.
    /// Callers that assign it keep the count; element writes are the common use.
    public var storage: [Float]

    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && cols >= 0, "Matrix dimensions must be non-negative")
        self.rows = rows
        self.cols = cols
        self.storage = [Float](repeating: value, count: rows * cols)
    }

    public init(rows: Int, cols: Int, storage: [Float]) {
        precondition(rows >= 0 && cols >= 0, "Matrix dimensions must be non-negative")
        precondition(storage.count == rows * cols,
                     "Matrix(rows: \(rows), cols: \(cols)) needs \(rows * cols) values, got \(storage.count)")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// Builds a matrix from nested rows (tests and small literals).
    public init(_ nested: [[Float]]) {
        let r = nested.count
        let c = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == c }, "All rows must have the same length")
        self.init(rows: r, cols: c, storage: nested.flatMap { $0 })
    }

    public static func zeros(_ rows: Int, _ cols: Int) -> Matrix { Matrix(rows: rows, cols: cols) }

    /// Entries drawn from N(0, std²) with the project's own generator, so that a seed fixes them.
    public static func randomNormal(_ rows: Int, _ cols: Int, std: Float = 1, using rng: inout Xoshiro256StarStar) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        for i in 0..<m.storage.count { m.storage[i] = Float(rng.nextNormal()) * std }
        return m
    }

    /// Entries uniform in [low, high).
    public static func randomUniform(_ rows: Int, _ cols: Int, low: Float = -1, high: Float = 1,
                                     using rng: inout Xoshiro256StarStar) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        for i in 0..<m.storage.count { m.storage[i] = low + (high - low) * rng.nextFloat() }
        return m
    }

    /// Glorot/Xavier-uniform initialisation for a (fanIn, fanOut) weight.
    public static func glorot(_ fanIn: Int, _ fanOut: Int, using rng: inout Xoshiro256StarStar) -> Matrix {
        let limit = (6.0 / Float(max(1, fanIn + fanOut))).squareRoot()
        return randomUniform(fanIn, fanOut, low: -limit, high: limit, using: &rng)
    }

    @inlinable public var count: Int { rows * cols }
    @inlinable public var shape: [Int] { [rows, cols] }

    @inlinable public subscript(r: Int, c: Int) -> Float {
        get { storage[r * cols + c] }
        set { storage[r * cols + c] = newValue }
    }

    /// Row `r` as a slice of the storage (no copy).
    public func row(_ r: Int) -> ArraySlice<Float> { storage[(r * cols)..<((r + 1) * cols)] }

    public mutating func setRow(_ r: Int, _ values: some Collection<Float>) {
        precondition(values.count == cols, "setRow needs \(cols) values, got \(values.count)")
        precondition(r >= 0 && r < rows, "setRow: row \(r) outside 0..<\(rows)")
        let cols = self.cols
        storage.withUnsafeMutableBufferPointer { dst in
            let start = dst.baseAddress! + r * cols
            let copied: Void? = values.withContiguousStorageIfAvailable { src in start.update(from: src.baseAddress!, count: cols) }
            if copied == nil {
                var i = 0
                for v in values { start[i] = v; i += 1 }
            }
        }
    }

    /// Rows gathered by index into a new (indices.count, cols) matrix.
    public func gatherRows(_ indices: some Collection<Int>) -> Matrix {
        let n = indices.count, cols = self.cols, rows = self.rows
        // Every element is written: no zero fill first.
        let out = [Float](unsafeUninitializedCapacity: n * cols) { dst, initialized in
            storage.withUnsafeBufferPointer { src in
                var o = 0
                for i in indices {
                    precondition(i >= 0 && i < rows, "gatherRows: row \(i) out of 0..<\(rows)")
                    dst.baseAddress!.advanced(by: o).initialize(from: src.baseAddress!.advanced(by: i * cols), count: cols)
                    o += cols
                }
                precondition(o == n * cols, "gatherRows: the indices changed while they were read")
            }
            initialized = n * cols
        }
        return Matrix(rows: n, cols: cols, storage: out)
    }

    /// Copy of rows `range`.
    public func rows(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows(\(range)) out of 0..<\(rows)")
        return Matrix(rows: range.count, cols: cols, storage: Array(storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for r in 0..<rows { for c in 0..<cols { t.storage[c * rows + r] = storage[r * cols + c] } }
        return t
    }

    /// Reinterprets the same storage with another shape of equal size.
    public func reshaped(_ rows: Int, _ cols: Int) -> Matrix {
        precondition(rows * cols == count, "reshape \(self.rows)x\(self.cols) -> \(rows)x\(cols) changes the size")
        return Matrix(rows: rows, cols: cols, storage: storage)
    }

    /// Stacks matrices with equal column counts on top of each other.
    public static func vstack(_ parts: [Matrix]) -> Matrix {
        guard let first = parts.first else { return Matrix(rows: 0, cols: 0) }
        precondition(parts.allSatisfy { $0.cols == first.cols }, "vstack needs equal column counts")
        var storage = [Float]()
        storage.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for p in parts { storage.append(contentsOf: p.storage) }
        return Matrix(rows: parts.reduce(0) { $0 + $1.rows }, cols: first.cols, storage: storage)
    }

    /// Places matrices with equal row counts side by side.
    public static func hstack(_ parts: [Matrix]) -> Matrix {
        guard let first = parts.first else { return Matrix(rows: 0, cols: 0) }
        precondition(parts.allSatisfy { $0.rows == first.rows }, "hstack needs equal row counts")
        let total = parts.reduce(0) { $0 + $1.cols }
        let rows = first.rows
        let storage = [Float](unsafeUninitializedCapacity: rows * total) { o, initialized in
            var offset = 0
            for p in parts {
                let w = p.cols
                if w > 0 {
                    p.storage.withUnsafeBufferPointer { s in
                        for r in 0..<rows { (o.baseAddress! + r * total + offset).initialize(from: s.baseAddress! + r * w, count: w) }
                    }
                }
                offset += w
            }
            initialized = rows * total
        }
        return Matrix(rows: rows, cols: total, storage: storage)
    }

    /// Columns `range` copied into a new matrix (the inverse of `hstack`).
    public func columns(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= cols, "columns(\(range)) out of 0..<\(cols)")
        let w = range.count, c = cols
        var out = Matrix(rows: rows, cols: w)
        if w == 0 { return out }
        storage.withUnsafeBufferPointer { s in
            out.storage.withUnsafeMutableBufferPointer { o in
                for r in 0..<rows { (o.baseAddress! + r * w).update(from: s.baseAddress! + r * c + range.lowerBound, count: w) }
            }
        }
        return out
    }

    public var description: String {
        let shown = (0..<min(rows, 6)).map { r in
            "[" + row(r).prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
                + (cols > 8 ? ", …" : "") + "]"
        }
        return "Matrix(\(rows)x\(cols)) " + shown.joined(separator: " ") + (rows > 6 ? " …" : "")
    }
}
