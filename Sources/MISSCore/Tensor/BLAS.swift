import Foundation
import CBLAS

/// A strided, read-only window onto a `Matrix`: rows `rowOffset..<rowOffset+rows`,
/// columns `colOffset..<colOffset+cols`, leading dimension = the base matrix's column count.
/// Holding the base keeps its storage alive without copying it.
public struct MatrixView: Sendable {
    public let base: Matrix
    public let rowOffset: Int
    public let colOffset: Int
    public let rows: Int
    public let cols: Int

    public init(_ base: Matrix, rows: Range<Int>? = nil, cols: Range<Int>? = nil) {
        let r = rows ?? 0..<base.rows
        let c = cols ?? 0..<base.cols
        precondition(r.lowerBound >= 0 && r.upperBound <= base.rows, "view rows \(r) out of 0..<\(base.rows)")
        precondition(c.lowerBound >= 0 && c.upperBound <= base.cols, "view cols \(c) out of 0..<\(base.cols)")
        self.base = base
        self.rowOffset = r.lowerBound
        self.colOffset = c.lowerBound
        self.rows = r.count
        self.cols = c.count
    }

    /// Leading dimension (distance between consecutive rows in the base storage).
    public var ld: Int { max(1, base.cols) }

    /// The view's elements copied into a compact matrix.
    public func materialize() -> Matrix {
        var out = Matrix(rows: rows, cols: cols)
        for r in 0..<rows {
            for c in 0..<cols { out[r, c] = base[rowOffset + r, colOffset + c] }
        }
        return out
    }
}

extension Matrix {
    public func view(rows: Range<Int>? = nil, cols: Range<Int>? = nil) -> MatrixView {
        MatrixView(self, rows: rows, cols: cols)
    }
}

/// Thin, checked wrappers over CBLAS. Shapes are validated here so that a wrong shape is a
/// readable precondition failure instead of memory corruption inside BLAS.
public enum BLAS {
    /// OpenBLAS runs single-threaded in this process: every call site below makes sure of it first. OpenBLAS
    /// rounds a product differently with 1 and 2 threads (measured: `miss embed` on SampleData writes other
    /// embeddings), and its thread count is process-global, so one part of a process that changed it would
    /// change another part's numbers (the test suite saw this: a training test changed it while the item
    /// alignment's determinism test ran). The heavy paths parallelise over their own work instead (training
    /// instances, the GSU rows, the estimator head's row blocks, the tree's nodes); on this project's shapes
    /// the second BLAS thread bought little: `miss embed` 5.2 s with it, 4.8 s without; SASRec's 1000 steps
    /// 7.1 s and 7.4 s. Only the SGEMM peak measurement (`GemmPeak`) sets another count, and restores it.
    private static let singleThreadedByDefault: Void = { openblas_set_num_threads(1) }()

    @inline(__always) static func ready() { _ = singleThreadedByDefault }

    /// Number of threads OpenBLAS uses for the following calls.
    public static var threads: Int {
        ready()
        return Int(openblas_get_num_threads())
    }

    /// For measurements of the machine only (see the type's note): restore the count afterwards.
    public static func setThreads(_ n: Int) {
        ready()
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// C[rowOffset..., colOffset...] (m×n) = alpha · op(A) · op(B) + beta · C-region,
    /// where op(X) = Xᵀ when the flag is set. m, n, k follow from the operands.
    /// `c` may be larger than the product: the result lands in the region at (cRow, cCol) with ldc = c.cols.
    public static func gemm(_ a: MatrixView, transposeA: Bool = false,
                            _ b: MatrixView, transposeB: Bool = false,
                            alpha: Float = 1, beta: Float = 0,
                            into c: inout Matrix, cRow: Int = 0, cCol: Int = 0) {
        let m = transposeA ? a.cols : a.rows
        let k = transposeA ? a.rows : a.cols
        let kb = transposeB ? b.cols : b.rows
        let n = transposeB ? b.rows : b.cols
        precondition(k == kb, "gemm: inner dimensions differ (\(m)x\(k) · \(kb)x\(n))")
        precondition(cRow >= 0 && cCol >= 0 && cRow + m <= c.rows && cCol + n <= c.cols,
                     "gemm: result \(m)x\(n) at (\(cRow),\(cCol)) does not fit in \(c.rows)x\(c.cols)")
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C scaled by beta when k == 0; do the same explicitly.
            for r in 0..<m { for col in 0..<n { c[cRow + r, cCol + col] *= beta } }
            return
        }
        let ldc = Int32(max(1, c.cols))
        a.base.storage.withUnsafeBufferPointer { ap in
            b.base.storage.withUnsafeBufferPointer { bp in
                c.storage.withUnsafeMutableBufferPointer { cp in
                    ready()
                    cblas_sgemm(CblasRowMajor,
                                transposeA ? CblasTrans : CblasNoTrans,
                                transposeB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), alpha,
                                ap.baseAddress! + a.rowOffset * a.ld + a.colOffset, Int32(a.ld),
                                bp.baseAddress! + b.rowOffset * b.ld + b.colOffset, Int32(b.ld),
                                beta,
                                cp.baseAddress! + cRow * c.cols + cCol, ldc)
                }
            }
        }
    }

    /// y = alpha · op(A) · x + beta · y.
    public static func gemv(_ a: MatrixView, transpose: Bool = false, _ x: [Float],
                            alpha: Float = 1, beta: Float = 0, into y: inout [Float]) {
        let outLen = transpose ? a.cols : a.rows
        let inLen = transpose ? a.rows : a.cols
        precondition(x.count == inLen, "gemv: x has \(x.count) values, needs \(inLen)")
        precondition(y.count == outLen, "gemv: y has \(y.count) values, needs \(outLen)")
        if outLen == 0 { return }
        if inLen == 0 { for i in 0..<outLen { y[i] *= beta }; return }
        a.base.storage.withUnsafeBufferPointer { ap in
            ready()
            cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans,
                        Int32(a.rows), Int32(a.cols), alpha,
                        ap.baseAddress! + a.rowOffset * a.ld + a.colOffset, Int32(a.ld),
                        x, 1, beta, &y, 1)
        }
    }

    /// y += alpha · x.
    public static func axpy(_ alpha: Float, _ x: [Float], _ y: inout [Float]) {
        precondition(x.count == y.count, "axpy: lengths differ (\(x.count) vs \(y.count))")
        if x.isEmpty { return }
        ready()
        cblas_saxpy(Int32(x.count), alpha, x, 1, &y, 1)
    }

    public static func dot(_ x: [Float], _ y: [Float]) -> Float {
        precondition(x.count == y.count, "dot: lengths differ (\(x.count) vs \(y.count))")
        if x.isEmpty { return 0 }
        ready()
        return cblas_sdot(Int32(x.count), x, 1, y, 1)
    }
}

