/// Partial top-K selection in O(n) expected time (quickselect), used by both GSUs.
///
/// The order is total: higher score first, and among equal scores the lower index first. So
/// the result is exactly the first K of a full stable sort by descending score, ties included,
/// and it is the same on every run. NaN scores rank below every number.
public enum TopK {
    /// Indices of the `k` best scores, best first.
    public static func indices(_ scores: [Float], k: Int) -> [Int] {
        scores.withUnsafeBufferPointer { indices($0, k: k) }
    }

    public static func indices(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [Int] {
        let n = scores.count
        let k = min(max(k, 0), n)
        if k == 0 { return [] }
        if k < n && !scores.contains(where: { $0.isNaN }) {
            return k * 8 <= n ? byHeap(scores, k: k) : byThreshold(scores, k: k)
        }
        var idx = Array(0..<n)
        @inline(__always) func better(_ a: Int, _ b: Int) -> Bool {
            let sa = scores[a], sb = scores[b]
            if sa.isNaN || sb.isNaN {
                if sa.isNaN != sb.isNaN { return sb.isNaN }
                return a < b
            }
            return sa > sb || (sa == sb && a < b)
        }
        if k < n {
            idx.withUnsafeMutableBufferPointer { p in
                var lo = 0, hi = n - 1
                var budget = 2 * (Int.bitWidth - n.leadingZeroBitCount) + 8
                // Invariant: the k best are within p[0..<k] once lo...hi collapses around k-1.
                while lo < hi {
                    budget -= 1
                    if budget < 0 {
                        // Pathological pivots: finish with a sort of the remaining range.
                        let sorted = p[lo...hi].sorted(by: better)
                        for (o, v) in sorted.enumerated() { p[lo + o] = v }
                        break
                    }
                    // Median of three as pivot, moved to hi.
                    let mid = lo + (hi - lo) / 2
                    if better(p[mid], p[lo]) { p.swapAt(mid, lo) }
                    if better(p[hi], p[lo]) { p.swapAt(hi, lo) }
                    if better(p[mid], p[hi]) { p.swapAt(mid, hi) }
                    let pivot = p[hi]
                    var store = lo
                    for i in lo..<hi where better(p[i], pivot) {
                        p.swapAt(i, store)
                        store += 1
                    }
                    p.swapAt(store, hi)
                    if store == k - 1 { break }
                    if store < k - 1 { lo = store + 1 } else { hi = store - 1 }
                }
            }
            idx.removeLast(n - k)
        }
        idx.sort(by: better)
        return idx
    }

    /// The common case (no NaN): find the k-th largest value by quickselect on a plain float copy,
    /// take everything above it and, in index order, as many entries equal to it as still fit; then
    /// sort those k. Same result as the general path, several times faster (no index indirection).
    static func byThreshold(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [Int] {
        let n = scores.count
        var work = [Float](unsafeUninitializedCapacity: n) { buf, count in
            _ = buf.initialize(fromContentsOf: scores)
            count = n
        }
        let threshold = work.withUnsafeMutableBufferPointer { kthLargestInPlace($0, k) }
        var above = 0
        for s in scores where s > threshold { above += 1 }
        var equalSlots = k - above
        var out: [Int] = []
        out.reserveCapacity(k)
        for i in 0..<n {
            let s = scores[i]
            if s > threshold { out.append(i) } else if s == threshold && equalSlots > 0 { out.append(i); equalSlots -= 1 }
        }
        out.sort { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return out
    }

    /// Small k (the GSUs' 50 of thousands): one pass with a min-heap of the k best so far. After the
    /// first few hundred entries almost every score loses one comparison against the heap's root.
    static func byHeap(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [Int] {
        // Heap order: the root is the worst kept entry (lowest score; among equal scores the highest index).
        var heap = [Int](repeating: 0, count: k)
        @inline(__always) func worse(_ a: Int, _ b: Int) -> Bool {
            let sa = scores[a], sb = scores[b]
            return sa < sb || (sa == sb && a > b)
        }
        heap.withUnsafeMutableBufferPointer { h in
            func siftDown(_ start: Int) {
                var i = start
                while true {
                    let l = 2 * i + 1
                    if l >= k { return }
                    var c = l
                    if l + 1 < k && worse(h[l + 1], h[l]) { c = l + 1 }
                    if worse(h[c], h[i]) { h.swapAt(c, i); i = c } else { return }
                }
            }
            for i in 0..<k { h[i] = i }
            for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i) }
            var rootScore = scores[h[0]]
            for i in k..<scores.count {
                // Entries scanned later have larger indices, so a tie with the root loses.
                if scores[i] > rootScore {
                    h[0] = i
                    siftDown(0)
                    rootScore = scores[h[0]]
                }
            }
        }
        heap.sort { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return heap
    }
}

/// The k-th largest value (1 ≤ k ≤ count) of a NaN-free buffer, by Hoare-partition quickselect;
/// reorders the buffer. O(n) expected.
public func kthLargestInPlace(_ v: UnsafeMutableBufferPointer<Float>, _ k: Int) -> Float {
    precondition(k >= 1 && k <= v.count, "kthLargest: k = \(k) outside 1...\(v.count)")
    var lo = 0, hi = v.count - 1
    let target = k - 1
    while lo < hi {
        let pivot = v[lo + (hi - lo) / 2]
        var i = lo, j = hi
        while i <= j {
            while v[i] > pivot { i += 1 }
            while v[j] < pivot { j -= 1 }
            if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
        }
        if target <= j { hi = j } else if target >= i { lo = i } else { break }
    }
    return v[target]
}
