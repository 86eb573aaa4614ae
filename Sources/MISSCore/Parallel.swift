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
