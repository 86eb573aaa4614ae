/// C += Aᵀ·B for A (K, M) and B (K, N), both row-major, C (M, N): the weight gradients of the training's
/// layers (inputs ᵀ · output gradients), where K (behaviours or nodes) is long and M, N (layer widths) small.
///
/// On the projections' shapes (32 × 32 outputs over a history of a thousand or more rows, or over a few
/// hundred nodes) OpenBLAS ran at 72–78 GFLOP/s on one thread, partly in packing both operands; this runs at
/// ≈ 93 (a quiet minute). Nothing is packed: the rows of A and B are taken in chunks that stay in L1 (64
/// rows at 32 + 64 columns), and each 4 × 16 tile of C is held in eight 8-lane registers while a chunk's
/// rows pass (per row: two loads of B, four broadcasts of A, eight fused multiply-adds). Every entry of C is
/// one fused multiply-add chain over k in order, starting from its value in C: the same value whatever the
/// tile or chunk, on every run.
public enum TransposedProduct {
    /// Rows of A and B per pass over the tiles: as many as fit in 24 KB (64 rows of 32 + 64 floats), 16 to 256.
    @inline(__always) static func chunk(m: Int, n: Int) -> Int { max(16, min(256, 6144 / max(1, m + n))) }

    /// c (m × n, leading dimension ldc) += aᵀ·b for a (k × m, leading dimension lda) and b (k × n, leading
    /// dimension ldb), row-major: b and c may be column blocks of wider matrices.
    public static func accumulate(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, k: Int, m: Int, n: Int,
                                  into c: UnsafeMutablePointer<Float>, ldc: Int) {
        let main = n / 8 * 8   // columns in 8-lane tiles; the rest (< 8) in tiles that run along m
        let chunk = Self.chunk(m: m, n: n)
        var k0 = 0
        while k0 < k {
            let kc = min(chunk, k - k0), ak = a + k0 * lda, bk = b + k0 * ldb
            var m0 = 0
            while m0 + 4 <= m {
                var n0 = 0
                while n0 + 16 <= main { tile4x16(ak, lda, bk, ldb, kc, m0, n0, c, ldc); n0 += 16 }
                if n0 < main { tile4x8(ak, lda, bk, ldb, kc, m0, n0, c, ldc) }
                m0 += 4
            }
            while m0 < m {
                for n0 in stride(from: 0, to: main, by: 8) { row8(ak, lda, bk, ldb, kc, m0, n0, c, ldc) }
                m0 += 1
            }
            var j0 = main
            while j0 < n {
                let cols = min(4, n - j0)
                var i0 = 0
                while i0 + 8 <= m { columns8(ak, lda, bk, ldb, kc, i0, j0, cols, c, ldc); i0 += 8 }
                while i0 < m {
                    for j in j0..<(j0 + cols) { entry(ak, lda, bk, ldb, kc, i0, j, c, ldc) }
                    i0 += 1
                }
                j0 += cols
            }
            k0 += kc
        }
    }

    /// C (a.cols × b.cols) += aᵀ·b.
    public static func accumulate(_ a: Matrix, _ b: Matrix, into c: inout Matrix) {
        accumulate(a, b, columns: 0..<b.cols, into: &c)
    }

    /// C (a.cols × columns.count) += aᵀ·b[:, columns]: one layer's block of output gradients side by side.
    public static func accumulate(_ a: Matrix, _ b: Matrix, columns: Range<Int>, into c: inout Matrix) {
        precondition(a.rows == b.rows, "TransposedProduct: aᵀ·b needs equal row counts, got \(a.rows) and \(b.rows)")
        precondition(columns.lowerBound >= 0 && columns.upperBound <= b.cols, "TransposedProduct: columns \(columns) of \(b.cols)")
        precondition(c.rows == a.cols && c.cols == columns.count, "TransposedProduct: C is \(c.rows)×\(c.cols), aᵀ·b \(a.cols)×\(columns.count)")
        if a.rows == 0 || a.cols == 0 || columns.isEmpty { return }
        a.storage.withUnsafeBufferPointer { ab in
            b.storage.withUnsafeBufferPointer { bb in
                c.storage.withUnsafeMutableBufferPointer { cb in
                    accumulate(ab.baseAddress!, lda: a.cols, bb.baseAddress! + columns.lowerBound, ldb: b.cols, k: a.rows, m: a.cols,
                               n: columns.count, into: cb.baseAddress!, ldc: c.cols)
                }
            }
        }
    }

