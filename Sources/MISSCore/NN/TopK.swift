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
}
