/// Partial top-K selection in O(n) expected time, used by both GSUs: group maxima and a floor whenever
/// k is at most half the row (the GSUs' 50 of hundreds or thousands); ranks counted by SIMD comparisons
/// for other rows of up to 512 scores (a short history, or k a large part of the row); a buffered scan
/// when group maxima decline (NaN in most groups), quickselect for long rows with a large k.
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
        [Int](unsafeUninitializedCapacity: min(max(k, 0), scores.count) + 1) { out, initialized in
            initialized = indices(scores, k: k, into: out.baseAddress!)
        }
    }

    /// The same indices, written to `out` (room for min(k, n) + 1), and their count min(k, n): no array on the
    /// group-maxima and rank paths (the GSUs' rows), the other paths' array copied.
    public static func indices(_ scores: UnsafeBufferPointer<Float>, k: Int, into out: UnsafeMutablePointer<Int>) -> Int {
        let n = scores.count
        let k = min(max(k, 0), n)
        if k == 0 { return 0 }
        if takesGroupMaxima(n: n, k: k) {
            if byGroupMaxima(scores, k: k, into: out) { return k }
        } else if n <= rankLimit {
            return byRank(scores, k: k, into: out)
        }
        let top = withoutGroupMaxima(scores, k: k)
        top.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: top.count) }
        return top.count
    }

    /// Whether a row of n scores tries `byGroupMaxima` first for its top k (1 ≤ k ≤ n): the GSUs' small k of
    /// a longer row.
    @inline(__always) static func takesGroupMaxima(n: Int, k: Int) -> Bool { k < n && k * 2 <= n && n >= 32 }

    /// The top k (1 ≤ k ≤ n) by the other paths: where group maxima do not apply or decline (NaN).
    static func withoutGroupMaxima(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [Int] {
        let n = scores.count
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

    @inline(__always) static func index(_ key: UInt64) -> Int { Int(UInt32.max - UInt32(truncatingIfNeeded: key)) }

    /// The set lanes of `flags` as the bits of a 16-bit mask (lane l is bit l). The obvious
    /// `(flags & [1, 2, 4, …]).wrappedSum()` compiles to one movemask in some functions and to ≈ 40 shuffles
    /// in others (the group-maxima candidates' loop: 8 % slower on SampleData's Co-GSU training rows,
    /// alternated in one process). This form is short everywhere: the lanes narrowed to bytes (0x00 or
    /// 0xFF), then each half's 8 bytes gathered into 8 bits by one multiplication (byte i's low bit lands
    /// on bit 56 + i, and no two partial products overlap, so nothing carries into those bits).
    @inline(__always) static func laneMask(_ flags: SIMDMask<SIMD16<Int32>>) -> UInt32 {
        let bytes = SIMD16<UInt8>(truncatingIfNeeded: unsafeBitCast(flags, to: SIMD16<Int32>.self))
        let halves = unsafeBitCast(bytes, to: SIMD2<UInt64>.self)
        let ones: UInt64 = 0x0101_0101_0101_0101, gather: UInt64 = 0x0102_0408_1020_4080
        let low = ((halves[0] & ones) &* gather) >> 56, high = ((halves[1] & ones) &* gather) >> 56
        return UInt32(truncatingIfNeeded: low | high << 8)
    }

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
                        var mask = Self.laneMask(flagged)
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
                return top.map(Self.index)
            }
            return nil
        }
    }
}

