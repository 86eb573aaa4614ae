import Foundation
import MISSCore
import CPrefetch

/// Configuration of the node estimator F_θ (§4.2–4.3). Paper defaults: L_co 2000, L_mm 4000, K 50.
public struct EstimatorConfig: Codable, Sendable, Equatable {
    public var idDim = 32
    public var coLength = 2000
    public var mmLength = 4000
    public var topK = 50
    public var experts = 4
    public var expertHidden = 64
    public var towerHidden = 32
    public var objectives = 3
    /// Behaviours averaged into the user feature x_user.
    public var userRecent = 50
    /// Ablations: "w/o Co-GSU" and "w/o MM-GSU" zero the corresponding representation.
    public var useCoGSU = true
    public var useMMGSU = true
    /// Whether the node's frozen multi-modal embedding z_n is part of x_node (Eq. 16). The paper's baselines
    /// (TDM, TDM+MMoE) see no multi-modal feature: for them, and for any model without MM-GSU on a tree not
    /// built from MM embeddings, z_n's columns of the head's input are zeros (their weights then get no
    /// gradient and no say in any score).
    public var mmNodeFeature = true
    public init() {}

    enum CodingKeys: String, CodingKey {
        case idDim, coLength, mmLength, topK, experts, expertHidden, towerHidden, objectives, userRecent, useCoGSU, useMMGSU, mmNodeFeature
    }

    /// Bundles whose manifest has no `mmNodeFeature` were trained with z_n in every model's input.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        idDim = try c.decode(Int.self, forKey: .idDim)
        coLength = try c.decode(Int.self, forKey: .coLength)
        mmLength = try c.decode(Int.self, forKey: .mmLength)
        topK = try c.decode(Int.self, forKey: .topK)
        experts = try c.decode(Int.self, forKey: .experts)
        expertHidden = try c.decode(Int.self, forKey: .expertHidden)
        towerHidden = try c.decode(Int.self, forKey: .towerHidden)
        objectives = try c.decode(Int.self, forKey: .objectives)
        userRecent = try c.decode(Int.self, forKey: .userRecent)
        useCoGSU = try c.decode(Bool.self, forKey: .useCoGSU)
        useMMGSU = try c.decode(Bool.self, forKey: .useMMGSU)
        mmNodeFeature = try c.decodeIfPresent(Bool.self, forKey: .mmNodeFeature) ?? true
    }

    /// Width of x = concat(x_node = [e_n, z_n], x_user, x_co, x_mm) (Eq. 16).
    public func inputWidth(mmDim: Int) -> Int { idDim + mmDim + idDim + idDim + idDim }
}

/// What the estimator knows about one user at one moment: the most recent behaviours (oldest first)
/// and everything about them that does not depend on the candidate node, computed once per request.
public struct UserContext {
    public let coItems: [Int32]
    public let mmItems: [Int32]
    public let recentItems: [Int32]
    // Precomputed (Eq. 11 and 13's key/value sides).
    let coLeaves: [Int], mmLeaves: [Int], recentLeaves: [Int]
    let eCo: Matrix, kCo: Matrix, vCo: Matrix      // (L_co, d)
    let eMM: Matrix, kMM: Matrix, vMM: Matrix      // (L_mm, d)
    // The GSUs' keys, laid out for RelevanceKernel: Co-GSU's K (L_co, d) and MM-GSU's frozen z_i (L_mm, m),
    // each item's key once when the window repeats an item (`SequenceKeys`).
    let kCoPacked: SequenceKeys, zMMPacked: SequenceKeys
    /// Each window's positions by item where it repeats one (nil where it does not): the backward pass sums a
    /// key's and a value's gradients over an item's positions before projecting them (`ItemGroups`).
    let coGroups: ItemGroups?, mmGroups: ItemGroups?
    let xUser: Matrix                              // (1, d)
}

/// A window's positions grouped by item (`distinctPositions`): `first` holds each distinct item's first
/// position, in order, and `slots` each position's index in `first`. A key and a value are functions of the
/// item alone, so their gradients can be summed per item before the projections' backward: the products
/// dE = [dK | dV]·[Wk | Wv]ᵀ and dW += Eᵀ·[dK | dV] then run over the distinct items, not every position.
struct ItemGroups {
    let first: [Int]
    let slots: [Int32]

    /// The grouping, or nil where `SequenceKeys` does not group the window either (no repeated item: there
    /// it would change nothing).
    init?(_ g: (distinct: [Int], slots: [Int32])) {
        guard SequenceKeys.groups(positions: g.slots.count, distinct: g.distinct.count) else { return nil }
        first = g.distinct
        slots = g.slots
    }
}

/// The node estimator of Eq. 11–16: Co-GSU and MM-GSU search the user's lifelong behaviours for the
/// candidate node, the ESU attends over each GSU's top-K (Co-SBS reusing the Co-GSU scores, MM-SBS with
/// its own W^mm), and an MMoE with one gate and tower per objective predicts ŷ_n^t = F_θ(u, n; t).
///
/// Every forward pass is batched over the candidate nodes: one product per GSU (nodes × L, by
/// RelevanceKernel on keys packed once per user context).
public struct NodeEstimator: ParameterContainer {
    public let config: EstimatorConfig
    /// ID embedding of every tree node; a behaviour's ID embedding is its item's leaf node's.
    public let nodeEmbedding: Embedding
    public let wq: Parameter, wk: Parameter, wv: Parameter           // Co-GSU / Co-SBS (Eq. 11–12)
    public let wqMM: Parameter, wkMM: Parameter, wvMM: Parameter     // MM-SBS (Eq. 13–14), not shared
    public let experts: [Linear]
    public let gates: [MixtureOfExpertsGate]
    public let towers: [MLP]
    /// Frozen multi-modal embeddings: of tree nodes (Eq. 3) and of items (for behaviours).
    public let nodeMM: Matrix
    public let itemMM: Matrix
    /// item → its leaf node id.
    public let itemLeafNode: [Int32]

    public init(config: EstimatorConfig, tree: IndexTree, itemMM: Matrix, seed: UInt64) {
        precondition(itemMM.rows == tree.itemCount && itemMM.cols == tree.dim, "item MM embeddings must match the tree")
        var rng = Xoshiro256StarStar(seed: seed).derived("estimator-init")
        let d = config.idDim
        self.config = config
        nodeEmbedding = Embedding(name: "node_embedding", count: tree.nodeCount, dim: d, std: 0.1, rng: &rng)
        func square(_ name: String) -> Parameter { Parameter(name: name, value: .glorot(d, d, using: &rng)) }
        wq = square("co.wq"); wk = square("co.wk"); wv = square("co.wv")
        wqMM = square("mm.wq"); wkMM = square("mm.wk"); wvMM = square("mm.wv")
        let width = config.inputWidth(mmDim: tree.dim)
        // The head's layers compute row by row (`Linear.rowwise`): scoring runs them in parallel row blocks
        // and gets the training forward pass's logits bit for bit.
        experts = (0..<config.experts).map { Linear(name: "mmoe.expert\($0)", inputs: width, outputs: config.expertHidden, rowwise: true, rng: &rng) }
        gates = (0..<config.objectives).map { MixtureOfExpertsGate(name: "mmoe.gate\($0)", inputs: width, experts: config.experts, rowwise: true, rng: &rng) }
        towers = (0..<config.objectives).map { MLP(name: "mmoe.tower\($0)", sizes: [config.expertHidden, config.towerHidden, 1], rowwise: true, rng: &rng) }
        nodeMM = tree.nodeEmbeddings
        self.itemMM = itemMM
        var leaf = [Int32](repeating: 0, count: tree.itemCount)
        for (p, item) in tree.leafItems.enumerated() { leaf[Int(item)] = Int32(tree.leafNode(position: p)) }
        itemLeafNode = leaf
    }

    /// The same estimator over replica parameters (shared values, own gradients): what a training worker
    /// accumulates its instances' gradients into. `syncValues(from:)` before every step.
    public func gradientReplica() -> NodeEstimator { NodeEstimator(replicating: self) }

