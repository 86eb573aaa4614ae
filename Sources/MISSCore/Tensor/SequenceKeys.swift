/// A GSU's keys over a user's window, one key per position, for `RelevanceKernel`. A history that repeats
/// items repeats keys (an item's key is a function of the item alone). When few positions are distinct,
/// only the distinct keys are packed, with each position's slot among them, and `products` computes the
/// distinct products and reads them back position by position: the same values as packing every position
/// (a product is one FMA chain over the dimension, whatever its key's place in the panels), for a fraction
/// of the FLOPs. When most positions are distinct every position is packed, and `products` is
/// `RelevanceKernel.products`.
public struct SequenceKeys: Sendable {
    /// The packed keys: the distinct ones (in order of first position) when `slots` is set, else every position.
    public let packed: PackedKeys
    /// Position → its key's index in `packed`; nil when every position is packed.
    public let slots: [Int32]?
    /// Positions (L).
    public let count: Int

    public var dim: Int { packed.dim }
    /// Products per query row when every position is packed: `ldc` ≥ this (`products` writes the first `count`).
    public var paddedCount: Int { (count + PackedKeys.panelWidth - 1) / PackedKeys.panelWidth * PackedKeys.panelWidth }
    /// Floats of scratch that `products` needs for `rows` query rows.
    public func scratchCount(rows: Int) -> Int { slots == nil ? 0 : rows * packed.paddedCount }

    /// Every position packed (no slots).
    public init(_ packed: PackedKeys) {
        self.packed = packed
        slots = nil
        count = packed.count
    }

    /// Position l's key is row `rows[l]` of `table`; `distinct` (first positions' rows, in order) and `slots`
    /// (position → index in `distinct`) say which positions share a key (the caller's grouping, by item:
    /// `table[distinct[slots[l]]]` must equal `table[rows[l]]`). Packs the distinct keys when that is cheaper
    /// (`gathers`) and `allowGathers`, else every position.
    public init(rowsOf table: Matrix, at rows: [Int], distinct: [Int], slots: [Int32], allowGathers: Bool = true) {
        precondition(slots.count == rows.count, "SequenceKeys: \(slots.count) slots for \(rows.count) positions")
        precondition(slots.allSatisfy { $0 >= 0 && Int($0) < distinct.count }, "SequenceKeys: a slot out of 0..<\(distinct.count)")
        count = rows.count
        if allowGathers && Self.gathers(positions: rows.count, distinct: distinct.count, dim: table.cols) {
            packed = PackedKeys(rowsOf: table, at: distinct)
            self.slots = slots
        } else {
            packed = PackedKeys(rowsOf: table, at: rows)
            self.slots = nil
        }
    }

    /// Reading a product back costs about one cycle per position, ≈ `gatherCost` FLOPs of the kernel
    /// (≈ 28 FLOP per cycle per core): distinct keys pay when distinct · 2d + L · gatherCost < L · 2d, i.e.
    /// at d 32 below ≈ half the positions, at d 64 below ≈ three quarters.
    public static let gatherCost = 32

    public static func gathers(positions: Int, distinct: Int, dim: Int) -> Bool {
        positions > 0 && distinct * 2 * dim + positions * gatherCost < positions * 2 * dim
    }

    /// out[r·ldc + l] = (q_r · key_l) · scale for the `rows` query rows at `q` (d apart) and every position
    /// l < count: `RelevanceKernel.products`' values. `scratch` holds `scratchCount(rows:)` floats.
    public func products(_ q: UnsafePointer<Float>, rows: Int, scale: Float, into out: UnsafeMutablePointer<Float>, ldc: Int,
                         scratch: UnsafeMutablePointer<Float>?) {
        precondition(ldc >= count, "SequenceKeys: ldc \(ldc) < \(count)")
        guard let slots else {
            precondition(ldc >= packed.paddedCount, "SequenceKeys: ldc \(ldc) < \(packed.paddedCount)")
            RelevanceKernel.products(q, rows: rows, keys: packed, scale: scale, into: out, ldc: ldc)
            return
        }
        guard let scratch else { preconditionFailure("SequenceKeys: products over distinct keys need scratch") }
        let lds = packed.paddedCount, l = count
        RelevanceKernel.products(q, rows: rows, keys: packed, scale: scale, into: scratch, ldc: lds)
        slots.withUnsafeBufferPointer { s in
            let slot = s.baseAddress!
            for r in 0..<rows {
                let from = scratch + r * lds, to = out + r * ldc
                for i in 0..<l { to[i] = from[Int(slot[i])] }
            }
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
