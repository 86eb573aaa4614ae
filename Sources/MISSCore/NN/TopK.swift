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
        if k < n {
            if k * 8 <= n, let top = byBuffer(scores, k: k) { return top }
            if k * 8 > n && !scores.contains(where: { $0.isNaN }) { return byThreshold(scores, k: k) }
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

    /// Small k (the GSUs' 50 of thousands): one pass that appends every entry above the current threshold
    /// to a buffer of 4k sortable keys; a full buffer is cut back to its k best, which raises the threshold.
    /// After the first few hundred entries almost every score loses one comparison against the threshold,
    /// and the cuts are rare (about k·ln(n/k) entries pass in all for shuffled scores). nil when a NaN is
    /// present (the general path orders those).
    // Key order = the total order: higher score, then lower index. Entries equal to the threshold that
    // come later have higher indices than every kept one, so they lose: `s > threshold` is exact.
    @inline(__always) static func key(_ s: Float, _ i: Int) -> UInt64 {
        let bits = (s == 0 ? 0 : s).bitPattern   // -0 and +0 are equal scores
        let ordered = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        return UInt64(ordered) << 32 | UInt64(UInt32.max - UInt32(i))
    }

    @inline(__always) static func score(_ key: UInt64) -> Float {
        let ordered = UInt32(key >> 32)
        return Float(bitPattern: ordered & 0x8000_0000 != 0 ? ordered & 0x7FFF_FFFF : ~ordered)
    }

    static let laneBits = SIMD16<UInt32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)

    static func byBuffer(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [Int]? {
        let n = scores.count
        let capacity = max(4 * k, 64)
        let p = scores.baseAddress!
        // Warm start: from a strided sample, a threshold that about 2k + 4·n/256 scores exceed, so that the
        // scan keeps few entries and rarely cuts. If fewer than k exceed it, scan again from -∞.
        var start = -Float.infinity
        if n >= 1024 {
            let samples = 256, stride = n / samples
            let rank = min(samples, (2 * k * samples) / n + 4)
            // The rank-th largest of the sample, kept in a small descending buffer: after the first few
            // samples almost every one loses its single comparison against the buffer's last entry.
            let sampled = withUnsafeTemporaryAllocation(of: Float.self, capacity: rank) { top -> Float? in
                var filled = 0
                for j in 0..<samples {
                    let x = p[j * stride]
                    if x != x { return nil }
                    if filled == rank {
                        if !(x > top[rank - 1]) { continue }
                    } else {
                        filled += 1
                    }
                    var slot = filled - 1
                    while slot > 0 && top[slot - 1] < x { top[slot] = top[slot - 1]; slot -= 1 }
                    top[slot] = x
                }
                return top[rank - 1]
            }
            guard let t = sampled else { return nil }
            start = t == -.infinity ? t : t.nextDown
        }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: capacity) { buffer -> [Int]? in
            let keys = buffer.baseAddress!
            for initial in start == -.infinity ? [start] : [start, -.infinity] {
                var threshold = initial
                var count = 0
                var i = 0
                /// Keeps entry j if it beats the threshold; false for a NaN (the general path orders those).
                @inline(__always) func examine(_ j: Int) -> Bool {
                    let s = p[j]
                    if s > threshold || (threshold == -.infinity && s == -.infinity) {
                        keys[count] = Self.key(s, j)
                        count += 1
                        if count == capacity {
                            // Cut: the k best keys to the front (quickselect); the threshold becomes the k-th score.
                            threshold = Self.score(kthLargestInPlace(UnsafeMutableBufferPointer(start: keys, count: count), k))
                            count = k
                        }
                        return true
                    }
                    return s == s
                }
                while i < n {
                    let end = min(n, i + 16)
                    // One SIMD test of the block: most blocks hold nothing above the threshold. `!(x <= t)` is
                    // true for x > t and for NaN, so a NaN always reaches the exact per-entry loop below.
                    // A flagged block visits only its flagged lanes (a 16-bit mask of them).
                    if end - i == 16 && threshold != -.infinity {
                        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
                        let flagged = .!(v .<= SIMD16<Float>(repeating: threshold))
                        if !any(flagged) { i = end; continue }
                        var mask = SIMD16<UInt32>(repeating: 0).replacing(with: Self.laneBits, where: flagged).wrappedSum()
                        while mask != 0 {
                            let j = i + mask.trailingZeroBitCount
                            mask &= mask - 1
                            guard examine(j) else { return nil }
                        }
                        i = end
                        continue
                    }
                    for j in i..<end { guard examine(j) else { return nil } }
                    i = end
                }
                guard count >= k || initial == -.infinity else { continue }
                let best = UnsafeMutableBufferPointer(start: keys, count: count)
                if count > k { _ = kthLargestInPlace(best, k) }
                var top = UnsafeMutableBufferPointer(start: keys, count: min(k, count))
                top.sort(by: >)
                return top.map { Int(UInt32.max - UInt32(truncatingIfNeeded: $0)) }
            }
            return nil
        }
    }
}

/// The k-th largest value (1 ≤ k ≤ count) of a NaN-free buffer, by Hoare-partition quickselect;
/// reorders the buffer so that the k largest come first (in no order). O(n) expected.
@_specialize(where T == Float)
@_specialize(where T == UInt64)
public func kthLargestInPlace<T: Comparable>(_ v: UnsafeMutableBufferPointer<T>, _ k: Int) -> T {
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
