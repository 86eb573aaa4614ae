/// A GSU's keys (L, d) laid out for `RelevanceKernel`: panels of 16 keys, each holding for every
/// component j the 16 keys' j-th values (64 bytes), so that the kernel reads a panel front to back with
/// two 8-lane loads per component. The last panel is padded with zero keys. Built once per user request
/// (an L·d copy), then every candidate node's relevances read it: no per-call packing as in a BLAS GEMM.
public struct PackedKeys: Sendable {
    /// Keys (L) and their width (d).
    public let count: Int
    public let dim: Int
    /// Panels of 16; `paddedCount` = 16 · panels products per query row.
    public let panels: Int
    let storage: [Float]

    public static let panelWidth = 16

    public var paddedCount: Int { panels * Self.panelWidth }

    /// The columns of `w` (d, L) as the keys: a layer's weights (inputs, outputs), so that the kernel's
    /// products are x·W. Row j of `w` holds component j of every key, so a panel copies 16 floats at a time.
    public init(columnsOf w: Matrix) { self.init(columnsOf: [w]) }

    /// The columns of `parts` side by side (equal row counts) as the keys: the same as packing their
    /// `Matrix.hstack`, without building it (several layers' weights whose products one pass computes).
    public init(columnsOf parts: [Matrix]) {
        let d = parts.first?.rows ?? 0
        precondition(parts.allSatisfy { $0.rows == d }, "PackedKeys: parts with unequal row counts")
        var starts = [0]
        for m in parts { starts.append(starts.last! + m.cols) }
        let l = starts.last!, bounds = starts
        self.init(count: l, dim: d) { p, j, o in
            let first = p * Self.panelWidth, end = min(first + Self.panelWidth, l)
            var part = 0
            var c = first
            while c < end {
                while bounds[part + 1] <= c { part += 1 }
                let m = parts[part], run = min(end, bounds[part + 1]) - c
                m.storage.withUnsafeBufferPointer { k in (o + c - first).update(from: k.baseAddress! + j * m.cols + c - bounds[part], count: run) }
                c += run
            }
            if end - first < Self.panelWidth { (o + end - first).initialize(repeating: 0, count: Self.panelWidth - (end - first)) }
        }
    }

    /// The rows of `keys` (L, d) as the keys: key by key, each row scattered into its panel's lane (the
    /// panel, d · 64 bytes, stays in L1 while its 16 rows are read).
    public init(_ keys: Matrix) { self.init(rowsOf: keys, at: nil) }

    /// Rows `indices` of `table` as the keys, in that order: the same as packing `table.gatherRows(indices)`,
    /// without building it (a user's frozen MM embeddings: one copy instead of two).
    public init(rowsOf table: Matrix, at indices: [Int]) { self.init(rowsOf: table, at: Optional(indices)) }

    private init(rowsOf keys: Matrix, at indices: [Int]?) {
        let l = indices?.count ?? keys.rows, d = keys.cols, w = Self.panelWidth
        if let indices { for i in indices { precondition(i >= 0 && i < keys.rows, "PackedKeys: row \(i) out of 0..<\(keys.rows)") } }
        count = l
        dim = d
        panels = (l + w - 1) / w
        let panels = self.panels
        storage = [Float](unsafeUninitializedCapacity: max(1, panels * d * w)) { out, initialized in
            keys.storage.withUnsafeBufferPointer { kb in
                for p in 0..<panels {
                    let panel = out.baseAddress! + p * d * w
                    let real = min(w, l - p * w)
                    for t in 0..<real {
                        let row = kb.baseAddress! + (indices?[p * w + t] ?? (p * w + t)) * d
                        for j in 0..<d { (panel + j * w + t).initialize(to: row[j]) }
                    }
                    for t in real..<w { for j in 0..<d { (panel + j * w + t).initialize(to: 0) } }
                }
            }
            initialized = panels * d * w
        }
    }

    /// `fill(p, j, o)` writes component j of panel p's 16 keys (zeros past the last key) to `o`.
    private init(count l: Int, dim d: Int, fill: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let w = Self.panelWidth
        count = l
        dim = d
        panels = (l + w - 1) / w
        let panels = self.panels
        storage = [Float](unsafeUninitializedCapacity: max(1, panels * d * w)) { out, initialized in
            for p in 0..<panels { for j in 0..<d { fill(p, j, out.baseAddress! + (p * d + j) * w) } }
            initialized = panels * d * w
        }
    }
}

/// Products of query rows with packed keys, scaled: out[r·ldc + l] = (Σ_j q[r·d + j]·K[l, j]) · scale for
/// every key l < `paddedCount` (padding keys give 0). Each sum is one fused multiply-add chain over j in
/// order, so a product has the same value whatever the block of rows, the tile or the thread computing it.
/// Register tiles of 6 rows × 16 keys (12 eight-lane accumulators), a panel outer loop so that the panel
/// and the block's queries stay in L1; about the SGEMM peak on AVX2/FMA.
public enum RelevanceKernel {
    public static func products(_ q: UnsafePointer<Float>, rows: Int, keys: PackedKeys, scale: Float,
                                into out: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(ldc >= keys.paddedCount, "RelevanceKernel: ldc \(ldc) < \(keys.paddedCount)")
        let d = keys.dim
        keys.storage.withUnsafeBufferPointer { kb in
            let k = kb.baseAddress!
            for p in 0..<keys.panels {
                let panel = UnsafeRawPointer(k + p * d * PackedKeys.panelWidth)
                let column = out + p * PackedKeys.panelWidth
                var r = 0
                while r + 6 <= rows {
                    sixRows(q + r * d, d, panel, column + r * ldc, ldc, scale)
                    r += 6
                }
                while r < rows {
                    oneRow(q + r * d, d, panel, column + r * ldc, scale)
                    r += 1
                }
            }
        }
    }

