import Foundation
import MISSCore
import MISSData

/// The tree file: safetensors with the structure, node embeddings and leaf → item map.
extension IndexTree {
    public static let fileFormat = "miss-tree"
    public static let fileVersion = 1

    public func fileData() -> Data {
        var w = SafetensorsWriter(metadata: [
            "format": Self.fileFormat, "version": String(Self.fileVersion), "kind": kind.rawValue,
            "items": String(itemCount), "levels": String(leafLevel + 1),
        ])
        w.add("level_starts", int64s: levelStarts.map(Int64.init), shape: [levelStarts.count])
        w.add("parent", int32s: parent, shape: [nodeCount])
        w.add("child_start", int32s: childStart, shape: [nodeCount])
        w.add("child_count", int32s: childCount, shape: [nodeCount])
        w.add("leaf_start", int32s: leafStart, shape: [nodeCount])
        w.add("leaf_end", int32s: leafEnd, shape: [nodeCount])
        w.add("leaf_items", int32s: leafItems, shape: [itemCount])
        w.add("node_embeddings", matrix: nodeEmbeddings)
        return w.serialized()
    }

    public func write(to url: URL) throws { try AtomicWrite.write(fileData(), to: url) }

    /// Loads and validates a tree file. `expectedItems`, if given, must match the catalogue size.
    public static func load(from url: URL, expectedItems: Int? = nil) throws -> IndexTree {
        let path = url.path
        let fix = "Rebuild it with `miss build-tree`"
        let f: SafetensorsFile
        do { f = try SafetensorsFile(path: path) } catch let e as MappedFile.Failure {
            throw InputError(file: path, problem: e.reason, fix: fix)
        } catch let e as SafetensorsError {
            throw InputError(file: path, safetensors: e, fix: fix)
        }
        guard f.metadata["format"] == fileFormat else {
            throw InputError(file: path, location: "__metadata__.format",
                             problem: "is '\(f.metadata["format"] ?? "missing")', not a MISS tree file", fix: "Pass a file written by `miss build-tree`")
        }
        guard f.metadata["version"] == String(fileVersion) else {
            throw InputError(file: path, location: "__metadata__.version",
                             problem: "tree format version \(f.metadata["version"] ?? "missing") is not the supported version \(fileVersion)", fix: fix)
        }
        guard let kind = f.metadata["kind"].flatMap(Kind.init(rawValue:)) else {
            throw InputError(file: path, location: "__metadata__.kind", problem: "unknown tree kind '\(f.metadata["kind"] ?? "")'", fix: fix)
        }
        let tree: IndexTree
        do {
            tree = IndexTree(
                kind: kind, levelStarts: try f.int64s("level_starts").map { Int($0) },
                parent: try f.int32s("parent"), childStart: try f.int32s("child_start"), childCount: try f.int32s("child_count"),
                leafStart: try f.int32s("leaf_start"), leafEnd: try f.int32s("leaf_end"),
                leafItems: try f.int32s("leaf_items"), nodeEmbeddings: try f.matrix("node_embeddings"))
        } catch let e as SafetensorsError {
            throw InputError(file: path, safetensors: e, fix: fix)
        }
        try tree.validate(source: path)
        if let expectedItems, expectedItems != tree.itemCount {
            throw InputError(file: path, location: "leaf_items", problem: "the tree has \(tree.itemCount) items but the dataset has \(expectedItems)",
                             fix: "Build the tree from this dataset's embeddings with `miss build-tree`")
        }
        return tree
    }

    /// Structural invariants: level ranges, parent/child consistency, leaves a permutation of the items.
    public func validate(source: String) throws {
        func fail(_ field: String, _ problem: String) -> InputError {
            InputError(file: source, location: field, problem: problem, fix: "Rebuild it with `miss build-tree`")
        }
        let total = nodeCount
        guard levelStarts.count >= 2, levelStarts.first == 0, levelStarts.last == total,
              zip(levelStarts, levelStarts.dropFirst()).allSatisfy({ $0 < $1 }), levelStarts[1] == 1 else {
            throw fail("level_starts", "is not an increasing list from 0 to \(total) with one root")
        }
        for (name, count) in [("child_start", childStart.count), ("child_count", childCount.count),
                              ("leaf_start", leafStart.count), ("leaf_end", leafEnd.count)] where count != total {
            throw fail(name, "has \(count) entries for \(total) nodes")
        }
        guard nodeEmbeddings.rows == total else { throw fail("node_embeddings", "has \(nodeEmbeddings.rows) rows for \(total) nodes") }
        let leaves = levelStarts[levelStarts.count - 1] - levelStarts[levelStarts.count - 2]
        guard leaves == itemCount else { throw fail("leaf_items", "has \(itemCount) items for \(leaves) leaves") }
        var seen = [Bool](repeating: false, count: itemCount)
        for item in leafItems {
            guard item >= 0, Int(item) < itemCount, !seen[Int(item)] else {
                throw fail("leaf_items", "is not a permutation of the items (item \(item) is out of range or repeated)")
            }
            seen[Int(item)] = true
        }
        for h in 0..<(levelStarts.count - 1) {
            let isLeafLevel = h == levelStarts.count - 2
            for node in levelStarts[h]..<levelStarts[h + 1] {
                guard leafStart[node] >= 0, leafStart[node] < leafEnd[node], Int(leafEnd[node]) <= itemCount else {
                    throw fail("leaf_start", "node \(node) has leaf range \(leafStart[node])..<\(leafEnd[node])")
                }
                if isLeafLevel {
                    guard childCount[node] == 0, leafEnd[node] - leafStart[node] == 1 else {
                        throw fail("child_count", "leaf node \(node) has children or several leaves")
                    }
                    continue
                }
                let kids = children(of: node)
                guard !kids.isEmpty, kids.lowerBound >= levelStarts[h + 1], kids.upperBound <= levelStarts[h + 2] else {
                    throw fail("child_start", "node \(node) at level \(h) has children \(kids) outside level \(h + 1)")
                }
                var cursor = leafStart[node]
                for c in kids {
                    guard parent[c] == Int32(node), leafStart[c] == cursor else {
                        throw fail("parent", "node \(c) does not sit under node \(node) as the child ranges say")
                    }
                    cursor = leafEnd[c]
                }
                guard cursor == leafEnd[node] else { throw fail("leaf_end", "node \(node)'s children do not cover its leaves") }
            }
        }
    }
}

/// `miss tree stats`: shape, balance and per-level purity against known labels.
extension IndexTree {
    public struct LevelStats: Sendable {
        public var level: Int
        public var nodes: Int
        public var singleChildNodes: Int
        /// Σ over nodes of the count of the node's most common label, over Σ labelled leaves.
        public var purity: Double
    }

    /// `labels[item]` is a category (−1 = unknown, ignored).
    public func levelStatistics(labels: [Int32]) -> [LevelStats] {
        (0...leafLevel).map { h in
            var majority = 0, labelled = 0, single = 0
            for node in nodes(atLevel: h) {
                if childCount[node] == 1 { single += 1 }
                var counts: [Int32: Int] = [:]
                for item in items(under: node) where labels[Int(item)] >= 0 { counts[labels[Int(item)], default: 0] += 1 }
                majority += counts.values.max() ?? 0
                labelled += counts.values.reduce(0, +)
            }
            return LevelStats(level: h, nodes: nodes(atLevel: h).count, singleChildNodes: single,
                              purity: labelled > 0 ? Double(majority) / Double(labelled) : 0)
        }
    }
}
