import Dispatch
import Foundation
import MISSCore

extension IndexTree {
    public struct BuildOptions: Sendable {
        public var seed: UInt64 = 1
        /// Lloyd iterations per split at most (a split stops early once its assignment is stable).
        public var iterations = 6
        /// Worker threads over the nodes of a level.
        public var workers = Cores.count
        public init() {}
    }

    /// Builds the tree top-down by recursive balanced 2-means (Eq. 3 for the node embeddings).
    ///
    /// Each split sends the ⌈s/2⌉ items closest to one centroid to the left child and the rest to the
    /// right (balanced k-means with k = 2); centroids are re-estimated and the split repeated until
    /// it is stable. All splits of one level are independent and run on `workers` threads. Every split
    /// draws from its own generator (seed, level, node), so the result does not depend on scheduling.
    /// Cost: O(iterations · N · d) per level, O(N · d · log N) in all.
    public static func build(embeddings: Matrix, kind: Kind, options: BuildOptions = BuildOptions(),
                             progress: ((Int, Int) -> Void)? = nil) -> IndexTree {
        let n = embeddings.rows, d = embeddings.cols
        precondition(n >= 1, "a tree needs at least one item")
        let structure = Structure(itemCount: n)
        var perm = Array(0..<n)
        if kind == .random {
            var rng = Xoshiro256StarStar(seed: options.seed).derived("random-tree")
            rng.shuffle(&perm)
        }
        var src = embeddings.gatherRows(perm)
        var dst = src
        var permOut = perm
        let levels = structure.levels
        let levelStarts = structure.levelStarts
        var nodeEmbeddings = Matrix(rows: levelStarts.last!, cols: d)
        for h in 0..<(levels.count - 1) {
            progress?(h, levels.count - 1)
            let ranges = levels[h]
            src.storage.withUnsafeBufferPointer { s in
                dst.storage.withUnsafeMutableBufferPointer { t in
                    perm.withUnsafeBufferPointer { pIn in
                        permOut.withUnsafeMutableBufferPointer { pOut in
                            nodeEmbeddings.storage.withUnsafeMutableBufferPointer { e in
                                let job = SplitJob(src: s, dst: t, permIn: pIn, permOut: pOut,
                                                   nodeEmbeddings: e.baseAddress! + levelStarts[h] * d, dim: d,
                                                   seed: options.seed, level: h, iterations: options.iterations,
                                                   cluster: kind != .random, useBLAS: ranges.count == 1)
                                let workers = max(1, min(options.workers, ranges.count))
                                DispatchQueue.concurrentPerform(iterations: workers) { w in
                                    var i = w
                                    while i < ranges.count {
                                        job.split(node: i, range: ranges[i])
                                        i += workers
                                    }
                                }
                            }
                        }
                    }
                }
            }
            swap(&src, &dst)
            swap(&perm, &permOut)
        }
        progress?(levels.count - 1, levels.count - 1)
        // Leaves carry their items' embeddings (Eq. 3, first case), in leaf order.
        let leafBase = levelStarts[levels.count - 1]
        nodeEmbeddings.storage.replaceSubrange((leafBase * d)..<(levelStarts.last! * d), with: src.storage)
        return structure.makeTree(kind: kind, leafItems: perm.map(Int32.init), nodeEmbeddings: nodeEmbeddings)
    }

    /// The shape of a balanced tree over N items: per level, each node's range of leaf positions.
    struct Structure {
        var levels: [[Range<Int>]]

        init(itemCount n: Int) {
            var levels: [[Range<Int>]] = [[0..<n]]
            while levels.last!.contains(where: { $0.count > 1 }) {
                var next: [Range<Int>] = []
                next.reserveCapacity(levels.last!.count * 2)
                for r in levels.last! {
                    if r.count >= 2 {
                        let mid = r.lowerBound + (r.count + 1) / 2
                        next.append(r.lowerBound..<mid)
                        next.append(mid..<r.upperBound)
                    } else {
                        next.append(r)
                    }
                }
                levels.append(next)
            }
            self.levels = levels
            var starts = [0]
            for l in levels { starts.append(starts.last! + l.count) }
            levelStarts = starts
        }

        /// First node id of every level, then the node count.
        let levelStarts: [Int]

        func makeTree(kind: Kind, leafItems: [Int32], nodeEmbeddings: Matrix) -> IndexTree {
            let total = levelStarts.last!
            var parent = [Int32](repeating: -1, count: total)
            var childStart = [Int32](repeating: 0, count: total)
            var childCount = [Int32](repeating: 0, count: total)
            var leafStart = [Int32](repeating: 0, count: total)
            var leafEnd = [Int32](repeating: 0, count: total)
            for (h, ranges) in levels.enumerated() {
                var childCursor = h + 1 < levels.count ? levelStarts[h + 1] : total
                for (i, r) in ranges.enumerated() {
                    let node = levelStarts[h] + i
                    leafStart[node] = Int32(r.lowerBound)
                    leafEnd[node] = Int32(r.upperBound)
                    guard h + 1 < levels.count else { continue }
                    let k = r.count >= 2 ? 2 : 1
                    childStart[node] = Int32(childCursor)
                    childCount[node] = Int32(k)
                    for c in childCursor..<(childCursor + k) { parent[c] = Int32(node) }
                    childCursor += k
                }
            }
            return IndexTree(kind: kind, levelStarts: levelStarts, parent: parent, childStart: childStart,
                             childCount: childCount, leafStart: leafStart, leafEnd: leafEnd,
                             leafItems: leafItems, nodeEmbeddings: nodeEmbeddings)
        }
    }
}