extension TopK {
    /// Small k of a longer row (n ≥ 2k, n ≥ 32): the GSUs' 50 of hundreds or thousands. Three cheap passes:
    /// 1. Group maxima. The row is read as vectors of 16; vector v goes to maxima vector v mod m (m = 4k/16,
    ///    about 4k groups whatever the row's length), so the maxima of 16 groups are one running vertical
    ///    SIMD max (no horizontal work) and each group samples the whole row: a run of neighbouring high
    ///    scores (a user's recent interest) spreads over many groups instead of filling a few.
    /// 2. A floor t such that at least k groups have a maximum ≥ t, by bisection over the maxima (counts
    ///    that vectorise). Each such group holds a score ≥ t, so at least k scores are ≥ t, and the k best
    ///    (all ≥ the k-th best score ≥ t) are among the scores ≥ t: for unordered scores about 1.2k of
    ///    them (the k-th of 4k group maxima is about their upper quartile), not hundreds or thousands.
    /// 3. One SIMD scan for the vectors holding a score ≥ t (their positions written branch-free), then the
    ///    flagged lanes of those few vectors become sortable keys; a full buffer is cut back to its k best,
    ///    raising the floor (ties with the floor stay: the row is not visited in index order after a cut).
    /// NaN ranks below every number, so it never reaches the floor and is simply never a candidate; a lane
    /// that starts with NaN keeps a NaN maximum and is not counted. The indices are written to `o` (room for
    /// k + 1: the slot past the k is scratch); false (no result) when fewer than k groups have a number for a
    /// maximum (the general path orders NaNs).
    static func byGroupMaxima(_ scores: UnsafeBufferPointer<Float>, k: Int, into o: UnsafeMutablePointer<Int>) -> Bool {
        let n = scores.count
        let p = scores.baseAddress!
        // m maxima vectors: vector v of the row goes to maxima vector v mod m, so group (j, lane) holds the
        // scores 16·(j + i·m) + lane, spread over the whole row.
        let vectors = n / 16, remainder = n - vectors * 16
        let m = min(vectors, max(1, (4 * k + 15) / 16))
        // Groups: 16 per maxima vector, 1 for the last < 16 scores.
        let groups = m * 16 + (remainder > 0 ? 1 : 0)
        guard k >= 1, vectors >= 1, groups >= k else { return false }
        @inline(__always) func vector(_ i: Int) -> SIMD16<Float> {
            UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
        }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: groups + 16) { maximaBuffer -> Bool in
            let maxima = maximaBuffer.baseAddress!
            @inline(__always) func maximaVector(_ g: Int) -> SIMD16<Float> {
                UnsafeRawPointer(maxima + g).loadUnaligned(as: SIMD16<Float>.self)
            }
            for j in 0..<m { UnsafeMutableRawPointer(maxima + 16 * j).storeBytes(of: vector(16 * j), as: SIMD16<Float>.self) }
            var v = m
            while v < vectors {
                for j in 0..<min(m, vectors - v) {
                    let x = vector(16 * (v + j)), cur = maximaVector(16 * j)
                    UnsafeMutableRawPointer(maxima + 16 * j).storeBytes(of: cur.replacing(with: x, where: x .> cur), as: SIMD16<Float>.self)
                }
                v += m
            }
            if remainder > 0 {
                var mx = -Float.infinity
                for i in (vectors * 16)..<n { let x = p[i]; mx = x > mx ? x : mx }
                maxima[groups - 1] = mx
            }

            // 2. The floor, by bisection on its value. Invariant: at least k groups have a maximum ≥ lo.
            // The padding is NaN: never a minimum, maximum or number, and never ≥ anything.
            let padded = (groups + 15) / 16 * 16
            for g in groups..<padded { maxima[g] = .nan }
            @inline(__always) func groupsReaching(_ t: Float) -> Int {
                var count = SIMD16<Int32>(repeating: 0)
                let threshold = SIMD16<Float>(repeating: t)
                for g in stride(from: 0, to: padded, by: 16) {
                    count &-= unsafeBitCast(maximaVector(g) .>= threshold, to: SIMD16<Int32>.self)   // true lanes are -1
                }
                return Int(count.wrappedSum())
            }
            var lows = SIMD16<Float>(repeating: .infinity), highs = SIMD16<Float>(repeating: -.infinity)
            var numberLanes = SIMD16<Int32>(repeating: 0)
            for g in stride(from: 0, to: padded, by: 16) {
                let m = maximaVector(g)
                lows = lows.replacing(with: m, where: m .< lows)
                highs = highs.replacing(with: m, where: m .> highs)
                numberLanes &-= unsafeBitCast(m .== m, to: SIMD16<Int32>.self)
            }
            var lo = lows.min(), hi = highs.max()
            let numbers = Int(numberLanes.wrappedSum())
            guard numbers >= k else { return false }
            if lo.isFinite && hi.isFinite {
                if groupsReaching(hi) >= k {
                    lo = hi
                } else {
                    // Stop once the floor keeps at most k + k/4 groups (or the interval cannot shrink), or after
                    // 6 steps if it keeps at most 2k: any floor that k groups reach gives the same result, a lower
                    // one only more candidates. Rows of distinct scores reach the window in ≈ 5 steps; rows with
                    // many ties (a history that repeats items) jump over it and take ≈ 11; stopping at 6 makes the
                    // top-K of training rows with ≈ 26 % distinct scores (a synthetic world whose users re-watch
                    // heavily) 4–5 % faster for Co-GSU, ≈ 1 % for MM-GSU (alternated in one process over the rows
                    // `miss bench topk --data` times).
                    var reachingLo = numbers
                    for step in 0..<40 {
                        if step >= 6 && reachingLo <= 2 * k { break }
                        let mid = lo / 2 + hi / 2
                        if !(mid > lo && mid < hi) { break }
                        let reaching = groupsReaching(mid)
                        if reaching >= k {
                            lo = mid
                            reachingLo = reaching
                            if reaching <= k + k / 4 { break }
                        } else {
                            hi = mid
                        }
                    }
                }
            }

            // 3. The candidates: the scores ≥ floor.
            let capacity = max(4 * k, 64)
            return withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(1, vectors)) { flaggedBuffer -> Bool in
                let flagged = flaggedBuffer.baseAddress!
                var flaggedCount = 0
                let floorVector = SIMD16<Float>(repeating: lo)
                for v in 0..<vectors {
                    flagged[flaggedCount] = Int32(truncatingIfNeeded: v)
                    flaggedCount &+= any(vector(16 * v) .>= floorVector) ? 1 : 0
                }
                return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: capacity + 16) { buffer -> Bool in
                    let keys = buffer.baseAddress!
                    var floor = lo
                    var count = 0
                    for f in 0...flaggedCount {
                        if count > capacity - 16 {
                            // The k best keys to the front; the floor becomes the k-th score (ties kept).
                            floor = Self.score(kthLargestInPlace(UnsafeMutableBufferPointer(start: keys, count: count), k))
                            count = k
                        }
                        if f < flaggedCount {
                            // A flagged vector: only its lanes ≥ floor (a 16-bit mask of them).
                            let base = 16 * Int(flagged[f])
                            var mask = Self.laneMask(vector(base) .>= SIMD16<Float>(repeating: floor))
                            // The first two flagged lanes without a branch: most flagged vectors hold one or two,
                            // in no predictable pattern. Where there are fewer, the write lands past the count
                            // and is not counted (lane 15 of the vector stands in for a missing lane).
                            for _ in 0..<2 {
                                let i = base + (mask | 0x8000).trailingZeroBitCount
                                keys[count] = Self.key(p[i], i)
                                count &+= mask != 0 ? 1 : 0
                                mask &= mask &- 1
                            }
                            while mask != 0 {
                                let i = base + mask.trailingZeroBitCount
                                mask &= mask - 1
                                keys[count] = Self.key(p[i], i)
                                count &+= 1
                            }
                        } else {
                            // The last < 16 scores.
                            for i in (vectors * 16)..<n {
                                let s = p[i]
                                keys[count] = Self.key(s, i)
                                count &+= s >= floor ? 1 : 0
                            }
                        }
                    }
                    guard count >= k else { return false }
                    if count > 2 * k {
                        _ = kthLargestInPlace(UnsafeMutableBufferPointer(start: keys, count: count), k)
                        count = k
                    }
                    // Each candidate's rank is the number of larger keys, the k best straight to their places
                    // (`placeByRank`): cheaper than sorting the few dozen candidates.
                    Self.placeByRank(count, k: k, into: o, key: { keys[$0] }, index: { Self.index(keys[$0]) })
                    return true
                }
            }
        }
    }
}