    private init(replicating o: NodeEstimator) {
        func lin(_ l: Linear) -> Linear { Linear(weight: l.weight.replica(), bias: l.bias?.replica(), rowwise: l.rowwise) }
        config = o.config
        nodeEmbedding = Embedding(table: o.nodeEmbedding.table.replica())
        wq = o.wq.replica(); wk = o.wk.replica(); wv = o.wv.replica()
        wqMM = o.wqMM.replica(); wkMM = o.wkMM.replica(); wvMM = o.wvMM.replica()
        experts = o.experts.map(lin)
        gates = o.gates.map { MixtureOfExpertsGate(gate: lin($0.gate)) }
        towers = o.towers.map { MLP(layers: $0.layers.map(lin)) }
        nodeMM = o.nodeMM
        itemMM = o.itemMM
        itemLeafNode = o.itemLeafNode
    }

    /// Points every replica parameter at `source`'s current values (no copy: the matrices are shared).
    public func syncValues(from source: NodeEstimator) {
        for (p, s) in zip(parameters, source.parameters) { p.value = s.value }
    }

    public var parameters: [Parameter] {
        [nodeEmbedding.table, wq, wk, wv, wqMM, wkMM, wvMM] + experts.flatMap(\.parameters)
            + gates.flatMap(\.parameters) + towers.flatMap(\.parameters)
    }

    /// The per-request part: `history` is the user's behaviour items, oldest first (only the last
    /// L_co / L_mm / userRecent are used). With `workers` > 1 the Co-GSU's and the MM-GSU's sides are
    /// computed at the same time (the same values); training, already one instance per core, passes 1.
    /// `packed`: `trainingWeights()` of these parameters (the K and V projections), if the caller has it.
    /// `distinctKeys: false` packs every position's key even where a window repeats items, and the backward
    /// pass then projects every position's gradients (the same forward values, gradients up to rounding;
    /// for tests that compare the two).
    public func context(history: ArraySlice<Int32>, workers: Int = Cores.count, packed: TrainingWeights? = nil,
                        distinctKeys: Bool = true) -> UserContext {
        let co = Array(history.suffix(config.coLength))
        let mm = Array(history.suffix(config.mmLength))
        let recent = Array(history.suffix(config.userRecent))
        let coLeaves = co.map { Int(itemLeafNode[Int($0)]) }
        let mmLeaves = mm.map { Int(itemLeafNode[Int($0)]) }
        let recentLeaves = recent.map { Int(itemLeafNode[Int($0)]) }
        var xUser = Matrix(rows: 1, cols: config.idDim)
        if !recentLeaves.isEmpty {
            let cs = nodeEmbedding.forward(recentLeaves).columnSums()
            xUser = Matrix(rows: 1, cols: config.idDim, storage: cs.map { $0 / Float(recentLeaves.count) })
        }
        // Which positions share an item, and so a key: a GSU computes each distinct item's relevance once
        // (`SequenceKeys`). Both windows are suffixes of the history: the shorter one's grouping comes from the longer's.
        let (coGroups, mmGroups) = co.count <= mm.count
            ? { let g = distinctPositions(mm); return (distinctPositions(suffixOf: g, from: mm.count - co.count), g) }()
            : { let g = distinctPositions(co); return (g, distinctPositions(suffixOf: g, from: co.count - mm.count)) }()
        // Two halves of about equal work: the Co-GSU side and the MM-GSU's frozen keys; the MM-SBS's K and V.
        enum Part { case co(e: Matrix, k: Matrix, v: Matrix, packed: SequenceKeys, zPacked: SequenceKeys)
                    case mm(e: Matrix, k: Matrix, v: Matrix) }
        let parts = parallelMap(2, workers: workers, minimumPerWorker: 1) { half -> Part in
            if half == 0 {
                let eCo = nodeEmbedding.forward(coLeaves)
                let kCo = RelevanceKernel.rowwiseProduct(eCo, packed?.wk ?? PackedKeys(columnsOf: wk.value))
                let vCo = RelevanceKernel.rowwiseProduct(eCo, packed?.wv ?? PackedKeys(columnsOf: wv.value))
                let kPacked = SequenceKeys(rowsOf: kCo, at: Array(0..<co.count), distinct: coGroups.distinct, slots: coGroups.slots,
                                           allowGrouping: distinctKeys)
                let zPacked = SequenceKeys(rowsOf: itemMM, at: mm.map(Int.init), distinct: mmGroups.distinct.map { Int(mm[$0]) },
                                           slots: mmGroups.slots, allowGrouping: distinctKeys)
                return .co(e: eCo, k: kCo, v: vCo, packed: kPacked, zPacked: zPacked)
            }
            let eMM = nodeEmbedding.forward(mmLeaves)
            let kMM = RelevanceKernel.rowwiseProduct(eMM, packed?.wkMM ?? PackedKeys(columnsOf: wkMM.value))
            let vMM = RelevanceKernel.rowwiseProduct(eMM, packed?.wvMM ?? PackedKeys(columnsOf: wvMM.value))
            return .mm(e: eMM, k: kMM, v: vMM)
        }
        guard case let .co(eCo, kCo, vCo, kCoPacked, zMMPacked) = parts[0], case let .mm(eMM, kMM, vMM) = parts[1] else {
            preconditionFailure("context: parts out of order")
        }
        return UserContext(coItems: co, mmItems: mm, recentItems: recent,
                           coLeaves: coLeaves, mmLeaves: mmLeaves, recentLeaves: recentLeaves,
                           eCo: eCo, kCo: kCo, vCo: vCo, eMM: eMM, kMM: kMM, vMM: vMM,
                           kCoPacked: kCoPacked, zMMPacked: zMMPacked,
                           coGroups: distinctKeys ? ItemGroups(coGroups) : nil, mmGroups: distinctKeys ? ItemGroups(mmGroups) : nil,
                           xUser: xUser)
    }

    /// Both GSUs' relevance r_i over the user's whole windows for one node, before top-K: Co-GSU's
    /// (W_q e_n)·(W_k e_i)/√d over the last L_co behaviours (Eq. 11) and MM-GSU's z_n·z_i over the last
    /// L_mm (frozen). The explorer's heatmaps and histograms (Figs. 5–6) are softmaxes of these; the
    /// batched forward pass computes the same products for many nodes at once.
    public func relevance(_ ctx: UserContext, node: Int) -> (co: [Float], mm: [Float]) {
        let co = ctx.coItems.isEmpty ? [] : coRelevanceRows(RelevanceKernel.rowwiseProduct(nodeEmbedding.forward([node]), wq.value), ctx) { $1.expanded() }[0]
        let mm = ctx.mmItems.isEmpty ? [] : mmRelevanceRows(nodeMM.gatherRows([node]), ctx) { $1.expanded() }[0]
        return (co, mm)
    }

    /// Eq. 11: r_i = (W_q e_n)·(W_k e_i)/√d for queries Q = E_n·W_q (N, d), handed to `body` row by row
    /// (computed in cache-sized blocks, see `parallelRowsOfProducts`).
    func coRelevanceRows<T>(_ q: Matrix, _ ctx: UserContext, _ body: (Int, RelevanceRow) -> T) -> [T] {
        parallelRowsOfRelevances(queries: q, keys: ctx.kCoPacked, scale: 1 / Float(config.idDim).squareRoot(), body)
    }

    /// MM-GSU: r_i = z_n·z_i on the frozen embeddings for node embeddings Z (N, m), row by row.
    func mmRelevanceRows<T>(_ z: Matrix, _ ctx: UserContext, _ body: (Int, RelevanceRow) -> T) -> [T] {
        parallelRowsOfRelevances(queries: z, keys: ctx.zMMPacked, body)
    }

    /// Every item's learned ID embedding (its leaf node's row), (items, d): what a TDM-style tree clusters.
    public var itemIDEmbeddings: Matrix { nodeEmbedding.table.value.gatherRows(itemLeafNode.map(Int.init)) }