/// Products as values. `matmul(a, b)` = a·b; the flags transpose an operand without copying it.
public func matmul(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false) -> Matrix {
    var c = Matrix(rows: transposeA ? a.cols : a.rows, cols: transposeB ? b.rows : b.cols)
    BLAS.gemm(a.view(), transposeA: transposeA, b.view(), transposeB: transposeB, into: &c)
    return c
}

/// Batched products over stacked operands: `a` holds `batch` blocks of (m, k) rows, `b` holds
/// `batch` blocks of (k, n) (or (n, k) with `transposeB`); the result stacks `batch` blocks of (m, n).
/// One BLAS call per block, all on views of the same storage.
public func batchedMatmul(_ a: Matrix, _ b: Matrix, batch: Int, transposeB: Bool = false) -> Matrix {
    precondition(batch > 0 && a.rows % batch == 0 && b.rows % batch == 0,
                 "batchedMatmul: \(a.rows) and \(b.rows) rows do not split into \(batch) blocks")
    let m = a.rows / batch
    let bRows = b.rows / batch
    let n = transposeB ? bRows : b.cols
    var c = Matrix(rows: batch * m, cols: n)
    for i in 0..<batch {
        BLAS.gemm(a.view(rows: (i * m)..<((i + 1) * m)),
                  b.view(rows: (i * bRows)..<((i + 1) * bRows)), transposeB: transposeB,
                  into: &c, cRow: i * m)
    }
    return c
}

extension BLAS {
    /// Pointer-level products for hot paths that work on raw row-major buffers (tree building,
    /// beam search). Callers keep the pointers valid for the call; shapes are checked by the caller.
    public enum Unsafe {
        /// y (m) = alpha · A (m×n, lda) · x (n) + beta · y, or with `transpose` y (n) = alpha · Aᵀ · x (m) + beta · y.
        public static func gemv(transpose: Bool = false, rows m: Int, cols n: Int, alpha: Float = 1,
                                _ a: UnsafePointer<Float>, lda: Int, _ x: UnsafePointer<Float>,
                                beta: Float = 0, _ y: UnsafeMutablePointer<Float>) {
            if m == 0 || n == 0 { return }
            ready()
            cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha,
                        a, Int32(lda), x, 1, beta, y, 1)
        }

        /// C (m×n, ldc) = alpha · op(A) · op(B) + beta · C.
        public static func gemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                                alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
                                _ b: UnsafePointer<Float>, ldb: Int,
                                beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
            if m == 0 || n == 0 || k == 0 { return }
            ready()
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }
}

/// C = A·B summed in a fixed order in Double: bit-identical on every CPU, where OpenBLAS picks a kernel per
/// microarchitecture and rounds differently. For small products whose bytes are committed or compared
/// across machines (the synthetic world behind SampleData); everything else uses `matmul`.
public func deterministicMatmul(_ a: Matrix, _ b: Matrix) -> Matrix {
    precondition(a.cols == b.rows, "deterministicMatmul: \(a.rows)×\(a.cols) · \(b.rows)×\(b.cols)")
    var c = Matrix(rows: a.rows, cols: b.cols)
    for i in 0..<a.rows {
        for j in 0..<b.cols {
            var s = 0.0
            for p in 0..<a.cols { s += Double(a[i, p]) * Double(b[p, j]) }
            c[i, j] = Float(s)
        }
    }
    return c
}
