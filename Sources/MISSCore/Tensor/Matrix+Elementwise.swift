/// Element-wise and reduction operations. These are memory-bound; the loops run over the raw
/// buffers so that release builds vectorise them.
extension Matrix {
    @inlinable
    public func map(_ f: (Float) -> Float) -> Matrix {
        Matrix(rows: rows, cols: cols, storage: storage.map(f))
    }

    /// Applies `f` pairwise; shapes must match.
    @inlinable
    public func zipMap(_ other: Matrix, _ f: (Float, Float) -> Float) -> Matrix {
        precondition(rows == other.rows && cols == other.cols,
                     "element-wise op on \(rows)x\(cols) and \(other.rows)x\(other.cols)")
        var out = self
        out.storage.withUnsafeMutableBufferPointer { o in
            other.storage.withUnsafeBufferPointer { b in
                for i in 0..<o.count { o[i] = f(o[i], b[i]) }
            }
        }
        return out
    }

    public static func + (a: Matrix, b: Matrix) -> Matrix { a.zipMap(b, +) }
    public static func - (a: Matrix, b: Matrix) -> Matrix { a.zipMap(b, -) }
    /// Hadamard product.
    public static func * (a: Matrix, b: Matrix) -> Matrix { a.zipMap(b, *) }
    public static func * (a: Matrix, s: Float) -> Matrix { a.map { $0 * s } }

    /// self += alpha · other (BLAS axpy).
    public mutating func addScaled(_ other: Matrix, _ alpha: Float = 1) {
        precondition(rows == other.rows && cols == other.cols,
                     "addScaled: \(rows)x\(cols) += \(other.rows)x\(other.cols)")
        BLAS.axpy(alpha, other.storage, &storage)
    }

    public mutating func scale(_ s: Float) {
        storage.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= s } }
    }

    public mutating func fill(_ v: Float) {
        storage.withUnsafeMutableBufferPointer { p in p.update(repeating: v) }
    }

    /// Adds `bias` (length cols) to every row.
    public mutating func addRowVector(_ bias: [Float]) {
        precondition(bias.count == cols, "addRowVector: bias has \(bias.count) values, needs \(cols)")
        let c = cols
        storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows { for j in 0..<c { p[r * c + j] += bias[j] } }
        }
    }

    /// Sum over rows: a vector of length cols.
    public func columnSums() -> [Float] {
        var out = [Float](repeating: 0, count: cols)
        let c = cols
        if rows == 0 || cols == 0 { return out }
        storage.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                // Row after row, 8 columns at a time: the same sums as a plain loop.
                SingleThreadKernels.gemvTransposed(rows: rows, cols: c, p.baseAddress!, lda: c, nil, o.baseAddress!)
            }
        }
        return out
    }

    /// Sum over columns: a vector of length rows.
    public func rowSums() -> [Float] {
        var out = [Float](repeating: 0, count: rows)
        let c = cols
        storage.withUnsafeBufferPointer { p in
            for r in 0..<rows {
                var s: Float = 0
                for j in 0..<c { s += p[r * c + j] }
                out[r] = s
            }
        }
        return out
    }

    /// Row-wise dot products of two equally shaped matrices: out[r] = Σ_c a[r,c]·b[r,c].
    public func rowDots(_ other: Matrix) -> [Float] {
        precondition(rows == other.rows && cols == other.cols, "rowDots: shapes differ")
        var out = [Float](repeating: 0, count: rows)
        let c = cols
        storage.withUnsafeBufferPointer { a in
            other.storage.withUnsafeBufferPointer { b in
                // Four rows at a time: four independent chains of additions instead of one (each row's
                // sum is still taken in column order, so the values are those of the one-row loop).
                var r = 0
                while r + 4 <= rows {
                    let a0 = a.baseAddress! + r * c, b0 = b.baseAddress! + r * c
                    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
                    for j in 0..<c {
                        s0 += a0[j] * b0[j]
                        s1 += a0[c + j] * b0[c + j]
                        s2 += a0[2 * c + j] * b0[2 * c + j]
                        s3 += a0[3 * c + j] * b0[3 * c + j]
                    }
                    out[r] = s0; out[r + 1] = s1; out[r + 2] = s2; out[r + 3] = s3
                    r += 4
                }
                while r < rows {
                    var s: Float = 0
                    for j in 0..<c { s += a[r * c + j] * b[r * c + j] }
                    out[r] = s
                    r += 1
                }
            }
        }
        return out
    }

    /// Scales every row r by s[r].
    public func scalingRows(by s: [Float]) -> Matrix {
        precondition(s.count == rows, "scalingRows: \(s.count) factors for \(rows) rows")
        var out = self
        let c = cols
        out.storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows { for j in 0..<c { p[r * c + j] *= s[r] } }
        }
        return out
    }

    /// Each row divided by its L2 norm (rows of zeros stay zero).
    public func l2NormalizedRows() -> Matrix {
        var out = self
        let c = cols
        out.storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                var s: Float = 0
                for j in 0..<c { s += p[r * c + j] * p[r * c + j] }
                let inv: Float = s > 0 ? 1 / s.squareRoot() : 0
                for j in 0..<c { p[r * c + j] *= inv }
            }
        }
        return out
    }

    public func sum() -> Double { storage.reduce(0) { $0 + Double($1) } }

    public var maxAbs: Float { storage.reduce(0) { max($0, abs($1)) } }

    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }
}