    /// One GSU's selection for every candidate node: positions in the GSU's sequence (best first),
    /// the raw relevance scores r_i of those positions, and the ESU's softmax weights over them. Every node
    /// selects min(K, L) positions, so the selections are kept node after node in three flat arrays (the
    /// forward pass writes them in place: no arrays per node).
    public struct GSUResult: Sendable, Equatable {
        /// Candidate nodes, and the positions each one selects.
        public let nodes: Int
        public let width: Int
        /// Node r's entries are at r·stride ..< r·stride + width; the slot after them is the top-K's scratch
        /// while the forward pass writes them (zero afterwards).
        let stride: Int
        let positionStorage: [Int]
        let scoreStorage: [Float]
        let weightStorage: [Float]

        /// No nodes (a GSU that is switched off, or selections not kept).
        public static let none = GSUResult(nodes: 0, width: 0, keepScores: false) { _ in }

        public var isEmpty: Bool { nodes == 0 }

        /// Node r's selected positions, best first.
        public func positions(_ r: Int) -> ArraySlice<Int> { positionStorage[entries(r)] }
        /// Their raw relevances (empty when the forward pass did not keep them).
        public func scores(_ r: Int) -> ArraySlice<Float> { scoreStorage.isEmpty ? [] : scoreStorage[entries(r)] }
        /// The ESU's softmax weights over them.
        public func weights(_ r: Int) -> ArraySlice<Float> { weightStorage[entries(r)] }

        func entries(_ r: Int) -> Range<Int> {
            precondition(r >= 0 && r < nodes, "GSU selection: node \(r) outside 0..<\(nodes)")
            return (r * stride)..<(r * stride + width)
        }

        public static func == (a: GSUResult, b: GSUResult) -> Bool {
            a.nodes == b.nodes && a.width == b.width && (0..<a.nodes).allSatisfy {
                a.positions($0) == b.positions($0) && a.scores($0) == b.scores($0) && a.weights($0) == b.weights($0)
            }
        }

        /// `nodes` selections of `width` positions, written by `fill` (every node's row, each by one worker).
        init(nodes: Int, width: Int, keepScores: Bool, _ fill: (SelectionRows) -> Void) {
            let stride = width + 1, count = nodes * stride
            self.nodes = nodes
            self.width = width
            self.stride = stride
            var scores: [Float] = keepScores ? [Float](repeating: 0, count: count) : []
            var weights = [Float](repeating: 0, count: count)
            positionStorage = [Int](unsafeUninitializedCapacity: count) { pb, initialized in
                weights.withUnsafeMutableBufferPointer { wb in
                    scores.withUnsafeMutableBufferPointer { sb in
                        let rows = SelectionRows(positions: pb.baseAddress!, weights: wb.baseAddress!,
                                                 scores: keepScores ? sb.baseAddress! : nil, stride: stride)
                        fill(rows)
                        // The scratch slots: the same contents on every run.
                        for r in 0..<nodes {
                            pb[r * stride + width] = 0
                            wb[r * stride + width] = 0
                            if keepScores { sb[r * stride + width] = 0 }
                        }
                    }
                }
                initialized = count
            }
            scoreStorage = scores
            weightStorage = weights
        }
    }

    /// Where the forward pass's workers write node r's selection into a `GSUResult` under construction:
    /// its positions (room for width + 1: `TopK.indices(_:k:into:)`), its weights and, if kept, its scores.
    struct SelectionRows: @unchecked Sendable {
        let positions: UnsafeMutablePointer<Int>
        let weights: UnsafeMutablePointer<Float>
        let scores: UnsafeMutablePointer<Float>?
        let stride: Int

        func positions(_ r: Int) -> UnsafeMutablePointer<Int> { positions + r * stride }
        func weights(_ r: Int) -> UnsafeMutablePointer<Float> { weights + r * stride }

        /// Node r's selection, computed by `attend(top, weights)` (which returns how many it selected, `width`);
        /// the raw relevances of the selected positions copied from `relevances` if they are kept.
        @inline(__always)
        func write(_ r: Int, width: Int, relevances: RelevanceRow,
                   _ attend: (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Float>) -> Int) {
            let top = positions(r)
            let count = attend(top, weights(r))
            precondition(count == width, "GSU selection: \(count) positions where \(width) were expected")
            if let scores {
                let s = scores + r * stride
                for i in 0..<count { s[i] = relevances[top[i]] }
            }
        }
    }

    /// Everything the forward pass computed; the backward pass and the explorer's trace read it.
    public struct Forward {
        public var nodes: [Int]
        public var logits: Matrix          // (N, T)
        public var co: GSUResult           // Co-GSU top-K and Co-SBS attention (Eq. 11–12)
        public var mm: GSUResult           // MM-GSU top-K (raw z_n·z_i) and MM-SBS attention (Eq. 13–14)
        var eNode: Matrix, q: Matrix, qMM: Matrix
        var x: Matrix
        var expertOut: [Matrix]
        var gateWeights: [Matrix]
        var towerCaches: [MLP.Cache]
        var mixed: [Matrix]
    }

    /// `keepSelections: false` (beam search without a trace) skips keeping both GSUs' per-node selections
    /// in `co` and `mm` (left empty; the backward pass and the explorer need them): the same logits.
    /// `backwardCaches: false` (scoring: beam search, evaluation) runs `scoringForward` on all cores and keeps
    /// nothing for the backward pass: the same logits, bit for bit. With `backwardCaches` (training, one
    /// instance per core) the pass runs on the calling thread.
    /// `scoringWeights`: `scoringWeights()` of these parameters (or a `trainingWeights()`'s), if the caller has it.
    public func forward(_ ctx: UserContext, nodes: [Int], keepSelections: Bool = true, backwardCaches: Bool = true,
                        scoringWeights: ScoringWeights? = nil) -> Forward {
        if !backwardCaches { return scoringForward(ctx, nodes: nodes, keepSelections: keepSelections, weights: scoringWeights) }
        let n = nodes.count, d = config.idDim, m = nodeMM.cols, width = nodeInputWidth
        let scale = 1 / Float(d).squareRoot()
        let table = nodeEmbedding.table.value
        precondition(table.cols == d && table.rows == nodeMM.rows, "forward: node tables do not match the configuration")
        for node in nodes { precondition(node >= 0 && node < table.rows, "forward: node \(node) out of 0..<\(table.rows)") }
        // x = concat(x_node = [e_n, z_n], x_user, x_co, x_mm) (Eq. 16) without x_user, the same for every node
        // (z_n's columns zeros without `mmNodeFeature`)
        // (its products are folded into the head's bias: `headUserBias`): [e_n | z_n | x_co | x_mm], written in
        // place, the node columns here, x_co and x_mm by the GSU workers below. e_n and z_n also go to their
        // own matrices (the queries' inputs).
        var eNode = Matrix(rows: n, cols: d), zNode = Matrix(rows: n, cols: m)
        var q = Matrix(rows: 0, cols: d), qMM = Matrix(rows: 0, cols: d)
        var co = GSUResult.none, mm = GSUResult.none
        let useCo = config.useCoGSU && !ctx.coItems.isEmpty, useMM = config.useMMGSU && !ctx.mmItems.isEmpty
        let mmNode = config.mmNodeFeature
        let xStorage = [Float](unsafeUninitializedCapacity: max(1, n * width)) { buffer, initialized in
            let xOut = RowSink(buffer.baseAddress!)
            eNode.storage.withUnsafeMutableBufferPointer { eb in
            zNode.storage.withUnsafeMutableBufferPointer { zb in
            table.storage.withUnsafeBufferPointer { tb in
            nodeMM.storage.withUnsafeBufferPointer { mb in
                for r in 0..<n {
                    let e = tb.baseAddress! + nodes[r] * d, z = mb.baseAddress! + nodes[r] * m, row = xOut.base + r * width
                    (eb.baseAddress! + r * d).update(from: e, count: d)
                    (zb.baseAddress! + r * m).update(from: z, count: m)
                    row.initialize(from: e, count: d)
                    if mmNode { (row + d).initialize(from: z, count: m) } else { (row + d).initialize(repeating: 0, count: m) }
                    if !useCo { (row + d + m).initialize(repeating: 0, count: d) }
                    if !useMM { (row + 2 * d + m).initialize(repeating: 0, count: d) }
                }
            }}}}
            // Row by row (see `RelevanceKernel.rowwiseProduct`): a node's scores do not depend on the other candidates.
            q = RelevanceKernel.rowwiseProduct(eNode, scoringWeights?.wq ?? PackedKeys(columnsOf: wq.value))
            qMM = RelevanceKernel.rowwiseProduct(eNode, scoringWeights?.wqMM ?? PackedKeys(columnsOf: wqMM.value))
            let k = config.topK
            if useCo {
                let vCo = ctx.vCo, xCo = RowSink(xOut.base + d + m), selected = min(k, ctx.coItems.count)
                let rows = GSUResult(nodes: n, width: selected, keepScores: keepSelections) { out in
                    _ = coRelevanceRows(q, ctx) { row, scores in
                        out.write(row, width: selected, relevances: scores) { top, weights in
                            Self.coAttention(scores, k: k, values: vCo, into: xCo.base + row * width, top: top, weights: weights)
                        }
                    }
                }
                if keepSelections { co = rows }
            }
            if useMM {
                let kMM = ctx.kMM, vMM = ctx.vMM, xMM = RowSink(xOut.base + 2 * d + m), queries = qMM
                let selected = min(k, ctx.mmItems.count)
                let rows = GSUResult(nodes: n, width: selected, keepScores: keepSelections) { out in
                    _ = mmRelevanceRows(zNode, ctx) { row, scores in
                        queries.storage.withUnsafeBufferPointer { qb in
                            kMM.storage.withUnsafeBufferPointer { kb in
                                out.write(row, width: selected, relevances: scores) { top, weights in
                                    Self.mmAttention(scores, k: k, query: qb.baseAddress! + row * d, keys: kb.baseAddress!, scale: scale,
                                                     values: vMM, into: xMM.base + row * width, top: top, weights: weights)
                                }
                            }
                        }
                    }
                }
                if keepSelections { mm = rows }
            }
            initialized = n * width
        }
        let x = Matrix(rows: n, cols: width, storage: xStorage)
        let h = head(x, packed: scoringWeights?.head ?? packedHeadWeights(),
                     bias: headUserBias(ctx.xUser, packed: scoringWeights?.headUser, bias: scoringWeights?.headBias))
        return Forward(nodes: nodes, logits: h.logits, co: co, mm: mm, eNode: eNode, q: q, qMM: qMM, x: x,
                       expertOut: h.expertOut, gateWeights: h.gateWeights, towerCaches: h.towerCaches, mixed: h.mixed)
    }

