import Dispatch
import Foundation

/// `(0..<n).map(body)` on all cores. Rows are striped over the workers; each result is written
/// exactly once, by the worker that computed it, so the order and values do not depend on scheduling.
/// `body` must only read shared state (it runs concurrently with itself).
public func parallelMap<T>(_ n: Int, workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                           minimumPerWorker: Int = 16, _ body: (Int) -> T) -> [T] {
    let w = max(1, min(workers, n / max(1, minimumPerWorker)))
    if w == 1 { return (0..<n).map(body) }
    let out = UnsafeMutablePointer<T>.allocate(capacity: n)
    defer { out.deallocate() }
    withoutActuallyEscaping(body) { body in
        let job = StripedJob(out: out, body: body, n: n, workers: w)
        DispatchQueue.concurrentPerform(iterations: w) { job.run(worker: $0) }
    }
    let result = Array(UnsafeBufferPointer(start: out, count: n))
    out.deinitialize(count: n)
    return result
}

/// The unsafe part of `parallelMap`, fenced: workers write disjoint slots of `out`.
private struct StripedJob<T>: @unchecked Sendable {
    let out: UnsafeMutablePointer<T>
    let body: (Int) -> T
    let n: Int
    let workers: Int

    func run(worker: Int) {
        var i = worker
        while i < n {
            (out + i).initialize(to: body(i))
            i += workers
        }
    }
}

/// `(0..<n).map(body)` where every row needs the product of its query with all of `keys`: rows go in
/// blocks of `block` to the workers, and each worker computes its block's relevances Q_block·Kᵀ (times
/// `scale` when it is not 1) with a single-threaded GEMM into its own scratch, which stays in cache while
/// `body(row, relevances)` reads it. Same values as one big GEMM followed by the rows, without
/// materialising the (n, L) matrix. `queries` (n, d) and `keys` (L, d) are row-major.
public func parallelRowsOfProducts<T>(queries: Matrix, keys: Matrix, scale: Float = 1, block: Int = 32,
                                      workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                                      _ body: (Int, UnsafeBufferPointer<Float>) -> T) -> [T] {
    precondition(queries.cols == keys.cols, "parallelRowsOfProducts: queries have \(queries.cols) columns, keys \(keys.cols)")
    let n = queries.rows, l = keys.rows, d = keys.cols
    if n == 0 { return [] }
    let blocks = (n + block - 1) / block
    let w = max(1, min(workers, blocks))
    let out = UnsafeMutablePointer<T>.allocate(capacity: n)
    defer { out.deallocate() }
    BLAS.singleThreaded {
        queries.storage.withUnsafeBufferPointer { qb in
            keys.storage.withUnsafeBufferPointer { kb in
                withoutActuallyEscaping(body) { body in
                    let job = ProductRowsJob(out: out, q: qb.baseAddress!, k: kb.baseAddress, n: n, l: l, d: d, scale: scale,
                                             block: block, blocks: blocks, workers: w, body: body)
                    if w == 1 { job.run(worker: 0) } else { DispatchQueue.concurrentPerform(iterations: w) { job.run(worker: $0) } }
                }
            }
        }
    }
    let result = Array(UnsafeBufferPointer(start: out, count: n))
    out.deinitialize(count: n)
    return result
}

private struct ProductRowsJob<T>: @unchecked Sendable {
    let out: UnsafeMutablePointer<T>
    let q: UnsafePointer<Float>, k: UnsafePointer<Float>?
    let n: Int, l: Int, d: Int
    let scale: Float
    let block: Int, blocks: Int, workers: Int
    let body: (Int, UnsafeBufferPointer<Float>) -> T

    func run(worker: Int) {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, block * l))
        defer { scratch.deallocate() }
        var b = worker
        while b < blocks {
            let r0 = b * block, rows = min(block, n - r0)
            if let k, l > 0 {
                if d == 0 {
                    scratch.update(repeating: 0, count: rows * l)
                } else {
                    BLAS.Unsafe.gemm(transposeB: true, m: rows, n: l, k: d, q + r0 * d, lda: d, k, ldb: d, scratch, ldc: l)
                }
                if scale != 1 { for i in 0..<(rows * l) { scratch[i] *= scale } }
            }
            for r in 0..<rows {
                (out + r0 + r).initialize(to: body(r0 + r, UnsafeBufferPointer(start: scratch + r * l, count: l)))
            }
            b += workers
        }
    }
}
