import Testing
@testable import MISSCore
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

    /// A window's products over its distinct keys, read by slot, are the products over every position, bit
    /// for bit, for any rows and ragged shapes; the packing chooses distinct keys only when they pay.
    @Test func productsOverDistinctKeysAreTheProductsOverEveryPosition() {
        var rng = Xoshiro256StarStar(seed: 62)
        for (rows, l, vocabulary, d) in [(40, 500, 30, 32), (13, 77, 5, 64), (7, 33, 33, 32), (6, 1000, 900, 64), (1, 20, 2, 40)] {
            let table = Matrix.randomNormal(vocabulary, d, using: &rng), q = Matrix.randomNormal(rows, d, using: &rng)
            let items = (0..<l).map { _ in Int32(rng.nextInt(below: vocabulary)) }
            let g = distinctPositions(items)
            let keys = SequenceKeys(rowsOf: table, at: items.map(Int.init), distinct: g.distinct.map { Int(items[$0]) }, slots: g.slots)
            let every = SequenceKeys(rowsOf: table, at: items.map(Int.init), distinct: g.distinct.map { Int(items[$0]) }, slots: g.slots,
                                     allowGrouping: false)
            #expect(keys.isGrouped == (g.distinct.count < l))
            #expect(keys.packed.count == (keys.isGrouped ? g.distinct.count : l))
            #expect(!every.isGrouped && every.packed.count == l && keys.count == l && every.count == l)
            let ldc = keys.stride + 3
            var a = [Float](repeating: .nan, count: rows * ldc), b = [Float](repeating: .nan, count: rows * (every.stride + 1))
            q.storage.withUnsafeBufferPointer { qb in
                a.withUnsafeMutableBufferPointer { keys.products(qb.baseAddress!, rows: rows, scale: 0.5, into: $0.baseAddress!, ldc: ldc) }
                b.withUnsafeMutableBufferPointer {
                    RelevanceKernel.products(qb.baseAddress!, rows: rows, keys: PackedKeys(rowsOf: table, at: items.map(Int.init)), scale: 0.5,
                                             into: $0.baseAddress!, ldc: every.stride + 1)
                }
            }
            let expected = (0..<rows).map { r in Array(b[(r * (every.stride + 1))..<(r * (every.stride + 1) + l)]) }
            a.withUnsafeBufferPointer { ab in
                for r in 0..<rows { #expect(keys.row(ab.baseAddress! + r * ldc).expanded() == expected[r], "\(rows)×\(l)×\(d) row \(r)") }
            }
            // The same through the blocked rows, and each row's top-K that of its expanded relevances.
            let got = parallelRowsOfRelevances(queries: q, keys: keys, scale: 0.5, block: 5, workers: 2) { r, row -> ([Float], [Int]) in
                var top = [Int](repeating: -1, count: 12)
                let n = top.withUnsafeMutableBufferPointer { row.topK(11, into: $0.baseAddress!) }
                return (row.expanded(), Array(top.prefix(n)))
            }
            for r in 0..<rows {
                #expect(got[r].0 == expected[r])
                #expect(got[r].1 == TopK.indices(expected[r], k: 11), "\(rows)×\(l)×\(d) row \(r): top-K")
            }
        }
        // Grouped as soon as one item repeats.
        #expect(SequenceKeys.groups(positions: 1000, distinct: 999) && !SequenceKeys.groups(positions: 1000, distinct: 1000))
        #expect(!SequenceKeys.groups(positions: 0, distinct: 0))
    }

    /// A grouped row's top-K against `TopK.indices` of its expanded relevances: ties everywhere (a key's
    /// positions share its product, and different keys get equal products: −0 and +0 too), NaN, and every k
    /// from 0 past the positions.
    @Test func groupedTopKIsTheTopKOfTheExpandedRow() {
        var rng = Xoshiro256StarStar(seed: 63)
        var cases = 0
        for trial in 0..<300 {
            let l = 1 + rng.nextInt(below: trial < 200 ? 120 : 3000), vocabulary = 1 + rng.nextInt(below: min(l, 40))
            let items = (0..<l).map { _ in Int32(rng.nextInt(below: vocabulary)) }
            let g = distinctPositions(items)
            // Products drawn from a few values, so that distinct keys tie; a 1×1 "query" of 1 times a 1-wide key.
            let palette: [Float] = [0.5, -0.25, 0, -0.0, 2, 0.5, 1e-3] + (trial % 7 == 0 ? [.nan] : [])
            let table = Matrix(rows: g.distinct.count, cols: 1, storage: (0..<g.distinct.count).map { _ in palette[rng.nextInt(below: palette.count)] })
            let keys = SequenceKeys(rowsOf: table, at: g.slots.map(Int.init), distinct: Array(0..<g.distinct.count), slots: g.slots,
                                    allowGrouping: false)
            // Grouped whatever the repeats (`grouped`), so that windows without any are tested too.
            let grouped = SequenceKeys(grouped: table, slots: g.slots)
            var products = [Float](repeating: 0, count: grouped.stride)
            let one: [Float] = [1]
            one.withUnsafeBufferPointer { qb in products.withUnsafeMutableBufferPointer { grouped.products(qb.baseAddress!, rows: 1, scale: 1, into: $0.baseAddress!, ldc: grouped.stride) } }
            let expanded = g.slots.map { table.storage[Int($0)] }
            #expect(!keys.isGrouped && grouped.isGrouped)
            products.withUnsafeBufferPointer { pb in
                let row = grouped.row(pb.baseAddress!)
                #expect(row.expanded().elementsEqual(expanded) { $0 == $1 || ($0.isNaN && $1.isNaN) })
                for k in Set([0, 1, 2, 5, 50, vocabulary, l - 1, l, l + 3]) where k >= 0 {
                    var top = [Int](repeating: -1, count: min(k, l) + 1)
                    let n = top.withUnsafeMutableBufferPointer { row.topK(k, into: $0.baseAddress!) }
                    #expect(Array(top.prefix(n)) == TopK.indices(expanded, k: k), "l \(l), \(g.distinct.count) keys, k \(k)")
                    cases += 1
                }
            }
        }
        #expect(cases > 2000)
    }
}
