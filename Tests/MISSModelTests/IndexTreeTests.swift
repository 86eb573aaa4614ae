import Foundation
import Testing
import MISSCore
import MISSData
import MISSModel
import MISSTestSupport

/// `clusters` well separated Gaussian blobs of `perCluster` points each, labels = blob index.
func blobs(clusters: Int, perCluster: Int, dim: Int = 8, seed: UInt64 = 1) -> (Matrix, [Int32]) {
    var rng = Xoshiro256StarStar(seed: seed)
    let centres = Matrix.randomNormal(clusters, dim, std: 10, using: &rng)
    var x = Matrix(rows: clusters * perCluster, cols: dim)
    var labels: [Int32] = []
    // Interleave blobs so that the input order says nothing about the clusters.
    for i in 0..<(clusters * perCluster) {
        let c = i % clusters
        labels.append(Int32(c))
        for j in 0..<dim { x[i, j] = centres[c, j] + Float(rng.nextNormal()) * 0.5 }
    }
    return (x, labels)
}

@Suite struct IndexTreeTests {
    @Test(arguments: [1, 2, 3, 5, 8, 13, 17, 100])
    func structureIsBalancedWithAllLeavesAtTheLastLevel(_ n: Int) throws {
        var rng = Xoshiro256StarStar(seed: UInt64(n))
        let tree = IndexTree.build(embeddings: .randomNormal(n, 4, using: &rng), kind: .multimodal)
        try tree.validate(source: "test")
        let expectedDepth = n == 1 ? 0 : Int((log2(Double(n))).rounded(.up))
        #expect(tree.leafLevel == expectedDepth)
        #expect(Set(tree.leafItems) == Set((0..<n).map(Int32.init)))
        for h in 0..<tree.leafLevel {
            for node in tree.nodes(atLevel: h) {
                let kids = tree.children(of: node).map { tree.leafCount(under: $0) }
                // Balanced: ⌈s/2⌉ and ⌊s/2⌋, or a single chain child for one item.
                let s = tree.leafCount(under: node)
                #expect(kids == (s == 1 ? [1] : [(s + 1) / 2, s / 2]))
            }
        }
    }

    @Test func nodeEmbeddingIsTheMeanOfItsLeaves() {
        var rng = Xoshiro256StarStar(seed: 4)
        let x = Matrix.randomNormal(37, 5, using: &rng)
        let tree = IndexTree.build(embeddings: x, kind: .multimodal)
        for node in [0, 1, 2, 5, 9, 20, tree.nodeCount - 1] {
            let items = tree.items(under: node)
            for j in 0..<5 {
                let mean = items.reduce(0.0) { $0 + Double(x[Int($1), j]) } / Double(items.count)
                #expect(abs(Double(tree.nodeEmbeddings[node, j]) - mean) < 1e-5)
            }
        }
        // Leaves carry their own item's embedding exactly.
        let p = 11
        #expect(tree.nodeEmbeddings.row(tree.leafNode(position: p)) == x.row(Int(tree.leafItems[p])))
    }

    @Test func twoMeansSeparatesClusters() {
        let (x, labels) = blobs(clusters: 4, perCluster: 16)
        let tree = IndexTree.build(embeddings: x, kind: .multimodal)
        let stats = tree.levelStatistics(labels: labels)
        // Four blobs of 16 in a tree over 64 leaves: every level-2 node should hold exactly one blob.
        #expect(stats[2].purity == 1.0)
        let random = IndexTree.build(embeddings: x, kind: .random).levelStatistics(labels: labels)
        #expect(random[2].purity < 0.7)
        #expect(stats[0].purity == 0.25)
    }

