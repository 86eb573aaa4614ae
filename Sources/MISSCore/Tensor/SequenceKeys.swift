/// A GSU's keys over a user's window, one key per position, for `RelevanceKernel`. A history that repeats
/// items repeats keys (an item's key is a function of the item alone). Then only the distinct keys are
/// packed, with each position's slot among them and each key's positions: `products` computes the distinct
/// products, and a `RelevanceRow` reads a position's through its slot and takes the top-K over the
/// distinct products. The same values and selections as packing every position (a product is one FMA
/// chain over the dimension, whatever its key's place in the panels), for a fraction of the FLOPs. A
/// window without repeats packs every position, and `products` is `RelevanceKernel.products` over them.
public struct SequenceKeys: Sendable {
    /// The packed keys: the distinct ones (in order of first position) when grouped, else every position.
    public let packed: PackedKeys
    /// Positions (L).
    public let count: Int
    let groups: Groups?

    /// Which positions share a key: each position's slot (its key's index in `packed`) and, per slot, its
    /// positions in order (CSR). Allocated once per window, read through pointers by `RelevanceRow`s (the
    /// context that holds the keys outlives every row).
    final class Groups: @unchecked Sendable {
        let slots: UnsafeMutablePointer<Int32>          // count
        let starts: UnsafeMutablePointer<Int32>         // distinct + 1
        let positions: UnsafeMutablePointer<Int32>      // count, ascending within a slot
        let distinct: Int

        init(slots s: [Int32], distinct: Int) {
            let n = s.count
            self.distinct = distinct
            slots = .allocate(capacity: max(1, n))
            starts = .allocate(capacity: distinct + 1)
            positions = .allocate(capacity: max(1, n))
            slots.initialize(repeating: 0, count: max(1, n))
            starts.initialize(repeating: 0, count: distinct + 1)
            positions.initialize(repeating: 0, count: max(1, n))
            for (p, slot) in s.enumerated() { slots[p] = slot; starts[Int(slot) + 1] += 1 }
            for u in 0..<distinct { starts[u + 1] += starts[u] }
            var next = [Int32](UnsafeBufferPointer(start: starts, count: distinct))
            for p in 0..<n { let u = Int(s[p]); positions[Int(next[u])] = Int32(p); next[u] += 1 }
        }

        deinit { slots.deallocate(); starts.deallocate(); positions.deallocate() }
    }

    public var dim: Int { packed.dim }
    /// Whether only the distinct keys are packed.
    public var isGrouped: Bool { groups != nil }
    /// Products per query row that `products` writes (`ldc` ≥ this): one per packed key, padded to the panels.
    public var stride: Int { packed.paddedCount }

    /// Every position packed (no groups).
    public init(_ packed: PackedKeys) {
        self.packed = packed
        groups = nil
        count = packed.count
    }

    /// Position l's key is row `rows[l]` of `table`; `distinct` (first positions' rows, in order) and `slots`
    /// (position → index in `distinct`) say which positions share a key (the caller's grouping, by item:
    /// `table[distinct[slots[l]]]` must equal `table[rows[l]]`). Packs the distinct keys when some repeat
    /// (`groups`) and `allowGrouping`, else every position.
    public init(rowsOf table: Matrix, at rows: [Int], distinct: [Int], slots: [Int32], allowGrouping: Bool = true) {
        precondition(slots.count == rows.count, "SequenceKeys: \(slots.count) slots for \(rows.count) positions")
        precondition(slots.allSatisfy { $0 >= 0 && Int($0) < distinct.count }, "SequenceKeys: a slot out of 0..<\(distinct.count)")
        count = rows.count
        if allowGrouping && Self.groups(positions: rows.count, distinct: distinct.count) {
            packed = PackedKeys(rowsOf: table, at: distinct)
            groups = Groups(slots: slots, distinct: distinct.count)
        } else {
            packed = PackedKeys(rowsOf: table, at: rows)
            groups = nil
        }
    }

    /// Grouped whatever the repeats: the rows of `distinctKeys` as the packed keys, position l's key row
    /// `slots[l]` (tests of the grouped paths on any window).
    init(grouped distinctKeys: Matrix, slots: [Int32]) {
        precondition(slots.allSatisfy { $0 >= 0 && Int($0) < distinctKeys.rows }, "SequenceKeys: a slot out of 0..<\(distinctKeys.rows)")
        packed = PackedKeys(distinctKeys)
        groups = Groups(slots: slots, distinct: distinctKeys.rows)
        count = slots.count
    }

    /// Grouping pays whenever a window repeats an item: a row then costs the distinct products and a top-K
    /// over them (`RelevanceRow.topK`), against every position's product and a top-K over all of them; what
    /// it adds is once per window (the grouping, the positions by key).
    public static func groups(positions: Int, distinct: Int) -> Bool { distinct < positions }

    /// The products (q_r · key) · scale of the `rows` query rows at `q` (d apart) with every packed key, into
    /// `out` (`ldc` ≥ `stride` apart): `RelevanceKernel.products`. `row(out + r · ldc)` reads row r as the
    /// window's relevances.
    public func products(_ q: UnsafePointer<Float>, rows: Int, scale: Float, into out: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(ldc >= stride, "SequenceKeys: ldc \(ldc) < \(stride)")
        RelevanceKernel.products(q, rows: rows, keys: packed, scale: scale, into: out, ldc: ldc)
    }

    /// One query row's products (as `products` wrote them at `values`) as the relevances of the window's positions.
    public func row(_ values: UnsafePointer<Float>) -> RelevanceRow {
        RelevanceRow(values: values, count: count, slots: groups?.slots, starts: groups?.starts, positions: groups?.positions,
                     distinct: groups?.distinct ?? count)
    }
}

