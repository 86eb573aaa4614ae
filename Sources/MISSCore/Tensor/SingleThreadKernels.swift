/// Single-threaded, SIMD matrix–vector kernels for code that is already parallel over its own
/// work items (e.g. the tree builder's splits). OpenBLAS's thread count is process-global, so such
/// code must not change it; and calling multi-threaded BLAS from several workers at once makes its
/// threads fight. These loops are memory-bound like gemv itself, so they lose little to BLAS.
public enum SingleThreadKernels {
    /// y[i] = Σ_j a[i·lda + j] · x[j] for i < rows (a row-major, x length cols).
    public static func gemv(rows: Int, cols: Int, _ a: UnsafePointer<Float>, lda: Int,
                            _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let vec = cols / 8 * 8
        for i in 0..<rows {
            let row = a + i * lda
            var acc = SIMD8<Float>.zero
            var j = 0
            while j < vec {
                acc += UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
                    * UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
                j += 8
            }
            var s = acc.sum()
            while j < cols { s += row[j] * x[j]; j += 1 }
            y[i] = s
        }
    }

    /// y[j] = Σ_i w[i] · a[i·lda + j] for j < cols (Aᵀ·w), or the plain column sums when w is nil.
    public static func gemvTransposed(rows: Int, cols: Int, _ a: UnsafePointer<Float>, lda: Int,
                                      _ w: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>) {
        y.update(repeating: 0, count: cols)
        for i in 0..<rows {
            let wi = w?[i] ?? 1
            if wi == 0 { continue }
            axpy(wi, a + i * lda, y, cols)
        }
    }

    /// y[j] += a · x[j] for j < n, 8 lanes at a time. Each element is the same multiply then add as the
    /// plain loop (no fused multiply-add, no reordering), so the result is bit-identical to it; the plain
    /// loop over three pointers does not vectorize because the compiler cannot rule out aliasing.
    @inlinable @inline(__always)
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var j = 0
        let av = SIMD8<Float>(repeating: a)
        while j + 8 <= n {
            let cur = UnsafeRawPointer(y + j).loadUnaligned(as: SIMD8<Float>.self)
            let add = av * UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + j).storeBytes(of: cur + add, as: SIMD8<Float>.self)
            j += 8
        }
        while j < n { y[j] += a * x[j]; j += 1 }
    }
}
