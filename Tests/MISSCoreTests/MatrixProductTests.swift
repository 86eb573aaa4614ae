import Foundation
import Testing
@testable import MISSCore
import MISSTestSupport

@Suite struct MatrixProductTests {
    @Test func deterministicMatmulIsTheExactProductRoundedOnce() {
        var rng = Xoshiro256StarStar(seed: 12)
        let a = Matrix.randomNormal(9, 16, using: &rng), b = Matrix.randomNormal(16, 5, using: &rng)
        let c = deterministicMatmul(a, b)
        let reference = naiveMatmul(a, b)
        for i in 0..<9 { for j in 0..<5 { #expect(c[i, j] == Float(reference[i][j])) } }
        // By hand: [1 2; 3 4]·[5; 6] = [17; 39].
        #expect(deterministicMatmul(Matrix([[1, 2], [3, 4]]), Matrix([[5], [6]])).storage == [17, 39])
    }

    @Test(arguments: [(1, 1, 1), (7, 13, 5), (13, 7, 1), (1, 9, 17), (31, 3, 29), (64, 65, 63)])
    func gemmMatchesNaiveOnOddShapes(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = Xoshiro256StarStar(seed: UInt64(m * 1000 + n * 10 + k))
        let a = Matrix.randomUniform(m, k, using: &rng)
        let b = Matrix.randomUniform(k, n, using: &rng)
        expectClose(matmul(a, b), naiveMatmul(a, b), "A·B")
        // Transposed operands: store Aᵀ and Bᵀ and ask BLAS to transpose them back.
        let at = a.transposed, bt = b.transposed
        expectClose(matmul(at, b, transposeA: true), naiveMatmul(at, b, transposeA: true), "Aᵀ·B")
        expectClose(matmul(a, bt, transposeB: true), naiveMatmul(a, bt, transposeB: true), "A·Bᵀ")
        expectClose(matmul(at, bt, transposeA: true, transposeB: true),
                    naiveMatmul(at, bt, transposeA: true, transposeB: true), "Aᵀ·Bᵀ")
    }

    @Test func stridedViewsAndOutputRegion() {
        var rng = Xoshiro256StarStar(seed: 7)
        let big = Matrix.randomUniform(11, 9, using: &rng)
        let other = Matrix.randomUniform(10, 12, using: &rng)
        // A = big[2..<7, 1..<5] (5×4), B = other[3..<7, 4..<10] (4×6): both strided.
        let av = big.view(rows: 2..<7, cols: 1..<5)
        let bv = other.view(rows: 3..<7, cols: 4..<10)
        let reference = naiveMatmul(av.materialize(), bv.materialize())
        var c = Matrix(rows: 8, cols: 10, repeating: 1)
        BLAS.gemm(av, bv, alpha: 2, beta: 0.5, into: &c, cRow: 1, cCol: 3)
        for i in 0..<8 {
            for j in 0..<10 {
                let inside = (1..<6).contains(i) && (3..<9).contains(j)
                let expected = inside ? 2 * reference[i - 1][j - 3] + 0.5 : 1
                #expect(abs(Double(c[i, j]) - expected) < 1e-4, "(\(i),\(j)) = \(c[i, j]), expected \(expected)")
            }
        }
        // A transposed strided view.
        let tv = big.view(rows: 0..<4, cols: 2..<9)  // 4×7, used as 7×4
        var d = Matrix(rows: 7, cols: 6)
        BLAS.gemm(tv, transposeA: true, bv, into: &d)
        expectClose(d, naiveMatmul(tv.materialize(), bv.materialize(), transposeA: true), "Aᵀ strided")
    }

    @Test func gemvMatchesNaive() {
        var rng = Xoshiro256StarStar(seed: 3)
        let a = Matrix.randomUniform(7, 13, using: &rng)
        let x = (0..<13).map { _ in rng.nextFloat() }
        var y = [Float](repeating: 0, count: 7)
        BLAS.gemv(a.view(), x, into: &y)
        let ref = naiveMatmul(a, Matrix(rows: 13, cols: 1, storage: x))
        for i in 0..<7 { #expect(abs(Double(y[i]) - ref[i][0]) < 1e-4) }
        let x2 = (0..<7).map { _ in rng.nextFloat() }
        var y2 = [Float](repeating: 0, count: 13)
        BLAS.gemv(a.view(), transpose: true, x2, into: &y2)
        let ref2 = naiveMatmul(a, Matrix(rows: 7, cols: 1, storage: x2), transposeA: true)
        for i in 0..<13 { #expect(abs(Double(y2[i]) - ref2[i][0]) < 1e-4) }
    }

    @Test func batchedMatmulMatchesPerBlockProducts() {
        var rng = Xoshiro256StarStar(seed: 11)
        let a = Matrix.randomUniform(3 * 2, 5, using: &rng)  // 3 blocks of 2×5
        let b = Matrix.randomUniform(3 * 4, 5, using: &rng)  // 3 blocks of 4×5 (used transposed)
        let c = batchedMatmul(a, b, batch: 3, transposeB: true)
        #expect(c.rows == 6 && c.cols == 4)
        for blk in 0..<3 {
            let ref = naiveMatmul(a.rows((2 * blk)..<(2 * blk + 2)), b.rows((4 * blk)..<(4 * blk + 4)), transposeB: true)
            expectClose(c.rows((2 * blk)..<(2 * blk + 2)), ref, "block \(blk)")
        }
    }

    @Test func elementwiseAndReductions() {
        let a = Matrix([[1, -2, 3], [4, 5, -6]])
        let b = Matrix([[0.5, 1, 2], [-1, 0, 1]])
        #expect((a + b) == Matrix([[1.5, -1, 5], [3, 5, -5]]))
        #expect((a * b) == Matrix([[0.5, -2, 6], [-4, 0, -6]]))
        #expect(a.columnSums() == [5, 3, -3])
        #expect(a.rowSums() == [2, 3])
        #expect(a.rowDots(b) == [4.5, -10])
        #expect(a.transposed == Matrix([[1, 4], [-2, 5], [3, -6]]))
        #expect(Matrix.hstack([a.columns(0..<1), a.columns(1..<3)]) == a)
        #expect(a.columns(1..<3) == Matrix([[-2, 3], [5, -6]]) && a.columns(2..<2).cols == 0 && a.columns(2..<2).rows == 2)
        #expect(Matrix.vstack([a.rows(0..<1), a.rows(1..<2)]) == a)
        let n = Matrix([[3, 4], [0, 0]]).l2NormalizedRows()
        #expect(n == Matrix([[0.6, 0.8], [0, 0]]))
        #expect(a.gatherRows([1, 1, 0]) == Matrix([[4, 5, -6], [4, 5, -6], [1, -2, 3]]))
    }
}

@Suite struct BlockedProductRowsTests {
    /// The kernel's definition: one fused multiply-add chain over the components, in order, then the scale.
    func fmaChain(_ q: Matrix, _ k: Matrix, _ i: Int, _ j: Int, scale: Float) -> Float {
        var s: Float = 0
        for c in 0..<q.cols { s = s.addingProduct(q[i, c], k[j, c]) }
        return scale == 1 ? s : s * scale
    }

    @Test func rowsSeeExactlyTheFusedChainWhateverTheBlockWorkersOrShape() {
        var rng = Xoshiro256StarStar(seed: 21)
        // Ragged everywhere: 77 rows (not a multiple of the 6-row tile or of the blocks), L = 50 keys (not a
        // multiple of the 16-key panel), widths 6 and 13 (not a multiple of 8) as well as 64.
        for (rows, l, d) in [(77, 50, 6), (13, 33, 13), (40, 64, 64), (1, 1, 3)] {
            let q = Matrix.randomNormal(rows, d, using: &rng), k = Matrix.randomNormal(l, d, using: &rng)
            let packed = PackedKeys(k)
            #expect(packed.count == l && packed.paddedCount % 16 == 0 && packed.paddedCount >= l)
            let expected = (0..<rows).map { i in (0..<l).map { j in fmaChain(q, k, i, j, scale: 0.25) } }
            for (block, workers) in [(36, 1), (36, 2), (32, 3), (5, 2), (1, 1)] {
                let got = parallelRowsOfProducts(queries: q, keys: packed, scale: 0.25, block: block, workers: workers) { row, r in (row, Array(r)) }
                #expect(got.map(\.0) == Array(0..<rows))
                for (row, r) in got { #expect(r == expected[row], "\(rows)×\(l)×\(d): row \(row), block \(block), \(workers) workers") }
            }
            // Against a naive Double reference too (not only against the kernel's own definition).
            let naive = naiveMatmul(q, k, transposeB: true)
            let one = parallelRowsOfProducts(queries: q, keys: packed) { _, r in Array(r) }
            for i in Set([0, rows / 2, rows - 1]) { for j in Set([0, l - 1]) { #expect(abs(Double(one[i][j]) - naive[i][j]) < 1e-4) } }
            #expect(parallelRowsOfProducts(queries: Matrix(rows: 0, cols: d), keys: packed) { row, _ in row }.isEmpty)
        }
    }

    @Test func rowwiseLinearIsTheFusedChainPlusBiasWhateverTheRows() {
        var rng = Xoshiro256StarStar(seed: 23)
        // Outputs that fill panels exactly (32, 64) and ones that do not (1, 4, 37); rows across the 48-row blocks.
        for (rows, inputs, outputs) in [(100, 20, 37), (49, 320, 64), (7, 64, 32), (50, 32, 1), (3, 9, 4)] {
            let layer = Linear(name: "l", inputs: inputs, outputs: outputs, rowwise: true, rng: &rng)
            layer.bias!.value = .randomNormal(1, outputs, using: &rng)
            let plain = Linear(weight: layer.weight, bias: layer.bias)
            let x = Matrix.randomNormal(rows, inputs, using: &rng)
            let y = layer.forward(x)
            let w = layer.weight.value, b = layer.bias!.value
            for i in 0..<rows {
                for j in 0..<outputs {
                    var s: Float = 0
                    for c in 0..<inputs { s = s.addingProduct(x[i, c], w[c, j]) }
                    #expect(y[i, j] == s + b[0, j], "\(rows)×\(inputs)×\(outputs) at (\(i), \(j))")
                }
            }
            // The same layer by BLAS: the same values up to rounding; any subset of rows: the same bits.
            let reference = plain.forward(x)
            #expect(zip(y.storage, reference.storage).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
            let cut = rows / 3
            #expect(layer.forward(x.rows(cut..<rows)).storage == y.rows(cut..<rows).storage)
            #expect(PackedKeys(columnsOf: w).storage == PackedKeys(w.transposed).storage)
        }
    }

    @Test func packedSideBySideWeightsAndParallelRowBlocksGiveTheSameBits() {
        var rng = Xoshiro256StarStar(seed: 29)
        // The head's shape (4 experts of 64, 3 gates of 4: parts that start and end inside a panel) and ragged ones.
        for widths in [[64, 64, 64, 64, 4, 4, 4], [5, 16, 1, 30], [17], [0, 3, 0]] {
            let inputs = 9
            let parts = widths.map { Matrix.randomNormal(inputs, $0, using: &rng) }
            let together = PackedKeys(columnsOf: parts)
            #expect(together.count == widths.reduce(0, +) && together.dim == inputs)
            #expect(together.storage == PackedKeys(columnsOf: Matrix.hstack(parts)).storage, "\(widths)")
            let x = Matrix.randomNormal(150, inputs, using: &rng)
            let whole = RelevanceKernel.rowwiseProduct(x, Matrix.hstack(parts))
            for workers in [1, 2, 3] {
                #expect(RelevanceKernel.rowwiseProduct(x, together, workers: workers).storage == whole.storage, "\(widths), \(workers) workers")
                #expect(RelevanceKernel.rowwiseProduct(x, together, rows: 37..<140, workers: workers).storage == whole.rows(37..<140).storage)
            }
            #expect(RelevanceKernel.rowwiseProduct(x, together, rows: 5..<5).rows == 0)
        }
    }

    @Test func parallelBlocksVisitEveryIndexOnce() {
        for (n, block, workers) in [(0, 4, 2), (1, 4, 2), (97, 8, 2), (97, 8, 1), (64, 64, 3), (10, 1, 4)] {
            let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(1, n))
            defer { seen.deallocate() }
            _ = seen.initialize(from: repeatElement(0, count: max(1, n)))
            let sink = seen
            parallelBlocks(n, block: block, workers: workers) { range in
                #expect(range.count <= block && range.lowerBound % block == 0)
                for i in range { sink[i] += 1 }
            }
            #expect(n == 0 || seen.allSatisfy { $0 == 1 }, "n \(n), block \(block), \(workers) workers")
        }
    }

    @Test func guidedBlocksShrinkTowardTheEndAndVisitEveryIndexOnce() {
        // By hand: 800 rows, blocks 6…36, 2 workers: ⌈left/4⌉ rounded up to a multiple of 6, at most 36. That
        // is 36 while more than 120 rows are left: 19 blocks, 116 left; then 116 → 30, 86 → 24, 62 → 18,
        // 44 → 12, 32 → 12, 20 → 6, 14 → 6, 8 → 6, and the last 2.
        let b = guidedBlockBounds(800, maxBlock: 36, minBlock: 6, workers: 2)
        let sizes = zip(b.dropFirst(), b).map { $0 - $1 }
        #expect(b.first == 0 && b.last == 800)
        #expect(sizes == Array(repeating: 36, count: 19) + [30, 24, 18, 12, 12, 6, 6, 6, 2])
        #expect(guidedBlockBounds(5, maxBlock: 36, minBlock: 6, workers: 2) == [0, 5])
        #expect(guidedBlockBounds(0, maxBlock: 36, minBlock: 6, workers: 2) == [0])
        for (n, workers) in [(0, 2), (1, 2), (5, 3), (97, 2), (800, 2), (800, 1), (130, 4)] {
            let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(1, n))
            defer { seen.deallocate() }
            _ = seen.initialize(from: repeatElement(0, count: max(1, n)))
            let sink = seen, bounds = guidedBlockBounds(n, maxBlock: 36, minBlock: 6, workers: max(1, min(workers, (n + 5) / 6)))
            parallelGuidedBlocks(n, maxBlock: 36, minBlock: 6, workers: workers) { worker, range in
                #expect(worker >= 0 && worker < workers)
                #expect(bounds.contains(range.lowerBound) && bounds.contains(range.upperBound))
                for i in range { sink[i] += 1 }
            }
            #expect(n == 0 || seen.allSatisfy { $0 == 1 }, "n \(n), \(workers) workers")
        }
    }

    @Test func hstackPlacesThePartsSideBySide() {
        let a = Matrix([[1, 2], [3, 4]]), b = Matrix([[5], [6]]), empty = Matrix(rows: 2, cols: 0)
        #expect(Matrix.hstack([a, empty, b]) == Matrix([[1, 2, 5], [3, 4, 6]]))
        #expect(Matrix.hstack([empty, empty]).cols == 0)
    }

    @Test func paddingKeysGiveZeroAndTheLayoutIsPanelMajor() {
        let k = Matrix([[1, 2], [3, 4], [5, 6]])
        let packed = PackedKeys(k)
        #expect(packed.panels == 1 && packed.paddedCount == 16)
        #expect(Array(packed.storage[0..<4]) == [1, 3, 5, 0])       // component 0 of keys 0, 1, 2, padding
        #expect(Array(packed.storage[16..<19]) == [2, 4, 6])         // component 1
        var out = [Float](repeating: .nan, count: 16)
        let q: [Float] = [1, -1]
        q.withUnsafeBufferPointer { qb in out.withUnsafeMutableBufferPointer { RelevanceKernel.products(qb.baseAddress!, rows: 1, keys: packed, scale: 1, into: $0.baseAddress!, ldc: 16) } }
        #expect(Array(out[0..<3]) == [-1, -1, -1])
        #expect(out[3..<16].allSatisfy { $0 == 0 })
        // Rows picked from a table (repeats, any order) pack as their gathered matrix does.
        var rng = Xoshiro256StarStar(seed: 12)
        let table = Matrix.randomNormal(40, 5, using: &rng)
        let picks = [39, 0, 7, 7, 12, 3, 39, 21, 5, 5, 5, 18, 30, 2, 11, 9, 26, 1, 0]   // 19: two panels, one ragged
        let direct = PackedKeys(rowsOf: table, at: picks), gathered = PackedKeys(table.gatherRows(picks))
        #expect(direct.count == 19 && direct.panels == 2 && direct.storage == gathered.storage)
        #expect(Array(direct.storage[0..<3]) == [table[39, 0], table[0, 0], table[7, 0]])
        #expect(PackedKeys(rowsOf: table, at: []).count == 0)
    }

    @Test func blasRunsSingleThreaded() {
        // (Measuring with 2 threads here would switch the process-global count while other tests run: the
        // very hazard single-threaded OpenBLAS removes. `miss bench gemm` measures 2 threads in its own process.)
        #expect(BLAS.threads == 1)
        let m = GemmPeak.measure(m: 64, n: 64, k: 64, threads: 1, minSeconds: 0)
        #expect(m.threads == 1 && m.gflops > 0 && m.repetitions >= 3)
        #expect(BLAS.threads == 1)
    }

    @Test func jitterReferenceComputesItsProductsOnOwnThreadsWithoutTouchingTheCount() {
        // `bench beam`'s reference workload: every thread's output is the product A·B, and OpenBLAS stays at
        // 1 thread (its own pool would keep spinning into the next request).
        for threads in [1, 2, 3] {
            let r = GemmPeak.Reference(m: 40, count: 5, threads: threads)
            let t = r.time()
            #expect(t > 0 && t.isFinite && BLAS.threads == 1)
            let expected = matmul(r.a, r.b)
            for p in 0..<r.count {
                #expect(Array(UnsafeBufferPointer(start: r.c + p * 40 * 40, count: 40 * 40)) == expected.storage, "\(threads) threads, product \(p)")
            }
        }
    }
}

@Suite struct ParallelMapTests {
    /// Every item runs exactly once; a chain's items run in order and never two at once, whatever the
    /// worker count and the costs (which only decide who goes next).
    @Test func chainsRunEachItemOnceInOrderAndNeverTwoOfAChainAtOnce() {
        let costs: [[Double]] = [[5, 1, 1], [], [2, 2, 2, 2, 2], [9], [1, 1, 1, 1, 1, 1, 1]]
        for workers in [1, 2, 3, 8] {
            let log = ChainLog(chains: costs.count)
            parallelChains(costs: costs, workers: workers) { c, i in
                log.start(c, i)
                var x = 0.0
                for k in 0..<300_000 { x += Double(k) }   // long enough for the workers to overlap
                log.end(c, x)
            }
            #expect(log.ran == costs.map { Array($0.indices) }, "workers \(workers)")
            #expect(!log.overlapped, "workers \(workers)")
        }
        parallelChains(costs: [], workers: 2) { _, _ in Issue.record("no chains, no items") }
        parallelChains(costs: [[], []], workers: 2) { _, _ in Issue.record("empty chains, no items") }
    }

    /// `whenIdle` runs exactly once, when a worker has nothing left to take: with one worker after every item,
    /// with two while the other still runs the long last item (so before the call returns, after every other item).
    @Test func chainsRunTheIdleTaskOnceWhenAWorkerRunsOut() {
        for workers in [1, 2] {
            let log = IdleLog()
            parallelChains(costs: [[10], [1, 1]], workers: workers, whenIdle: { log.idle() }) { c, i in
                log.item(c, i, long: c == 0 && workers == 2)
            }
            #expect(log.idleRuns == 1, "workers \(workers)")
            #expect(log.itemsBeforeIdle == (workers == 1 ? 3 : 2), "workers \(workers): \(log.itemsBeforeIdle) items done before the idle task")
        }
        let none = IdleLog()
        parallelChains(costs: [[], []], workers: 2, whenIdle: { none.idle() }) { _, _ in Issue.record("empty chains, no items") }
        #expect(none.idleRuns == 1)
    }

    final class IdleLog: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var idleRuns = 0, itemsBeforeIdle = -1
        private var done = 0
        func item(_ c: Int, _ i: Int, long: Bool) {
            if long {   // the long item waits (up to 10 s) for the idle task, which the other worker runs once out of items
                for _ in 0..<10_000 where lock.withLock({ idleRuns }) == 0 { Thread.sleep(forTimeInterval: 0.001) }
            }
            lock.withLock { done += 1 }
        }
        func idle() { lock.withLock { idleRuns += 1; if itemsBeforeIdle < 0 { itemsBeforeIdle = done } } }
    }

    final class ChainLog: @unchecked Sendable {
        private let lock = NSLock()
        private var running: [Bool]
        private(set) var ran: [[Int]]
        private(set) var overlapped = false
        init(chains: Int) { running = Array(repeating: false, count: chains); ran = Array(repeating: [], count: chains) }
        func start(_ c: Int, _ i: Int) {
            lock.lock(); defer { lock.unlock() }
            if running[c] { overlapped = true }
            running[c] = true
            ran[c].append(i)
        }
        func end(_ c: Int, _ sink: Double) {
            lock.lock(); defer { lock.unlock() }
            if sink < 0 { overlapped = true }
            running[c] = false
        }
    }
}

/// `TransposedProduct` (the training's weight gradients, C += Aᵀ·B): every entry is one fused multiply-add chain
/// over k in order from C's value, whichever tile computes it.
@Suite struct TransposedProductTests {
    /// Shapes that reach every tile: 4 × 16 and 4 × 8 (columns in 8-lane tiles), rows past a multiple of 4
    /// (8-lane rows), the last n mod 8 columns in groups of up to 4 (8 rows in the lanes, then single entries
    /// for the rows past a multiple of 8), and k across several chunks and not a multiple of one.
    @Test(arguments: [(1, 1, 1), (64, 32, 64), (300, 32, 32), (229, 160, 268), (70, 13, 31), (5, 3, 7), (1000, 7, 25), (130, 9, 8)])
    func equalsTheFusedChainAndTheProduct(_ shape: (Int, Int, Int)) {
        let (k, m, n) = shape
        var rng = Xoshiro256StarStar(seed: UInt64(k * 10_000 + m * 100 + n))
        let a = Matrix.randomNormal(k, m, using: &rng), b = Matrix.randomNormal(k, n, using: &rng)
        let start = Matrix.randomNormal(m, n, using: &rng)
        var c = start
        TransposedProduct.accumulate(a, b, into: &c)
        for i in 0..<m {
            for j in 0..<n {
                var chain = start[i, j], exact = Double(start[i, j])
                for r in 0..<k {
                    chain = chain.addingProduct(a[r, i], b[r, j])
                    exact += Double(a[r, i]) * Double(b[r, j])
                }
                #expect(c[i, j] == chain, "k \(k) m \(m) n \(n): C[\(i), \(j)]")
                #expect(abs(Double(c[i, j]) - exact) <= 1e-4 * max(1, abs(exact)), "k \(k) m \(m) n \(n): C[\(i), \(j)] against Double")
            }
        }
    }

    /// A column block of B into its own C (a layer's gradient from output gradients side by side), and the
    /// product from zero; by hand: [1 2; 3 4]ᵀ·[5; 6] = [1·5 + 3·6; 2·5 + 4·6] = [23; 34].
    @Test func columnBlocksAndByHand() {
        #expect(TransposedProduct.product(Matrix([[1, 2], [3, 4]]), Matrix([[5], [6]])).storage == [23, 34])
        var rng = Xoshiro256StarStar(seed: 5)
        let a = Matrix.randomNormal(150, 32, using: &rng), b = Matrix.randomNormal(150, 64, using: &rng)
        let whole = TransposedProduct.product(a, b)
        for block in [0..<32, 32..<64, 5..<12] {
            var c = Matrix(rows: 32, cols: block.count)
            TransposedProduct.accumulate(a, b, columns: block, into: &c)
            #expect(c == whole.columns(block), "columns \(block)")
        }
        var empty = Matrix(rows: 32, cols: 64)
        TransposedProduct.accumulate(Matrix(rows: 0, cols: 32), Matrix(rows: 0, cols: 64), into: &empty)
        #expect(empty == Matrix(rows: 32, cols: 64))
    }
}