    /// The layers whose products the head computes in one pass over x: the experts, then the gates.
    var headLayers: [Linear] { experts + gates.map(\.gate) }

    /// The columns of x (Eq. 16: [e_n | z_n | x_user | x_co | x_mm]) that vary with the node, all but x_user's:
    /// the head's input in the forward passes, `nodeInputWidth` wide, [e_n | z_n | x_co | x_mm]. x_user is the same
    /// for every candidate of a request, so its products with the head's weights are computed once, into the
    /// bias (`headUserBias`), instead of once per candidate: the same function up to rounding, each
    /// candidate's output a chain of 3d + m products instead of 4d + m.
    var headNodeColumns: [Int] {
        let d = config.idDim, m = nodeMM.cols
        return Array(0..<(d + m)) + Array((2 * d + m)..<(4 * d + m))
    }
    /// x_user's columns of x (the rows of the head's weights that multiply it).
    var headUserColumns: Range<Int> { (config.idDim + nodeMM.cols)..<(2 * config.idDim + nodeMM.cols) }
    /// The width of the forward passes' x: [e_n | z_n | x_co | x_mm].
    var nodeInputWidth: Int { 3 * config.idDim + nodeMM.cols }

    /// `headLayers`' weights side by side, packed for `RelevanceKernel`: their rows for `headNodeColumns`
    /// (the forward passes' x), or all of them (`allColumns`, the whole x of Eq. 16: `headLogits`).
    func packedHeadWeights(allColumns: Bool = false) -> PackedKeys {
        let weights = headLayers.map(\.weight.value)
        return PackedKeys(columnsOf: allColumns ? weights : weights.map { $0.gatherRows(headNodeColumns) })
    }

    /// x_user's rows of `headLayers`' weights side by side, packed for `RelevanceKernel` (`headUserBias`).
    func packedHeadUserWeights() -> PackedKeys { PackedKeys(columnsOf: headLayers.map { $0.weight.value.gatherRows(headUserColumns) }) }

    /// The rows of `headLayers`' weights side by side that multiply the forward passes' learned columns,
    /// [e_n | x_co | x_mm] (z_n is frozen), as the keys: dx = dY·Wᵀ in the backward pass.
    func packedHeadInputWeights() -> PackedKeys {
        let d = config.idDim, m = nodeMM.cols
        let learnedColumns = Array(0..<d) + Array((2 * d + m)..<(4 * d + m))
        return PackedKeys(Matrix.hstack(headLayers.map(\.weight.value)).gatherRows(learnedColumns))
    }

    /// x_user's rows of `headLayers`' weights side by side as the keys: dx_user = (Σ_n dY_n)·W_userᵀ.
    func packedHeadUserInputWeights() -> PackedKeys { PackedKeys(Matrix.hstack(headLayers.map(\.weight.value)).gatherRows(headUserColumns)) }

    /// `headLayers`' biases side by side (zeros for a layer without one).
    func headBias() -> [Float] { headLayers.flatMap { $0.bias?.value.storage ?? [Float](repeating: 0, count: $0.outputs) } }

    /// The head's bias for a request: b + x_user·W_user, every output's x_user products (one row, shared by
    /// every candidate) added to its bias. `packed`: `packedHeadUserWeights()` and `bias`: `headBias()`, if the
    /// caller has them.
    func headUserBias(_ xUser: Matrix, packed: PackedKeys? = nil, bias given: [Float]? = nil) -> [Float] {
        let products = RelevanceKernel.rowwiseProduct(xUser, packed ?? packedHeadUserWeights())
        let bias = given ?? headBias()
        precondition(products.rows == 1 && products.cols == bias.count, "headUserBias: \(products.cols) products for \(bias.count) outputs")
        return (0..<bias.count).map { products.storage[$0] + bias[$0] }
    }