    /// x·W (N, out) for x (N, in) and W (in, out), every entry one fused multiply-add chain over the inputs
    /// in order: a row's values do not depend on the other rows, on how the rows are split into calls or on
    /// the thread (BLAS rounds a row differently depending on its blocking). W's columns are packed as the
    /// keys (one copy of W), then blocks of 48 rows stay in cache while every panel passes over them; with
    /// `workers` > 1 the blocks are shared out over that many threads (the same values).
    public static func rowwiseProduct(_ x: Matrix, _ w: Matrix, workers: Int = 1) -> Matrix {
        precondition(x.cols == w.rows, "rowwiseProduct: x has \(x.cols) columns, W has \(w.rows) rows")
        return rowwiseProduct(x, PackedKeys(columnsOf: w), workers: workers)
    }

    /// x·W for W already packed by `PackedKeys(columnsOf:)`: (rows.count, keys.count) for the rows `rows`
    /// of x (all of them by default).
    public static func rowwiseProduct(_ x: Matrix, _ keys: PackedKeys, rows: Range<Int>? = nil, workers: Int = 1) -> Matrix {
        precondition(x.cols == keys.dim, "rowwiseProduct: x has \(x.cols) columns, the packed W \(keys.dim) rows")
        let range = rows ?? 0..<x.rows
        precondition(range.lowerBound >= 0 && range.upperBound <= x.rows, "rowwiseProduct: rows \(range) of \(x.rows)")
        let n = range.count, o = keys.count, d = keys.dim, ldc = keys.paddedCount
        if n == 0 || o == 0 { return Matrix(rows: n, cols: o) }
        // Every element is written by the kernel: no zero fill first.
        let y = [Float](unsafeUninitializedCapacity: n * o) { yb, initialized in
            x.storage.withUnsafeBufferPointer { xb in
                let x = RowSink(UnsafeMutablePointer(mutating: xb.baseAddress! + range.lowerBound * d)), y = RowSink(yb.baseAddress!)
                parallelBlocks(n, block: 48, workers: workers) { block in
                    let q = x.base + block.lowerBound * d, out = y.base + block.lowerBound * o
                    if ldc == o {
                        products(q, rows: block.count, keys: keys, scale: 1, into: out, ldc: o)
                        return
                    }
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: block.count * ldc) { scratch in
                        products(q, rows: block.count, keys: keys, scale: 1, into: scratch.baseAddress!, ldc: ldc)
                        for r in 0..<block.count { (out + r * o).update(from: scratch.baseAddress! + r * ldc, count: o) }
                    }
                }
            }
            initialized = n * o
        }
        return Matrix(rows: n, cols: o, storage: y)
    }

    @inline(__always) static func store(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ o: UnsafeMutablePointer<Float>, _ scale: Float) {
        let raw = UnsafeMutableRawPointer(o)
        if scale == 1 {
            raw.storeBytes(of: a, as: SIMD8<Float>.self)
            raw.storeBytes(of: b, toByteOffset: 32, as: SIMD8<Float>.self)
        } else {
            raw.storeBytes(of: a * scale, as: SIMD8<Float>.self)
            raw.storeBytes(of: b * scale, toByteOffset: 32, as: SIMD8<Float>.self)
        }
    }

    @inline(__always) static func sixRows(_ q: UnsafePointer<Float>, _ d: Int, _ panel: UnsafeRawPointer,
                                          _ o: UnsafeMutablePointer<Float>, _ ldc: Int, _ scale: Float) {
        var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
        var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
        var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
        var kp = panel
        var qj = q
        for _ in 0..<d {
            let k0 = kp.load(as: SIMD8<Float>.self), k1 = kp.load(fromByteOffset: 32, as: SIMD8<Float>.self)
            kp += 64
            var b = SIMD8<Float>(repeating: qj[0]); a00.addProduct(b, k0); a01.addProduct(b, k1)
            b = SIMD8<Float>(repeating: qj[d]); a10.addProduct(b, k0); a11.addProduct(b, k1)
            b = SIMD8<Float>(repeating: qj[2 * d]); a20.addProduct(b, k0); a21.addProduct(b, k1)
            b = SIMD8<Float>(repeating: qj[3 * d]); a30.addProduct(b, k0); a31.addProduct(b, k1)
            b = SIMD8<Float>(repeating: qj[4 * d]); a40.addProduct(b, k0); a41.addProduct(b, k1)
            b = SIMD8<Float>(repeating: qj[5 * d]); a50.addProduct(b, k0); a51.addProduct(b, k1)
            qj += 1
        }
        store(a00, a01, o, scale)
        store(a10, a11, o + ldc, scale)
        store(a20, a21, o + 2 * ldc, scale)
        store(a30, a31, o + 3 * ldc, scale)
        store(a40, a41, o + 4 * ldc, scale)
        store(a50, a51, o + 5 * ldc, scale)
    }

    @inline(__always) static func oneRow(_ q: UnsafePointer<Float>, _ d: Int, _ panel: UnsafeRawPointer,
                                         _ o: UnsafeMutablePointer<Float>, _ scale: Float) {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var kp = panel
        for j in 0..<d {
            let b = SIMD8<Float>(repeating: q[j])
            a0.addProduct(b, kp.load(as: SIMD8<Float>.self))
            a1.addProduct(b, kp.load(fromByteOffset: 32, as: SIMD8<Float>.self))
            kp += 64
        }
        store(a0, a1, o, scale)
    }
}
