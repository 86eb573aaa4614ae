import Foundation
import MISSCore

/// The index tree of §4.1: a binary tree whose leaves are items, all at level H (root at level 0).
///
/// Nodes are numbered level by level (breadth first). A node's children are contiguous in the next
/// level, so the leaves under any node form one contiguous range of leaf positions; a node with a
/// single item continues as a chain of single children down to its leaf, which keeps every leaf
/// at the same level while the tree stays balanced (sizes ⌈s/2⌉ and ⌊s/2⌋ at every split).
public struct IndexTree: Sendable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Built from frozen multi-modal embeddings (MISS).
        case multimodal
        /// Built from learned ID embeddings (TDM, and the "w/o MM tree" ablation).
        case idEmbedding = "id-embedding"
        /// Items in random order (a baseline for the tree's quality).
        case random
    }

    public var kind: Kind
    /// Nodes of level h are `levelStarts[h] ..< levelStarts[h + 1]`; count = levels + 1.
    public var levelStarts: [Int]
    /// Parent node of each node (-1 for the root).
    public var parent: [Int32]
    /// Children of node n: `childStart[n] ..< childStart[n] + childCount[n]` (empty for leaves).
    public var childStart: [Int32]
    public var childCount: [Int32]
    /// Leaves under node n: leaf positions `leafStart[n] ..< leafEnd[n]`.
    public var leafStart: [Int32]
    public var leafEnd: [Int32]
    /// Item at each leaf position (leaf position p is node `levelStarts[H] + p`).
    public var leafItems: [Int32]
    /// Eq. 3: a leaf's embedding is its item's; an inner node's is the mean over its leaves.
    public var nodeEmbeddings: Matrix

    /// Level of the leaves (H); the tree has H + 1 levels.
    public var leafLevel: Int { levelStarts.count - 2 }
    public var nodeCount: Int { parent.count }
    public var itemCount: Int { leafItems.count }
    public var dim: Int { nodeEmbeddings.cols }

    public func nodes(atLevel h: Int) -> Range<Int> { levelStarts[h]..<levelStarts[h + 1] }

    public func level(of node: Int) -> Int {
        var lo = 0, hi = levelStarts.count - 2
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if levelStarts[mid] <= node { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    public func children(of node: Int) -> Range<Int> {
        Int(childStart[node])..<(Int(childStart[node]) + Int(childCount[node]))
    }

    public func leafNode(position p: Int) -> Int { levelStarts[leafLevel] + p }

    /// Items under a node (the leaves of its subtree).
    /// The item of a leaf-level node.
    public func item(ofLeaf node: Int) -> Int32 { leafItems[node - levelStarts[leafLevel]] }

    public func items(under node: Int) -> ArraySlice<Int32> { leafItems[Int(leafStart[node])..<Int(leafEnd[node])] }

    public func leafCount(under node: Int) -> Int { Int(leafEnd[node] - leafStart[node]) }

    /// item → leaf position.
    public func itemLeafPositions() -> [Int32] {
        var out = [Int32](repeating: -1, count: itemCount)
        for (p, item) in leafItems.enumerated() { out[Int(item)] = Int32(p) }
        return out
    }

    /// Anc(n; h): the ancestor of `node` at level h (the node itself at its own level).
    public func ancestor(of node: Int, atLevel h: Int) -> Int {
        var n = node
        var l = level(of: n)
        precondition(h <= l, "ancestor at level \(h) of a node at level \(l)")
        while l > h { n = Int(parent[n]); l -= 1 }
        return n
    }

    /// For every leaf position, its ancestor at level h (one pass per level, O(nodes)).
    public func ancestorsOfLeaves(atLevel h: Int) -> [Int32] {
        var out = [Int32](repeating: 0, count: itemCount)
        for n in nodes(atLevel: h) {
            for p in Int(leafStart[n])..<Int(leafEnd[n]) { out[p] = Int32(n) }
        }
        return out
    }

    /// The same structure with every node's embedding the mean of its items' rows of `items` (Eq. 3). A tree
    /// whose structure comes from learned ID embeddings (TDM, "w/o MM tree") keeps multi-modal node
    /// embeddings this way, so that MM-GSU's z_n stays multi-modal.
    public func withNodeEmbeddings(from items: Matrix) -> IndexTree {
        precondition(items.rows == itemCount, "withNodeEmbeddings: \(items.rows) rows for \(itemCount) items")
        let d = items.cols
        var e = Matrix(rows: nodeCount, cols: d)
        // Leaves first, then each inner node as the leaf-weighted mean of its children.
        for (p, item) in leafItems.enumerated() { e.setRow(leafNode(position: p), items.row(Int(item))) }
        for node in stride(from: levelStarts[leafLevel] - 1, through: 0, by: -1) {
            let total = Float(leafCount(under: node))
            var acc = [Float](repeating: 0, count: d)
            for c in children(of: node) {
                let w = Float(leafCount(under: c)) / total
                for (j, v) in e.row(c).enumerated() { acc[j] += w * v }
            }
            e.setRow(node, acc)
        }
        var t = self
        t.nodeEmbeddings = e
        return t
    }
}
