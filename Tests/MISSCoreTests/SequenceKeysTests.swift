import Testing
import MISSCore
import MISSTestSupport

@Suite struct SequenceKeysTests {
    /// The grouping by hand: first positions in order, each position's group.
    @Test func distinctPositionsByHand() {
        let g = distinctPositions([7, 3, 7, 7, 0, 3, 9])
        #expect(g.distinct == [0, 1, 4, 6])
        #expect(g.slots == [0, 1, 0, 0, 2, 1, 3])
        let s = distinctPositions(suffixOf: g, from: 2)          // [7, 7, 0, 3, 9]
        #expect(s.distinct == [0, 2, 3, 4] && s.slots == [0, 0, 1, 2, 3])
        #expect(distinctPositions([]).distinct.isEmpty && distinctPositions(suffixOf: g, from: 7).slots.isEmpty)
    }

    /// Against a dictionary on long windows with many repeats (ids up to 2^31 − 1: the hash's top bits), and
    /// a suffix's grouping from the window's against the suffix's own.
    @Test func distinctPositionsMatchADictionary() {
        var rng = Xoshiro256StarStar(seed: 61)
        for (n, vocabulary) in [(4000, 900), (2000, 5), (37, 1000), (1, 1), (3000, 2_000_000_000)] {
            let items = (0..<n).map { _ in Int32(rng.nextInt(below: vocabulary)) }
            var first: [Int32: Int] = [:], distinct: [Int] = [], slots: [Int32] = []
            for (p, item) in items.enumerated() {
                if first[item] == nil { first[item] = distinct.count; distinct.append(p) }
                slots.append(Int32(first[item]!))
            }
            let g = distinctPositions(items)
            #expect(g.distinct == distinct && g.slots == slots, "\(n) of \(vocabulary)")
            for offset in [0, 1, n / 2, n] {
                let s = distinctPositions(suffixOf: g, from: offset), own = distinctPositions(Array(items[offset...]))
                #expect(s.distinct == own.distinct && s.slots == own.slots, "\(n): suffix from \(offset)")
            }
        }
    }

    /// A window's products over its distinct keys, read back by slot, are the products over every position,
    /// bit for bit, for any rows and ragged shapes; the packing chooses distinct keys only when they pay.
    @Test func productsOverDistinctKeysAreTheProductsOverEveryPosition() {
        var rng = Xoshiro256StarStar(seed: 62)
        for (rows, l, vocabulary, d) in [(40, 500, 30, 32), (13, 77, 5, 64), (7, 33, 33, 32), (6, 1000, 900, 64), (1, 20, 2, 40)] {
            let table = Matrix.randomNormal(vocabulary, d, using: &rng), q = Matrix.randomNormal(rows, d, using: &rng)
            let items = (0..<l).map { _ in Int32(rng.nextInt(below: vocabulary)) }
            let g = distinctPositions(items)
            let keys = SequenceKeys(rowsOf: table, at: items.map(Int.init), distinct: g.distinct.map { Int(items[$0]) }, slots: g.slots)
            let every = SequenceKeys(rowsOf: table, at: items.map(Int.init), distinct: g.distinct.map { Int(items[$0]) }, slots: g.slots,
                                     allowGathers: false)
            #expect((keys.slots != nil) == SequenceKeys.gathers(positions: l, distinct: g.distinct.count, dim: d))
            #expect(every.slots == nil && every.packed.count == l && keys.count == l && keys.paddedCount == every.packed.paddedCount)
            let ldc = keys.paddedCount + 3
            var a = [Float](repeating: .nan, count: rows * ldc), b = a
            var scratch = [Float](repeating: .nan, count: max(1, keys.scratchCount(rows: rows)))
            q.storage.withUnsafeBufferPointer { qb in
                a.withUnsafeMutableBufferPointer { ab in
                    scratch.withUnsafeMutableBufferPointer { sb in
                        keys.products(qb.baseAddress!, rows: rows, scale: 0.5, into: ab.baseAddress!, ldc: ldc, scratch: sb.baseAddress!)
                    }
                }
                b.withUnsafeMutableBufferPointer { bb in
                    RelevanceKernel.products(qb.baseAddress!, rows: rows, keys: PackedKeys(rowsOf: table, at: items.map(Int.init)), scale: 0.5,
                                             into: bb.baseAddress!, ldc: ldc)
                }
            }
            for r in 0..<rows { #expect(Array(a[(r * ldc)..<(r * ldc + l)]) == Array(b[(r * ldc)..<(r * ldc + l)]), "\(rows)×\(l)×\(d) row \(r)") }
            // The same through the blocked rows of products.
            let got = parallelRowsOfProducts(queries: q, keys: keys, scale: 0.5, block: 5, workers: 2) { _, s in Array(s) }
            for r in 0..<rows { #expect(got[r] == Array(b[(r * ldc)..<(r * ldc + l)])) }
        }
        // The cost rule: d 32 below half the positions, d 64 below three quarters, never at d 16.
        #expect(SequenceKeys.gathers(positions: 1000, distinct: 499, dim: 32) && !SequenceKeys.gathers(positions: 1000, distinct: 500, dim: 32))
        #expect(SequenceKeys.gathers(positions: 1000, distinct: 749, dim: 64) && !SequenceKeys.gathers(positions: 1000, distinct: 750, dim: 64))
        #expect(!SequenceKeys.gathers(positions: 1000, distinct: 1, dim: 16) && !SequenceKeys.gathers(positions: 0, distinct: 0, dim: 64))
    }
}