    /// aᵀ·b as a new matrix (a.cols × b.cols).
    public static func product(_ a: Matrix, _ b: Matrix) -> Matrix {
        var c = Matrix(rows: a.cols, cols: b.cols)
        accumulate(a, b, into: &c)
        return c
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ x: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD8<Float>.self)
    }

    /// C[m0..<m0+4, n0..<n0+16] over kc rows.
    @inline(__always) static func tile4x16(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ kc: Int,
                                           _ m0: Int, _ n0: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let c0 = c + m0 * ldc + n0, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc
        var x00 = load(c0), x01 = load(c0 + 8), x10 = load(c1), x11 = load(c1 + 8)
        var x20 = load(c2), x21 = load(c2 + 8), x30 = load(c3), x31 = load(c3 + 8)
        var ap = a + m0, bp = b + n0
        for _ in 0..<kc {
            let b0 = load(bp), b1 = load(bp + 8)
            var s = SIMD8<Float>(repeating: ap[0]); x00.addProduct(s, b0); x01.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[1]); x10.addProduct(s, b0); x11.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[2]); x20.addProduct(s, b0); x21.addProduct(s, b1)
            s = SIMD8<Float>(repeating: ap[3]); x30.addProduct(s, b0); x31.addProduct(s, b1)
            ap += lda
            bp += ldb
        }
        store(x00, c0); store(x01, c0 + 8); store(x10, c1); store(x11, c1 + 8)
        store(x20, c2); store(x21, c2 + 8); store(x30, c3); store(x31, c3 + 8)
    }

    /// C[m0..<m0+4, n0..<n0+8] over kc rows.
    @inline(__always) static func tile4x8(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ kc: Int,
                                          _ m0: Int, _ n0: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let c0 = c + m0 * ldc + n0, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc
        var x0 = load(c0), x1 = load(c1), x2 = load(c2), x3 = load(c3)
        var ap = a + m0, bp = b + n0
        for _ in 0..<kc {
            let b0 = load(bp)
            x0.addProduct(SIMD8<Float>(repeating: ap[0]), b0)
            x1.addProduct(SIMD8<Float>(repeating: ap[1]), b0)
            x2.addProduct(SIMD8<Float>(repeating: ap[2]), b0)
            x3.addProduct(SIMD8<Float>(repeating: ap[3]), b0)
            ap += lda
            bp += ldb
        }
        store(x0, c0); store(x1, c1); store(x2, c2); store(x3, c3)
    }

    /// C[i, n0..<n0+8] over kc rows (the last m mod 4 rows).
    @inline(__always) static func row8(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ kc: Int,
                                       _ i: Int, _ n0: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let ci = c + i * ldc + n0
        var x = load(ci)
        var ap = a + i, bp = b + n0
        for _ in 0..<kc {
            x.addProduct(SIMD8<Float>(repeating: ap[0]), load(bp))
            ap += lda
            bp += ldb
        }
        store(x, ci)
    }

    /// C[i0..<i0+8, j0..<j0+cols] (cols 1…4, the last n mod 8 columns) over kc rows, 8 rows of C in the lanes:
    /// A's row k holds them side by side, B's entry is broadcast. Four columns at once (a missing one repeats
    /// the last: the same chain, the same value, stored twice).
    @inline(__always) static func columns8(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ kc: Int,
                                           _ i0: Int, _ j0: Int, _ cols: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let j1 = j0 + min(1, cols - 1), j2 = j0 + min(2, cols - 1), j3 = j0 + min(3, cols - 1)
        var x0 = SIMD8<Float>(), x1 = SIMD8<Float>(), x2 = SIMD8<Float>(), x3 = SIMD8<Float>()
        for l in 0..<8 {
            let row = c + (i0 + l) * ldc
            x0[l] = row[j0]; x1[l] = row[j1]; x2[l] = row[j2]; x3[l] = row[j3]
        }
        var ap = a + i0, bp = b
        for _ in 0..<kc {
            let av = load(ap)
            x0.addProduct(av, SIMD8<Float>(repeating: bp[j0]))
            x1.addProduct(av, SIMD8<Float>(repeating: bp[j1]))
            x2.addProduct(av, SIMD8<Float>(repeating: bp[j2]))
            x3.addProduct(av, SIMD8<Float>(repeating: bp[j3]))
            ap += lda
            bp += ldb
        }
        for l in 0..<8 {
            let row = c + (i0 + l) * ldc
            row[j0] = x0[l]; row[j1] = x1[l]; row[j2] = x2[l]; row[j3] = x3[l]
        }
    }

    /// C[i, j] over kc rows: the same fused multiply-add chain in one lane.
    @inline(__always) static func entry(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ kc: Int,
                                        _ i: Int, _ j: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        var x = c[i * ldc + j]
        var ap = a + i, bp = b + j
        for _ in 0..<kc {
            x = x.addingProduct(ap[0], bp[0])
            ap += lda
            bp += ldb
        }
        c[i * ldc + j] = x
    }
}