    @Test func sameSeedSameTreeWhateverTheThreadCount() {
        var rng = Xoshiro256StarStar(seed: 8)
        let x = Matrix.randomNormal(3000, 16, using: &rng)
        var one = IndexTree.BuildOptions(); one.workers = 1
        var two = IndexTree.BuildOptions(); two.workers = 2
        let a = IndexTree.build(embeddings: x, kind: .multimodal, options: one)
        let b = IndexTree.build(embeddings: x, kind: .multimodal, options: two)
        #expect(a.leafItems == b.leafItems && a.nodeEmbeddings == b.nodeEmbeddings)
        var other = IndexTree.BuildOptions(); other.seed = 99
        #expect(IndexTree.build(embeddings: x, kind: .random, options: other).leafItems
                != IndexTree.build(embeddings: x, kind: .random).leafItems)
    }

    @Test func ancestorsAgreeWithLeafRanges() {
        var rng = Xoshiro256StarStar(seed: 2)
        let tree = IndexTree.build(embeddings: .randomNormal(50, 3, using: &rng), kind: .multimodal)
        for h in 0...tree.leafLevel {
            let anc = tree.ancestorsOfLeaves(atLevel: h)
            for p in [0, 7, 49] {
                #expect(Int(anc[p]) == tree.ancestor(of: tree.leafNode(position: p), atLevel: h))
                #expect(tree.level(of: Int(anc[p])) == h)
            }
        }
    }

    @Test func fileRoundTripAndBadFiles() throws {
        let dir = try temporaryDirectory()
        var rng = Xoshiro256StarStar(seed: 3)
        let tree = IndexTree.build(embeddings: .randomNormal(40, 6, using: &rng), kind: .idEmbedding)
        let url = dir.appendingPathComponent("t.misstree")
        try tree.write(to: url)
        let back = try IndexTree.load(from: url, expectedItems: 40)
        #expect(back.kind == .idEmbedding && back.leafItems == tree.leafItems && back.parent == tree.parent)
        #expect(back.nodeEmbeddings == tree.nodeEmbeddings && back.levelStarts == tree.levelStarts)

        #expect(inputError { _ = try IndexTree.load(from: url, expectedItems: 41) }?.problem.contains("40 items") == true)

        let data = tree.fileData()
        let cut = dir.appendingPathComponent("cut.misstree")
        try data.prefix(data.count - 10).write(to: cut)
        let e = inputError { _ = try IndexTree.load(from: cut) }
        #expect(e?.file == cut.path && e?.fix.contains("miss build-tree") == true)

        var w = SafetensorsWriter(metadata: ["format": IndexTree.fileFormat, "version": "0"])
        w.add("x", floats: [1], shape: [1])
        let old = dir.appendingPathComponent("old.misstree")
        try w.write(to: old)
        #expect(inputError { _ = try IndexTree.load(from: old) }?.location == "__metadata__.version")

        var broken = tree
        broken.leafItems[0] = broken.leafItems[1]
        #expect(inputError { try broken.validate(source: "b") }?.location == "leaf_items")
    }

    @Test func nodeEmbeddingsFromOtherItemVectorsAreTheMeansOfTheirItems() {
        // Structure from one set of vectors, node embeddings from another (an ID-embedding tree keeps MM z_n).
        var rng = Xoshiro256StarStar(seed: 8)
        let shape = Matrix.randomNormal(37, 4, using: &rng)
        let mm = Matrix.randomNormal(37, 3, using: &rng)
        let tree = IndexTree.build(embeddings: shape, kind: .idEmbedding).withNodeEmbeddings(from: mm)
        #expect(tree.dim == 3 && tree.kind == .idEmbedding)
        for node in [0, 1, 2, tree.levelStarts[3], tree.nodeCount - 1] {
            let items = tree.items(under: node)
            for j in 0..<3 {
                let mean = items.reduce(0.0) { $0 + Double(mm[Int($1), j]) } / Double(items.count)
                #expect(abs(Double(tree.nodeEmbeddings[node, j]) - mean) < 1e-5)
            }
        }
        #expect(tree.leafItems == IndexTree.build(embeddings: shape, kind: .idEmbedding).leafItems)
    }
}