/// One level's splits. Holds raw buffers so that worker threads can write disjoint row ranges;
/// every node owns the rows of its own range, so no two workers touch the same memory.
private struct SplitJob: @unchecked Sendable {
    let src: UnsafeBufferPointer<Float>
    let dst: UnsafeMutableBufferPointer<Float>
    let permIn: UnsafeBufferPointer<Int>
    let permOut: UnsafeMutableBufferPointer<Int>
    /// Row of the level's first node; node i of the level writes row i.
    let nodeEmbeddings: UnsafeMutablePointer<Float>
    let dim: Int
    let seed: UInt64
    let level: Int
    let iterations: Int
    let cluster: Bool
    /// A lone split (the root) uses multi-threaded BLAS; parallel splits use single-threaded kernels.
    let useBLAS: Bool

    private func rowDots(_ s: Int, _ x: UnsafePointer<Float>, _ w: [Float], _ out: inout [Float]) {
        if useBLAS { BLAS.Unsafe.gemv(rows: s, cols: dim, x, lda: dim, w, &out) } else {
            SingleThreadKernels.gemv(rows: s, cols: dim, x, lda: dim, w, &out)
        }
    }

    /// Σ_i w_i · row_i (w nil: plain sums).
    private func weightedSum(_ s: Int, _ x: UnsafePointer<Float>, _ w: [Float]?, _ out: inout [Float]) {
        if useBLAS {
            BLAS.Unsafe.gemv(transpose: true, rows: s, cols: dim, x, lda: dim, w ?? [Float](repeating: 1, count: s), &out)
        } else if let w {
            SingleThreadKernels.gemvTransposed(rows: s, cols: dim, x, lda: dim, w, &out)
        } else {
            SingleThreadKernels.gemvTransposed(rows: s, cols: dim, x, lda: dim, nil, &out)
        }
    }

    /// Splits node `node` (index within the level) whose items occupy `range`: writes its embedding
    /// (Eq. 3: the mean of its items) and its items reordered as left child then right child.
    func split(node: Int, range: Range<Int>) {
        let s = range.count
        let d = dim
        let x = src.baseAddress! + range.lowerBound * d
        let out = dst.baseAddress! + range.lowerBound * d
        let embedding = nodeEmbeddings + node * d
        // Σ rows, then the mean: Eq. 3 for this node.
        var total = [Float](repeating: 0, count: d)
        if s == 1 {
            total.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: x, count: d) }
        } else {
            weightedSum(s, x, nil, &total)
        }
        for j in 0..<d { embedding[j] = total[j] / Float(s) }
        guard cluster, s >= 3 else {
            // One item, two items (one per child whatever the centroids), or a random tree: keep the order.
            out.update(from: x, count: s * d)
            for i in range { permOut[i] = permIn[i] }
            return
        }
        let half = (s + 1) / 2
        var rng = Xoshiro256StarStar(seed: seed ^ (UInt64(level) << 40) ^ UInt64(node) &* 0x9E37_79B9_7F4A_7C15)
        // Initial centroids: two distinct random items (Lloyd iterations then refine them).
        let a = rng.nextInt(below: s)
        let b = (a + 1 + rng.nextInt(below: s - 1)) % s
        var c1 = Array(UnsafeBufferPointer(start: x + a * d, count: d))
        var c2 = Array(UnsafeBufferPointer(start: x + b * d, count: d))
        var scores = [Float](repeating: 0, count: s)
        var scratch = [Float](repeating: 0, count: s)
        var left = [Bool](repeating: false, count: s)
        var mask = [Float](repeating: 0, count: s)
        var w = [Float](repeating: 0, count: d)
        for iteration in 0..<max(1, iterations) {
            // t_i = x_i · (c1 − c2): larger means closer to c1 (the ‖c‖² terms do not change the order).
            for j in 0..<d { w[j] = c1[j] - c2[j] }
            rowDots(s, x, w, &scores)
            let threshold = kthLargest(scores, half, scratch: &scratch)
            // Strictly above the threshold first, then ties in index order until the left side is full.
            var taken = 0
            for i in 0..<s where scores[i] > threshold { taken += 1 }
            var changed = 0
            for i in 0..<s {
                var l = scores[i] > threshold
                if !l && scores[i] == threshold && taken < half { l = true; taken += 1 }
                if l != left[i] { changed += 1; left[i] = l }
                mask[i] = l ? 1 : 0
            }
            // Stable (or nearly: under 0.1 % of the items moved): further Lloyd steps change little.
            if iteration > 0 && changed <= s / 1000 { break }
            weightedSum(s, x, mask, &c1)
            for j in 0..<d {
                c2[j] = (total[j] - c1[j]) / Float(s - half)
                c1[j] /= Float(half)
            }
        }
        var lo = 0, ro = half
        for i in 0..<s {
            let target: Int
            if left[i] { target = lo; lo += 1 } else { target = ro; ro += 1 }
            permOut[range.lowerBound + target] = permIn[range.lowerBound + i]
            (out + target * d).update(from: x + i * d, count: d)
        }
    }
}

/// The k-th largest value (k ≥ 1), selected in `scratch` (reused between calls).
func kthLargest(_ values: [Float], _ k: Int, scratch: inout [Float]) -> Float {
    scratch.removeAll(keepingCapacity: true)
    scratch.append(contentsOf: values)
    return scratch.withUnsafeMutableBufferPointer { kthLargestInPlace($0, k) }
}