/// One query row's relevances over a window of `count` positions: the products with the window's keys,
/// read through the positions' slots when the keys are grouped (`SequenceKeys`). Valid while the keys and
/// the products are.
public struct RelevanceRow {
    public let values: UnsafePointer<Float>
    public let count: Int
    let slots: UnsafePointer<Int32>?
    let starts: UnsafePointer<Int32>?
    let positions: UnsafePointer<Int32>?
    let distinct: Int

    /// The relevance of position l.
    @inline(__always) public subscript(l: Int) -> Float {
        if let slots { return values[Int(slots[l])] }
        return values[l]
    }

    /// Every position's relevance, in order.
    public func expanded() -> [Float] { (0..<count).map { self[$0] } }

    /// `TopK.indices(_:k:into:)` of the expanded row — the k best positions, higher relevance first, then lower
    /// position — with the same room and count, min(k, count). Grouped: the top min(k, distinct) keys by
    /// `TopK` over the distinct products (ties by slot, which is the order of first positions), then their
    /// positions in that order, a run of keys with equal products merged by position. Every position of the
    /// row's top k belongs to one of those keys: a key ahead of it in their order (a larger product, or an
    /// equal one first seen earlier) has a position ahead of it in the row's order, and fewer than k are.
    @inline(__always) public func topK(_ k: Int, into top: UnsafeMutablePointer<Int>) -> Int {
        guard slots != nil, let starts, let positions else {
            return TopK.indices(UnsafeBufferPointer(start: values, count: count), k: k, into: top)
        }
        let k = min(max(k, 0), count)
        if k == 0 { return 0 }
        let kd = min(k, distinct)
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: kd + 1) { keys -> Int in
            let best = keys.baseAddress!
            let got = TopK.indices(UnsafeBufferPointer(start: values, count: distinct), k: kd, into: best)
            var n = 0, i = 0
            while n < k && i < got {
                let s = values[best[i]]
                if s.isNaN { break }
                var j = i + 1
                while j < got && values[best[j]] == s { j += 1 }
                if j == i + 1 {
                    let u = best[i], from = Int(starts[u]), take = min(k - n, Int(starts[u + 1]) - from)
                    for t in 0..<take { top[n + t] = Int(positions[from + t]) }
                    n += take
                } else {
                    // Distinct keys with equal products (rare): their positions merged in order.
                    var merged: [Int] = []
                    for t in i..<j { let u = best[t]; for p in Int(starts[u])..<Int(starts[u + 1]) { merged.append(Int(positions[p])) } }
                    merged.sort()
                    for p in merged.prefix(k - n) { top[n] = p; n += 1 }
                }
                i = j
            }
            if n < k {
                // A NaN product: `TopK`'s order for NaN (last, by position) on the expanded row.
                let row = expanded()
                return row.withUnsafeBufferPointer { TopK.indices($0, k: k, into: top) }
            }
            return k
        }
    }
}

/// Groups a window's items: `distinct` holds the first position of each distinct item, in order, and
/// `slots` each position's index in `distinct`. Open addressing with linear probing over a power-of-two
/// table of at least twice the window (a few ns per position: no dictionary).
public func distinctPositions(_ items: [Int32]) -> (distinct: [Int], slots: [Int32]) {
    let n = items.count
    if n == 0 { return ([], []) }
    var size = 16, bits = 4
    while size < 2 * n { size <<= 1; bits += 1 }
    let mask = size - 1, shift = UInt32(32 - bits)
    var keys = [Int32](repeating: -1, count: size), values = [Int32](repeating: 0, count: size)
    var distinct: [Int] = [], slots = [Int32](repeating: 0, count: n)
    distinct.reserveCapacity(n)
    keys.withUnsafeMutableBufferPointer { kb in
    values.withUnsafeMutableBufferPointer { vb in
    slots.withUnsafeMutableBufferPointer { sb in
        for (p, item) in items.enumerated() {
            precondition(item >= 0, "distinctPositions: item \(item) at position \(p)")
            var h = Int((UInt32(bitPattern: item) &* 0x9E37_79B1) >> shift)   // Fibonacci hashing: the product's top bits
            while true {
                let key = kb[h]
                if key == item { sb[p] = vb[h]; break }
                if key < 0 {
                    kb[h] = item
                    vb[h] = Int32(distinct.count)
                    sb[p] = Int32(distinct.count)
                    distinct.append(p)
                    break
                }
                h = (h + 1) & mask
            }
        }
    }}}
    return (distinct, slots)
}

/// `distinctPositions` of the suffix of a window from `offset` on, from the window's own grouping (a
/// shorter window of the same history: Co-GSU's last L_co of MM-GSU's last L_mm).
public func distinctPositions(suffixOf groups: (distinct: [Int], slots: [Int32]), from offset: Int) -> (distinct: [Int], slots: [Int32]) {
    precondition(offset >= 0 && offset <= groups.slots.count, "distinctPositions: suffix from \(offset) of \(groups.slots.count)")
    let n = groups.slots.count - offset
    var remap = [Int32](repeating: -1, count: groups.distinct.count)
    var distinct: [Int] = [], slots = [Int32](repeating: 0, count: n)
    for i in 0..<n {
        let s = Int(groups.slots[offset + i])
        if remap[s] < 0 { remap[s] = Int32(distinct.count); distinct.append(i) }
        slots[i] = remap[s]
    }
    return (distinct, slots)
}
