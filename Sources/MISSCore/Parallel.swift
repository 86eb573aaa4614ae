import Dispatch
import Foundation

/// The cores this process may use, read once: `ProcessInfo.activeProcessorCount` asks the system (the
/// affinity mask, on Linux through a system call) every time, and the beam search asks on every level.
public enum Cores {
    public static let count = ProcessInfo.processInfo.activeProcessorCount
}

/// `(0..<n).map(body)` on all cores. Rows are striped over the workers; each result is written
/// exactly once, by the worker that computed it, so the order and values do not depend on scheduling.
/// `body` must only read shared state (it runs concurrently with itself).
public func parallelMap<T>(_ n: Int, workers: Int = Cores.count,
                           minimumPerWorker: Int = 16, _ body: (Int) -> T) -> [T] {
    let w = max(1, min(workers, n / max(1, minimumPerWorker)))
    if w == 1 { return (0..<n).map(body) }
    return collected(n) { out in
        withoutActuallyEscaping(body) { body in
            let job = StripedJob(out: out, body: body, n: n, workers: w)
            DispatchQueue.concurrentPerform(iterations: w) { job.run(worker: $0) }
        }
    }
}

/// `body(range)` for the blocks 0..<block, block..<2·block, … of 0..<n, on up to `workers` threads; a
/// free worker takes the next block. `body` must write only state that belongs to its range.
public func parallelBlocks(_ n: Int, block: Int, workers: Int = Cores.count, _ body: (Range<Int>) -> Void) {
    precondition(block >= 1, "parallelBlocks: block \(block)")
    let blocks = (n + block - 1) / block
    let w = max(1, min(workers, blocks))
    if w == 1 {
        for b in 0..<blocks { body((b * block)..<min(n, (b + 1) * block)) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let job = BlocksJob(n: n, block: block, blocks: blocks, next: BlockCounter(), body: body)
        DispatchQueue.concurrentPerform(iterations: w) { _ in job.run() }
    }
}

/// `body(worker, range)` over 0..<n in blocks that shrink toward the end ("guided"): each block is about
/// 1/(2·workers) of the rows still left, rounded up to a multiple of `minBlock` and at most `maxBlock`, so
/// the workers finish within a small block of each other instead of up to a whole `maxBlock`. The blocks'
/// bounds depend only on n and the arguments, not on which worker takes which; `worker` (0..<workers) is
/// for per-worker scratch. `body` must write only state that belongs to its range (or to its worker).
public func parallelGuidedBlocks(_ n: Int, maxBlock: Int, minBlock: Int, workers: Int = Cores.count,
                                 _ body: (_ worker: Int, _ rows: Range<Int>) -> Void) {
    precondition(minBlock >= 1 && maxBlock >= minBlock, "parallelGuidedBlocks: blocks \(minBlock)…\(maxBlock)")
    let w = max(1, min(workers, (n + minBlock - 1) / minBlock))
    let bounds = guidedBlockBounds(n, maxBlock: maxBlock, minBlock: minBlock, workers: w)
    if w == 1 {
        for b in 0..<(bounds.count - 1) { body(0, bounds[b]..<bounds[b + 1]) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let job = GuidedJob(bounds: bounds, next: BlockCounter(), body: body)
        DispatchQueue.concurrentPerform(iterations: w) { job.run(worker: $0) }
    }
}

/// The block bounds of `parallelGuidedBlocks`: 0, …, n.
public func guidedBlockBounds(_ n: Int, maxBlock: Int, minBlock: Int, workers: Int) -> [Int] {
    var bounds = [0], start = 0
    while start < n {
        let left = n - start
        let share = (left + 2 * workers - 1) / (2 * workers)
        let size = min(left, min(maxBlock, max(minBlock, (share + minBlock - 1) / minBlock * minBlock)))
        start += size
        bounds.append(start)
    }
    return bounds
}

private struct GuidedJob: @unchecked Sendable {
    let bounds: [Int]
    let next: BlockCounter
    let body: (Int, Range<Int>) -> Void

    func run(worker: Int) {
        while true {
            let b = next.take()
            if b >= bounds.count - 1 { return }
            body(worker, bounds[b]..<bounds[b + 1])
        }
    }
}

private struct BlocksJob: @unchecked Sendable {
    let n: Int, block: Int, blocks: Int
    let next: BlockCounter
    let body: (Range<Int>) -> Void

    func run() {
        while true {
            let b = next.take()
            if b >= blocks { return }
            body((b * block)..<min(n, (b + 1) * block))
        }
    }
}

/// An array of n results that `fill` initialises, every slot exactly once (from any worker), in place.
private func collected<T>(_ n: Int, _ fill: (UnsafeMutablePointer<T>) -> Void) -> [T] {
    [T](unsafeUninitializedCapacity: n) { buffer, initialized in
        fill(buffer.baseAddress!)
        initialized = n
    }
}

/// Runs chains of items on all cores: chain c's items 0..<costs[c].count run one after another, in order, never
/// two of one chain at once (each chain owns state the next item builds on). A free worker takes the next item
/// of the chain with the most estimated work left (`costs[c][i]`: item i's) that nobody is working on, so the
/// workers end at most about one item apart instead of one whole chain. Nothing that a chain computes depends
/// on which worker ran it or when. Returns when every item has run.
///
/// `whenIdle`, if given, runs once, on the first worker that finds nothing left to take (on all cores, the
/// others are still finishing their last items): independent work that fills the wait, for example the
/// next batch's preparation. It runs after the items with one worker.
public func parallelChains(costs: [[Double]], workers: Int = Cores.count, whenIdle: (() -> Void)? = nil,
                           _ body: (_ chain: Int, _ item: Int) -> Void) {
    let items = costs.reduce(0) { $0 + $1.count }
    let w = max(1, min(workers, costs.filter { !$0.isEmpty }.count))
    if w == 1 || items == 0 {
        for (c, chain) in costs.enumerated() { for i in chain.indices { body(c, i) } }
        whenIdle?()
        return
    }
    withoutActuallyEscaping(body) { body in
        withoutActuallyEscaping(whenIdle ?? {}) { idle in
            let job = ChainsJob(board: ChainBoard(costs), body: body, whenIdle: whenIdle == nil ? nil : idle)
            DispatchQueue.concurrentPerform(iterations: w) { _ in job.run() }
        }
    }
}

/// Which chain goes next: per chain the next item, whether someone works on it, the estimated work left.
private final class ChainBoard: @unchecked Sendable {
    private let lock = NSLock()
    private let costs: [[Double]]
    private var next: [Int], busy: [Bool], left: [Double]

    init(_ costs: [[Double]]) {
        self.costs = costs
        next = Array(repeating: 0, count: costs.count)
        busy = Array(repeating: false, count: costs.count)
        left = costs.map { $0.reduce(0, +) }
    }

    /// The (chain, item) to run next, marked taken; nil when every chain is finished or taken.
    func take() -> (Int, Int)? {
        lock.lock()
        defer { lock.unlock() }
        var best: Int?
        for c in costs.indices where !busy[c] && next[c] < costs[c].count {
            if let b = best, !(left[c] > left[b]) { continue }   // ties: the lower chain index
            best = c
        }
        guard let c = best else { return nil }
        busy[c] = true
        return (c, next[c])
    }

    func finished(_ c: Int) {
        lock.lock()
        left[c] -= costs[c][next[c]]
        next[c] += 1
        busy[c] = false
        lock.unlock()
    }

    private var idleClaimed = false

    /// True for the first caller only.
    func claimIdle() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if idleClaimed { return false }
        idleClaimed = true
        return true
    }
}

private struct ChainsJob: @unchecked Sendable {
    let board: ChainBoard
    let body: (Int, Int) -> Void
    let whenIdle: (() -> Void)?

    func run() {
        while let (c, i) = board.take() {
            body(c, i)
            board.finished(c)
        }
        if let whenIdle, board.claimIdle() { whenIdle() }
    }
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
/// `scale`) with `RelevanceKernel` into its own scratch, which stays in cache while `body(row, relevances)`
/// reads it. No (n, L) matrix is materialised, and a row's values do not depend on the block or the worker.
/// `queries` (n, d) is row-major.
public func parallelRowsOfProducts<T>(queries: Matrix, keys: PackedKeys, scale: Float = 1, block: Int = 36,
                                      workers: Int = Cores.count,
                                      _ body: (Int, UnsafeBufferPointer<Float>) -> T) -> [T] {
    parallelRowsOfRelevances(queries: queries, keys: SequenceKeys(keys), scale: scale, block: block, workers: workers) { r, row in
        body(r, UnsafeBufferPointer(start: row.values, count: row.count))
    }
}

/// The same over a window's keys, each row handed over as its `RelevanceRow` (with grouped keys, each
/// distinct item's product computed once: `SequenceKeys`).
public func parallelRowsOfRelevances<T>(queries: Matrix, keys: SequenceKeys, scale: Float = 1, block: Int = 36,
                                        workers: Int = Cores.count,
                                        _ body: (Int, RelevanceRow) -> T) -> [T] {
    precondition(queries.cols == keys.dim, "parallelRowsOfProducts: queries have \(queries.cols) columns, keys \(keys.dim)")
    precondition(block >= 1, "parallelRowsOfProducts: block \(block)")
    let n = queries.rows
    if n == 0 { return [] }
    let blocks = (n + block - 1) / block
    let w = max(1, min(workers, blocks))
    return collected(n) { out in
        queries.storage.withUnsafeBufferPointer { qb in
            withoutActuallyEscaping(body) { body in
                let job = ProductRowsJob(out: out, q: qb.baseAddress!, keys: keys, n: n, scale: scale,
                                         block: block, blocks: blocks, next: BlockCounter(), body: body)
                if w == 1 { job.run(worker: 0) } else { DispatchQueue.concurrentPerform(iterations: w) { job.run(worker: $0) } }
            }
        }
    }
}

private struct ProductRowsJob<T>: @unchecked Sendable {
    let out: UnsafeMutablePointer<T>
    let q: UnsafePointer<Float>
    let keys: SequenceKeys
    let n: Int
    let scale: Float
    let block: Int, blocks: Int
    /// Blocks are handed out one at a time, so a worker that the machine slows down takes fewer of them.
    /// (A row's values do not depend on which worker computes it.)
    let next: BlockCounter
    let body: (Int, RelevanceRow) -> T

    func run(worker: Int) {
        let ldc = keys.stride, d = keys.dim
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, block * ldc))
        defer { scratch.deallocate() }
        while true {
            let b = next.take()
            if b >= blocks { break }
            let r0 = b * block, rows = min(block, n - r0)
            if keys.count > 0 { keys.products(q + r0 * d, rows: rows, scale: scale, into: scratch, ldc: ldc) }
            for r in 0..<rows {
                (out + r0 + r).initialize(to: body(r0 + r, keys.row(scratch + r * ldc)))
            }
        }
    }
}

/// 0, 1, 2, … to concurrent callers, each value once.
final class BlockCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}

/// A buffer that concurrent workers fill at disjoint rows (each row by exactly one worker).
public struct RowSink: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public init(_ base: UnsafeMutablePointer<Float>) { self.base = base }
}