extension TopK {
    /// The longest row `byRank` takes (where group maxima do not apply: k > n/2 or n < 32). Its cost grows
    /// as n², but up to here it beat the quickselect and sort it replaces: top-50 of 40, 60 and 90 scores
    /// 0.27 / 0.61 / 0.95 µs against 1.39 / 2.62 / 3.72; top-200 of 256 4.95 against 14.83 µs; top-300 of
    /// 512 17.7 against 28.6 µs (`miss bench topk`). Group maxima stay faster from n = 2k on (top-50 of
    /// 110: 0.95 against 1.10 µs).
    static let rankLimit = 512

    /// A short row's top k (1 ≤ k ≤ n): every score's rank in the total order (the number of scores ahead of
    /// it), counted by comparing its sortable key with every other key, 8 ranks at a time; the k with a rank
    /// below k go straight to their places. NaN gets the lowest key (below −∞; NaNs among themselves by index).
    static func byRank(_ scores: UnsafeBufferPointer<Float>, k: Int, into o: UnsafeMutablePointer<Int>) -> Int {
        placeByRank(scores.count, k: k, into: o, key: { i in
            let s = scores[i]
            return s.isNaN ? UInt64(UInt32.max - UInt32(truncatingIfNeeded: i)) : Self.key(s, i)
        }, index: { $0 })
        return k
    }

    /// Of `count` distinct sortable keys (`key(i)`, i < count), writes `index(i)` at o[rank] for the k with the
    /// highest keys, rank 0 the highest: each rank is the number of larger keys, counted for 8 keys at once
    /// as signed 64-bit comparisons against every key in turn. Ranks ≥ k land on o[k], the slot past the k
    /// (scratch: branch-free, as they come in no predictable pattern).
    @inline(__always)
    static func placeByRank(_ count: Int, k: Int, into o: UnsafeMutablePointer<Int>, key: (Int) -> UInt64, index: (Int) -> Int) {
        let padded = (count + 7) / 8 * 8
        withUnsafeTemporaryAllocation(of: Int64.self, capacity: padded) { buffer in
            let signed = buffer.baseAddress!
            for i in 0..<count { signed[i] = Int64(bitPattern: key(i) ^ 0x8000_0000_0000_0000) }
            for i in count..<padded { signed[i] = .min }    // never larger than a key
            let lanes = UnsafeRawPointer(signed)
            for block in stride(from: 0, to: padded, by: 8) {
                let x = lanes.load(fromByteOffset: 8 * block, as: SIMD8<Int64>.self)
                var larger = SIMD8<Int64>()
                for c in 0..<count {
                    larger &-= unsafeBitCast(SIMD8<Int64>(repeating: signed[c]) .> x, to: SIMD8<Int64>.self)
                }
                for lane in 0..<min(8, count - block) { o[min(Int(larger[lane]), k)] = index(block + lane) }
            }
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