    /// Eq. 15 on the rows `rows` of x (N, width; all by default): the experts, one gate and one tower per
    /// objective; logits (rows, T) and, with `caches`, what the backward pass reads. x is Eq. 16's whole
    /// input (4d + m columns) or the forward passes' node columns (`headNodeColumns`, with the request's
    /// `headUserBias` as `bias`). `packed`: `packedHeadWeights` for x's columns and `bias`: `headBias()`
    /// (or `headUserBias`), if the caller already has them.
    ///
    /// Every expert's and gate's products in one pass over x (`RelevanceKernel.rowwiseProduct`), then per
    /// row the biases, the experts' ReLU and each gate's softmax, then each gate's mixture Σ_e g_e·y_e (in
    /// expert order), and the towers over all rows. Every value as the layers' own forward passes compute
    /// it (tested), so a row's logits do not depend on the other rows.
    /// `packedTowers` (scoring, with `caches: false`): `packedTowerWeights()`, so that the towers run on weights
    /// packed once per level instead of once per layer and call (the same values).
    func head(_ x: Matrix, rows: Range<Int>? = nil, packed: PackedKeys? = nil, bias given: [Float]? = nil, caches: Bool = true,
              packedTowers: [[PackedKeys]]? = nil)
        -> (logits: Matrix, expertOut: [Matrix], gateWeights: [Matrix], towerCaches: [MLP.Cache], mixed: [Matrix]) {
        // Without `packed`: the weights' rows for x's columns, the forward passes' node columns or Eq. 16's all.
        var all = RelevanceKernel.rowwiseProduct(x, packed ?? packedHeadWeights(allColumns: x.cols != nodeInputWidth), rows: rows)
        let n = all.rows, width = all.cols
        let bias = given ?? headBias()
        let ne = experts.count, h = config.expertHidden, objectives = config.objectives
        precondition(experts.allSatisfy { $0.outputs == h } && gates.allSatisfy { $0.experts == ne } && width == ne * h + objectives * ne,
                     "head: layer shapes do not match the configuration")
        precondition(bias.count == width, "head: \(bias.count) biases for \(width) outputs")
        // Pass by pass over the rows, each buffer taken once (a closure per row and buffer, checking the
        // array's uniqueness, cost more than the row's arithmetic): the same operations on every element as
        // row by row, so the same values.
        var mixed: [Matrix] = []
        all.storage.withUnsafeMutableBufferPointer { allBuffer in
            let rows = allBuffer.baseAddress!
            bias.withUnsafeBufferPointer { b in
                for r in 0..<n {
                    let row = rows + r * width
                    for j in 0..<width { row[j] += b[j] }
                    // The experts' ReLU, as `ReLU.forward` (0 ≥ v ? 0 : v).
                    for j in 0..<(ne * h) { row[j] = 0 >= row[j] ? 0 : row[j] }
                    // Each gate: the softmax of its logits, in place.
                    for t in 0..<objectives { Softmax.softmaxInPlace(UnsafeMutableBufferPointer(start: row + ne * h + t * ne, count: ne)) }
                }
            }
            // Gate t's mixture of the experts, in expert order from zero.
            mixed = (0..<objectives).map { t in
                Matrix(rows: n, cols: h, storage: [Float](unsafeUninitializedCapacity: n * h) { mb, initialized in
                    mb.initialize(repeating: 0)
                    for r in 0..<n {
                        let row = rows + r * width, g = row + ne * h + t * ne, f = mb.baseAddress! + r * h
                        for e in 0..<ne { SingleThreadKernels.axpy(g[e], row + e * h, f, h) }
                    }
                    initialized = n * h
                })
            }
        }
        // The backward pass's caches: the experts' outputs and the gates' weights, columns of the finished rows.
        let expertOut = caches ? (0..<ne).map { e in all.columns((e * h)..<((e + 1) * h)) } : []
        let gateWeights = caches ? (0..<objectives).map { t in all.columns((ne * h + t * ne)..<(ne * h + (t + 1) * ne)) } : []
        var logits = Matrix(rows: n, cols: objectives)
        if !caches, let packedTowers {
            for t in 0..<objectives {
                let y = mixed[t].storage.withUnsafeBufferPointer { Self.towerOutputs(towers[t], packedTowers[t], $0.baseAddress!, rows: n) }
                for r in 0..<n { logits[r, t] = y[r] }
            }
            return (logits, [], [], [], [])
        }
        var towerCaches: [MLP.Cache] = []
        for t in 0..<objectives {
            let (y, cache) = towers[t].forward(mixed[t])
            for r in 0..<n { logits[r, t] = y[r, 0] }
            if caches { towerCaches.append(cache) }
        }
        return (logits, expertOut, gateWeights, towerCaches, caches ? mixed : [])
    }

    /// The head's logits (N, T) computed in `rowBlocks` contiguous row blocks in parallel: the same logits,
    /// bit for bit, whatever the blocks (the head's layers are `rowwise`; tested).
    public func headLogits(_ x: Matrix, rowBlocks: Int) -> Matrix {
        let n = x.rows, w = min(max(1, rowBlocks), max(1, n))
        let packed = packedHeadWeights(allColumns: true)
        if w == 1 { return head(x, packed: packed, caches: false).logits }
        let bounds = (0...w).map { $0 * n / w }
        let parts = parallelMap(w, workers: w, minimumPerWorker: 1) { b in head(x, rows: bounds[b]..<bounds[b + 1], packed: packed, caches: false).logits }
        return Matrix.vstack(parts)
    }

    /// Accumulates every parameter's gradient for dLoss/dLogits (N, T). `packed`: `trainingWeights()` of these
    /// parameters, if the caller has it.
    public func backward(_ ctx: UserContext, _ f: Forward, dLogits: Matrix, packed: TrainingWeights? = nil) {
        precondition(f.towerCaches.count == config.objectives, "backward needs a forward pass with backwardCaches: true")
        let n = f.nodes.count, d = config.idDim
        let scale = 1 / Float(d).squareRoot()
        // The head's layers (experts, then gates: `headLayers`) take the same x: their output gradients go
        // side by side into dY (N, Σ outputs), and each of the two products runs once for all of them.
        let layers = headLayers, widths = layers.map(\.outputs)
        let offsets = widths.reduce(into: [0]) { $0.append($0.last! + $1) }
        let dF = (0..<config.objectives).map { t in
            towers[t].backward(cache: f.towerCaches[t], dy: Matrix(rows: n, cols: 1, storage: (0..<n).map { dLogits[$0, t] }))
        }
        let dY = Self.mixtureBackward(dF: dF, gateWeights: f.gateWeights, expertOut: f.expertOut, layout: offsets)
        // Weights: dW = xᵀ·dY for all of them at once over the node columns of x, then each layer's block into
        // those rows; x_user's rows get x_userᵀ·(Σ_n dY_n), the same for every node (`headUserBias`); biases: dY's
        // column sums. (OpenBLAS: on this shape, 128 × 268 over a few hundred nodes, it ran ≈ 10 % faster than
        // TransposedProduct.)
        let dW = matmul(f.x, dY, transposeA: true), biasGrad = dY.columnSums()
        let nodeColumns = headNodeColumns, userColumns = headUserColumns
        for (l, layer) in layers.enumerated() {
            let outputs = widths[l], offset = offsets[l]
            layer.weight.grad.storage.withUnsafeMutableBufferPointer { gb in
                dW.storage.withUnsafeBufferPointer { db in
                    for (i, row) in nodeColumns.enumerated() {
                        let g = gb.baseAddress! + row * outputs, src = db.baseAddress! + i * dW.cols + offset
                        for c in 0..<outputs { g[c] += src[c] }
                    }
                }
                for (u, row) in userColumns.enumerated() {
                    let xu = ctx.xUser.storage[u], g = gb.baseAddress! + row * outputs
                    for c in 0..<outputs { g[c] += xu * biasGrad[offset + c] }
                }
            }
            if let bias = layer.bias {
                for c in 0..<widths[l] { bias.grad.storage[c] += biasGrad[offsets[l] + c] }
            }
        }
        // Inputs: dx = dY·Wᵀ for the node columns of x that are learned, [e_n | x_co | x_mm] (N, 3d); z_n (columns
        // d..<d+m) is frozen and gets none. x_user's, the same for every node: (Σ_n dY_n)·W_userᵀ.
        let dx = RelevanceKernel.rowwiseProduct(dY, packed?.headInputs ?? packedHeadInputWeights())
        var dENode = dx.columns(0..<d)
        let dXUser = RelevanceKernel.rowwiseProduct(Matrix(rows: 1, cols: biasGrad.count, storage: biasGrad),
                                                    packed?.headUserInputs ?? packedHeadUserInputWeights()).storage
        let dXCo = dx.columns(d..<(2 * d))
        let dXMM = dx.columns((2 * d)..<(3 * d))

        // Co-SBS / Co-GSU backward (Eq. 11–12), then MM-SBS (Eq. 13–14; the MM-GSU selection is frozen).
        // dK | dV per distinct item where a window repeats items (`ItemGroups`), else per position.
        let (dQ, dKVCo) = Self.selectedAttentionBackward(f.co, dX: dXCo, queries: f.q, keys: ctx.kCo, values: ctx.vCo, scale: scale,
                                                         groups: ctx.coGroups)
        let (dQMM, dKVMM) = Self.selectedAttentionBackward(f.mm, dX: dXMM, queries: f.qMM, keys: ctx.kMM, values: ctx.vMM, scale: scale,
                                                           groups: ctx.mmGroups)
        // Projections: Q = E_n·Wq, K = E·Wk, V = E·Wv (and the MM-SBS ones). Their weight gradients (d × d over
        // a history or the nodes) by `TransposedProduct`: ≈ 25 % faster than OpenBLAS on these shapes.
        // `transposed`: W's rows as the keys (`PackedKeys(W)`), so that the product is dOut·Wᵀ.
        func project(_ input: Matrix, _ w: Parameter, _ transposed: PackedKeys?, _ dOut: Matrix) -> Matrix {
            TransposedProduct.accumulate(input, dOut, into: &w.grad)
            return RelevanceKernel.rowwiseProduct(dOut, transposed ?? PackedKeys(w.value))
        }
        let t = packed?.transposed
        dENode.addScaled(project(f.eNode, wq, t?.wq, dQ))
        dENode.addScaled(project(f.eNode, wqMM, t?.wqMM, dQMM))
        // K = E·Wk and V = E·Wv side by side: dWk += Eᵀ·dK and dWv += Eᵀ·dV from the column blocks of [dK | dV],
        // and dE = dK·Wkᵀ + dV·Wvᵀ = [dK | dV]·[Wk | Wv]ᵀ in one product (each entry one chain over the 2d columns).
        func projectPair(_ input: Matrix, _ wk: Parameter, _ wv: Parameter, _ transposed: PackedKeys?, _ dKV: Matrix) -> Matrix {
            TransposedProduct.accumulate(input, dKV, columns: 0..<d, into: &wk.grad)
            TransposedProduct.accumulate(input, dKV, columns: d..<(2 * d), into: &wv.grad)
            return RelevanceKernel.rowwiseProduct(dKV, transposed ?? PackedKeys(Matrix.hstack([wk.value, wv.value])))
        }
        // Over the distinct items: their rows of E (a repeated item's rows are equal) and their leaves.
        func distinctRows(_ e: Matrix, _ leaves: [Int], _ g: ItemGroups?) -> (e: Matrix, leaves: [Int]) {
            guard let g else { return (e, leaves) }
            return (e.gatherRows(g.first), g.first.map { leaves[$0] })
        }
        let co = distinctRows(ctx.eCo, ctx.coLeaves, ctx.coGroups), mm = distinctRows(ctx.eMM, ctx.mmLeaves, ctx.mmGroups)
        let dECo = projectPair(co.e, wk, wv, t?.kv, dKVCo), dEMM = projectPair(mm.e, wkMM, wvMM, t?.kvMM, dKVMM)
        nodeEmbedding.backward(ids: f.nodes, de: dENode)
        nodeEmbedding.backward(ids: co.leaves, de: dECo)
        nodeEmbedding.backward(ids: mm.leaves, de: dEMM)
        if !ctx.recentLeaves.isEmpty {
            let share = dXUser.map { $0 / Float(ctx.recentLeaves.count) }
            let rows = Matrix(rows: ctx.recentLeaves.count, cols: d, storage: (0..<ctx.recentLeaves.count).flatMap { _ in share })
            nodeEmbedding.backward(ids: ctx.recentLeaves, de: rows)
        }
    }

    /// The MMoE's backward from the towers' input gradients dF_t (N, h) down to the outputs of the layers
    /// over x, side by side in one matrix (N, Σ outputs) at `layout`'s offsets (experts, then gates):
    /// per row, each gate's softmax backward of dG_e = y_e·dF_t, and each expert's ReLU backward of
    /// Σ_t g_t,e · dF_t (summed in objective order). One pass over the rows, nothing else allocated.
    static func mixtureBackward(dF: [Matrix], gateWeights: [Matrix], expertOut: [Matrix], layout offsets: [Int]) -> Matrix {
        let objectives = dF.count, experts = expertOut.count
        precondition(gateWeights.count == objectives && offsets.count == experts + objectives + 1, "mixtureBackward: layout mismatch")
        let n = dF.first?.rows ?? 0, h = expertOut.first?.cols ?? 0, width = offsets.last!
        let fs = dF.map { $0.storage }, gs = gateWeights.map { $0.storage }, ys = expertOut.map { $0.storage }
        precondition(offsets[experts] == experts * h && (0...objectives).allSatisfy { offsets[experts + $0] == experts * h + $0 * experts },
                     "mixtureBackward: the layout is not the experts' outputs, then the gates'")
        // Every element of every row is written below (the gates' columns, then the experts' from zero): no zero fill first.
        let dY = [Float](unsafeUninitializedCapacity: n * width) { out, initialized in
            defer { initialized = n * width }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: experts) { dG in
                for r in 0..<n {
                    let row = out.baseAddress! + r * width
                    for t in 0..<objectives {
                        fs[t].withUnsafeBufferPointer { fb in gs[t].withUnsafeBufferPointer { gb in
                            let f = fb.baseAddress! + r * h, g = gb.baseAddress! + r * experts
                            // dG_e = y_e·dF_t, then the softmax backward: g_e (dG_e − Σ_e' g_e' dG_e').
                            var mean: Float = 0
                            for e in 0..<experts {
                                dG[e] = ys[e].withUnsafeBufferPointer { yb in Self.dot(yb.baseAddress! + r * h, f, h) }
                                mean += g[e] * dG[e]
                            }
                            let o = row + offsets[experts + t]
                            for e in 0..<experts { o[e] = g[e] * (dG[e] - mean) }
                        }}
                    }
                    for e in 0..<experts {
                        let o = row + offsets[e]
                        o.initialize(repeating: 0, count: h)
                        for t in 0..<objectives {
                            fs[t].withUnsafeBufferPointer { fb in
                                let share = gs[t][r * experts + e]
                                SingleThreadKernels.axpy(share, fb.baseAddress! + r * h, o, h)
                            }
                        }
                        ys[e].withUnsafeBufferPointer { yb in
                            let y = yb.baseAddress! + r * h
                            for j in 0..<h where !(y[j] > 0) { o[j] = 0 }
                        }
                    }
                }
            }
        }
        return Matrix(rows: n, cols: width, storage: dY)
    }

    /// Floating-point operations (a multiply-add counts 2) of one training instance: `context` over `coLength`
    /// and `mmLength` behaviours, `forward` over `nodes` candidates and `backward`. Only the arithmetic of
    /// products and poolings is counted (gathers, softmaxes, top-K selection and the optimizer are not), so
    /// `flops / SGEMM peak` is a lower bound on the time: the training's FLOP bound.
    public static func trainingFLOPs(config c: EstimatorConfig, mmDim m: Int, coLength lc: Int, mmLength lm: Int, nodes n: Int) -> Double {
        let d = Double(c.idDim), nn = Double(n), mm = Double(m)
        let lco = Double(min(lc, c.coLength)), lmm = Double(min(lm, c.mmLength))
        let kco = Double(min(c.topK, Int(lco))), kmm = Double(min(c.topK, Int(lmm)))
        let w = Double(c.inputWidth(mmDim: m)), e = Double(c.experts), h = Double(c.expertHidden)
        let th = Double(c.towerHidden), t = Double(c.objectives)
        var forward = 2 * 2 * (lco + lmm) * d * d         // K and V projections of both windows (context)
        forward += 2 * 2 * nn * d * d                     // node queries for Co-GSU and MM-SBS
        var backward = 2 * forward                        // those projections: weight and input gradients
        if c.useCoGSU && lco > 0 {
            forward += 2 * nn * lco * d + 2 * nn * kco * d      // relevance GEMM (Eq. 11), Co-SBS pooling
            backward += 8 * nn * kco * d                        // attention over the selected positions
        }
        if c.useMMGSU && lmm > 0 {
            forward += 2 * nn * lmm * mm + 4 * nn * kmm * d     // relevance GEMM, MM-SBS scores and pooling
            backward += 8 * nn * kmm * d
        }
        // The head: the experts' and gates' products over x, then the mixing and the towers. Backward: both
        // gradients of everything, except that x's input gradient skips the frozen z_n columns (m of w).
        let overX = e * 2 * nn * w * h + t * 2 * nn * w * e
        let rest = t * (2 * nn * e * h + 2 * nn * h * th + 2 * nn * th)
        let headBackward = overX + overX * (w - mm) / w + 2 * rest
        return forward + overX + rest + backward + headBackward
    }

    /// Of `trainingFLOPs` over `nodes` nodes, those that x_user's share of the head does not execute: it counts
    /// x_user's products with the experts' and gates' weights per node (forward, weight and input gradients),
    /// and the forward passes compute each once per request (`headUserBias`; the gradients from dY's column
    /// sums): 3 · 2 · (N − 1) · d · (experts' and gates' outputs).
    public static func foldedUserFLOPs(config c: EstimatorConfig, nodes n: Int) -> Double {
        let outputs = Double(c.experts * c.expertHidden + c.objectives * c.experts)
        return 6 * Double(max(0, n - 1)) * Double(c.idDim) * outputs
    }

    /// Of `trainingFLOPs`, those a GSU's window of `positions` behaviours holding `distinct` items does not
    /// execute when it repeats items: the relevance products of the repeated positions for `nodes` nodes
    /// (`SequenceKeys`), 2 · N · (L − distinct) · keyDim (d for Co-GSU, m for MM-GSU), and the backward of its
    /// K and V projections over them (`ItemGroups`), 8 · (L − distinct) · d². None for a window without repeats.
    public static func repeatedItemFLOPs(config c: EstimatorConfig, keyDim: Int, positions: Int, distinct: Int, nodes n: Int) -> Double {
        guard SequenceKeys.groups(positions: positions, distinct: distinct) else { return 0 }
        let repeats = Double(positions - distinct), d = Double(c.idDim)
        return 2 * Double(n) * repeats * Double(keyDim) + 8 * repeats * d * d
    }

    /// How many selected rows ahead the scoring pass prefetches its gathers (`prefetch: true` below). The
    /// rows a GSU selects lie scattered over tables of L × d floats (1 MB for L_mm 4000 at d 64), larger than
    /// a core's L2; asking for them a few rows early lets their loads overlap. Beam search at the paper's
    /// sizes: 4–5 % less time (in-process A/B, `miss bench beam`). Training's forward pass does not prefetch:
    /// its histories repeat items and its tables are d 32, and there the prefetches cost ≈ 1 %.
    static let prefetchAhead = 6

    /// Asks for the cache lines of the row of `d` floats at `x` (a hint: never faults, changes no value).
    @inline(__always) static func prefetchRow(_ x: UnsafePointer<Float>, _ d: Int) {
        var j = 0
        while j < d { miss_prefetch(x + j); j += 16 }
    }

    /// Σ_k a_k · values[top_k] over `count` weights and positions at `a` and `top`: the ESU's attention pooling
    /// (Eq. 12 and 14) for one node, written to `o` (d floats): summed in registers, in k order (the same
    /// values as axpys into a zero row), prefetching the rows `prefetchAhead` positions on.
    static func pool(_ a: UnsafePointer<Float>, _ top: UnsafePointer<Int>, count: Int, _ values: Matrix, into o: UnsafeMutablePointer<Float>, prefetchAhead: Int = 0) {
        let d = values.cols
        values.storage.withUnsafeBufferPointer { v in
            sumOfScaledRows(into: o, d, 0..<count, prefetchAhead: prefetchAhead) { k in (a[k], v.baseAddress! + top[k] * d) }
        }
    }

    /// Co-GSU's top-K of one node's relevances `scores` and Co-SBS over it (Eq. 11–12): the positions written
    /// to `top` (room for k + 1), the softmax of the selected scores themselves (Co-SBS reuses them) to
    /// `weights` (k), the pooled values to `o` (d floats); returns how many were selected, min(k, L).
    @discardableResult
    static func coAttention(_ scores: RelevanceRow, k: Int, values: Matrix, into o: UnsafeMutablePointer<Float>,
                            top: UnsafeMutablePointer<Int>, weights: UnsafeMutablePointer<Float>, prefetch: Bool = false) -> Int {
        let count = scores.topK(k, into: top)
        for i in 0..<count { weights[i] = scores[top[i]] }
        Softmax.softmaxInPlace(UnsafeMutableBufferPointer(start: weights, count: count))
        pool(weights, top, count: count, values, into: o, prefetchAhead: prefetch ? Self.prefetchAhead : 0)
        return count
    }

    /// MM-GSU's top-K of one node's frozen relevances `scores` and MM-SBS over it (Eq. 13–14), the same way:
    /// the weights are the softmax of query·keys[pos]·scale, with MM-SBS's own W^mm (`keys` (L, d) row-major).
    @discardableResult
    static func mmAttention(_ scores: RelevanceRow, k: Int, query: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                            scale: Float, values: Matrix, into o: UnsafeMutablePointer<Float>,
                            top: UnsafeMutablePointer<Int>, weights: UnsafeMutablePointer<Float>, prefetch: Bool = false) -> Int {
        let d = values.cols
        let count = scores.topK(k, into: top)
        if prefetch {
            // Row i + ahead of the keys while row i's dot runs, and row i of the values for the pooling after
            // the softmax (by then they have arrived).
            let ahead = Self.prefetchAhead
            for i in 0..<min(count, ahead) { prefetchRow(keys + top[i] * d, d) }
            values.storage.withUnsafeBufferPointer { v in
                for i in 0..<count {
                    if i + ahead < count { prefetchRow(keys + top[i + ahead] * d, d) }
                    prefetchRow(v.baseAddress! + top[i] * d, d)
                    weights[i] = dot(query, keys + top[i] * d, d) * scale
                }
            }
        } else {
            for i in 0..<count { weights[i] = dot(query, keys + top[i] * d, d) * scale }
        }
        Softmax.softmaxInPlace(UnsafeMutableBufferPointer(start: weights, count: count))   // the scores become the weights
        pool(weights, top, count: count, values, into: o)
        return count
    }

    /// a·b in 8 lanes (a fixed order: the same value on every run), then the tail. A plain loop is one long
    /// dependency chain of additions that the compiler may not reorder, ≈ 4 cycles per element.
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// a·b with a short dependency chain, for the backward pass's many independent dots: 8-lane products
    /// summed into two accumulators (alternate chunks), then added pairwise down to one value. A different
    /// order from `dot` (so slightly different roundings), fixed: the same value on every run.
    @inline(__always) static func shortChainDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var even = SIMD8<Float>(), odd = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            even += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            odd += UnsafeRawPointer(a + i + 8).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i + 8).loadUnaligned(as: SIMD8<Float>.self)
            i += 16
        }
        if i + 8 <= n {
            even += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        let eight = even + odd, four = eight.lowHalf + eight.highHalf, two = four.lowHalf + four.highHalf
        var s = two[0] + two[1]
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// Backward of attention over each node's selected positions with scores s_k = q·K[top_k]·scale,
    /// weights a = softmax(s) and output Σ a_k V[top_k]: returns dQ (N, d) and dK | dV side by side (L, 2d), so
    /// that the input gradient dE = [dK | dV]·[Wk | Wv]ᵀ is one product. With `groups` (a window that repeats
    /// items, whose positions share their item's key and value rows), dK | dV has one row per distinct item
    /// (`groups.first.count`): the sum of its positions' rows.
    ///
    /// The (node, k) entries are visited bucket by bucket (a bucket is a position, or an item's positions;
    /// nodes in order within it) wherever a row of dK, dV or V is touched: each such row is read or written
    /// once, in order, instead of once per node that selected it at a random place. Every value is
    /// accumulated in the same order as a plain node-by-node loop: dV[b] and dK[b] over the nodes in
    /// order (and each node's k in order), dQ[node] over its k in order.
    static func selectedAttentionBackward(_ gsu: GSUResult, dX: Matrix, queries q: Matrix, keys: Matrix, values: Matrix,
                                          scale: Float, groups: ItemGroups? = nil) -> (dQ: Matrix, dKV: Matrix) {
        let d = q.cols, rows = gsu.nodes, width = gsu.width, length = keys.rows
        var dQ = Matrix(rows: q.rows, cols: d)
        precondition(values.rows == length, "selected attention: \(values.rows) value rows for \(length) keys")
        precondition(groups.map { $0.slots.count == length } ?? true, "selected attention: \(groups?.slots.count ?? 0) slots for \(length) keys")
        let buckets = groups?.first.count ?? length
        let slots = groups?.slots ?? [], first = groups?.first ?? []
        @inline(__always) func bucketOf(_ pos: Int) -> Int { groups == nil ? pos : Int(slots[pos]) }
        @inline(__always) func rowOf(_ b: Int) -> Int { groups == nil ? b : first[b] }
        // Entries e in node-major order (node r's are r·width ..< (r + 1)·width): row, position, weight a_e;
        // then g_e = dL/da_e and ds_e.
        let total = rows * width
        guard total > 0 else { return (dQ, Matrix(rows: buckets, cols: 2 * d)) }
        // dK | dV side by side (row b: dK[b], then dV[b]): every row is written below (a sum, or zeros
        // where no node selected the bucket), so it is not zeroed first (4 × L × d floats an instance).
        let kv = 2 * d
        var dKV = Matrix(rows: buckets, cols: kv, storage: [Float](unsafeUninitializedCapacity: buckets * kv) { _, count in count = buckets * kv })
        // Scratch, one allocation each: per entry (node-major, so entry e is node e / width's) its position,
        // a_e, g_e and ds_e; per bucket its start (and a fill cursor); the entries in bucket order, with their
        // nodes and weights.
        let ints = UnsafeMutablePointer<Int32>.allocate(capacity: 3 * total + 2 * (buckets + 1))
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: 4 * total)
        defer { ints.deallocate(); floats.deallocate() }
        let entryPos = ints, byPosition = ints + total, rowByPosition = ints + 2 * total
        let bucketStart = ints + 3 * total, next = bucketStart + (buckets + 1)
        let a = floats, g = floats + total, ds = floats + 2 * total, aByPosition = floats + 3 * total
        bucketStart.initialize(repeating: 0, count: buckets + 1)
        gsu.positionStorage.withUnsafeBufferPointer { top in
            gsu.weightStorage.withUnsafeBufferPointer { w in
                for r in 0..<rows {
                    for k in 0..<width {
                        let pos = top[r * gsu.stride + k], e = r * width + k
                        precondition(pos >= 0 && pos < length, "selected attention: position \(pos) outside 0..<\(length)")
                        entryPos[e] = Int32(truncatingIfNeeded: pos)
                        a[e] = w[r * gsu.stride + k]
                        bucketStart[bucketOf(pos) + 1] &+= 1
                    }
                }
            }
        }
        for b in 0..<buckets { bucketStart[b + 1] &+= bucketStart[b] }
        // Bucket-major order of the entries (stable: node order, then k order, within a bucket).
        next.update(from: bucketStart, count: buckets + 1)
        // With each entry's node and weight in that order too: the passes by bucket read them directly.
        for r in 0..<rows {
            for e in (r * width)..<((r + 1) * width) {
                let b = bucketOf(Int(entryPos[e])), slot = Int(next[b])
                byPosition[slot] = Int32(truncatingIfNeeded: e)
                rowByPosition[slot] = Int32(truncatingIfNeeded: r)
                aByPosition[slot] = a[e]
                next[b] &+= 1
            }
        }
        @inline(__always) func bucket(_ b: Int) -> Range<Int> { Int(bucketStart[b])..<Int(bucketStart[b + 1]) }
        dQ.storage.withUnsafeMutableBufferPointer { dQb in
        dKV.storage.withUnsafeMutableBufferPointer { dKVb in
        dX.storage.withUnsafeBufferPointer { dXb in
        q.storage.withUnsafeBufferPointer { qb in
        keys.storage.withUnsafeBufferPointer { kb in
        values.storage.withUnsafeBufferPointer { vb in
            let dQp = dQb.baseAddress!, dKp = dKVb.baseAddress!, dVp = dKVb.baseAddress! + d
            let dXp = dXb.baseAddress!, qp = qb.baseAddress!, kp = kb.baseAddress!, vp = vb.baseAddress!
            // 1. By bucket: g_e = dX[node]·V[pos] (dL/da_e) and dV[b] += a_e · dX[node] (a bucket's positions
            // share their V row).
            for b in 0..<buckets {
                let vRow = vp + rowOf(b) * d
                let entries = bucket(b)
                if entries.isEmpty { (dVp + b * kv).update(repeating: 0, count: d); continue }
                for i in entries {
                    g[Int(byPosition[i])] = Self.shortChainDot(dXp + Int(rowByPosition[i]) * d, vRow, d)
                }
                Self.sumOfScaledRows(into: dVp + b * kv, d, entries) { i in (aByPosition[i], dXp + Int(rowByPosition[i]) * d) }
            }
            // 2. By node: the softmax backward, ds_e = a_e (g_e − Σ_k a_k g_k) · scale; dQ[node] += ds_e K[pos].
            for r in 0..<rows {
                let entries = (r * width)..<((r + 1) * width)
                var dot: Float = 0
                for e in entries { dot += a[e] * g[e] }
                for e in entries { ds[e] = a[e] * (g[e] - dot) * scale }
                Self.sumOfScaledRows(into: dQp + r * d, d, entries) { e in (ds[e], kp + Int(entryPos[e]) * d) }
            }
            // 3. By bucket: dK[b] += ds_e · q[node].
            for b in 0..<buckets {
                let entries = bucket(b)
                if entries.isEmpty { (dKp + b * kv).update(repeating: 0, count: d); continue }
                Self.sumOfScaledRows(into: dKp + b * kv, d, entries) { i in (ds[Int(byPosition[i])], qp + Int(rowByPosition[i]) * d) }
            }
        }}}}}}
        return (dQ, dKV)
    }

    /// out[j] = Σ_i c_i · x_i[j] over `terms` in order, written over the row `out` (d floats), where
    /// (c_i, x_i) = term(i): each element the same sum, in the same order, as repeated axpys into a zero
    /// row, but held in registers (32 columns at a time) rather than stored and reloaded after every term.
    /// With `prefetchAhead` > 0 the rows are scattered over a table larger than the core's L2 (the GSU's
    /// selected positions): the first pass asks for row i + prefetchAhead's cache lines (all d columns)
    /// while it adds row i, and for the first rows before it starts (the same values; a prefetch never faults).
    @inline(__always)
    static func sumOfScaledRows(into out: UnsafeMutablePointer<Float>, _ d: Int, _ terms: Range<Int>, prefetchAhead: Int = 0,
                                _ term: (Int) -> (Float, UnsafePointer<Float>)) {
        if prefetchAhead > 0 { for i in terms.prefix(prefetchAhead) { prefetchRow(term(i).1, d) } }
        let prefetchEnd = terms.upperBound - prefetchAhead
        var j = 0
        while j + 32 <= d {
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
            for i in terms {
                if prefetchAhead > 0 && j == 0 && i < prefetchEnd { prefetchRow(term(i + prefetchAhead).1, d) }
                let (c, x) = term(i)
                let cv = SIMD8<Float>(repeating: c), r = UnsafeRawPointer(x + j)
                s0 += cv * r.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
                s1 += cv * r.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                s2 += cv * r.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
                s3 += cv * r.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
            }
            let o = UnsafeMutableRawPointer(out + j)
            o.storeBytes(of: s0, toByteOffset: 0, as: SIMD8<Float>.self)
            o.storeBytes(of: s1, toByteOffset: 32, as: SIMD8<Float>.self)
            o.storeBytes(of: s2, toByteOffset: 64, as: SIMD8<Float>.self)
            o.storeBytes(of: s3, toByteOffset: 96, as: SIMD8<Float>.self)
            j += 32
        }
        if j < d {
            (out + j).update(repeating: 0, count: d - j)
            for i in terms {
                let (c, x) = term(i)
                SingleThreadKernels.axpy(c, x + j, out + j, d - j)
            }
        }
    }
}

