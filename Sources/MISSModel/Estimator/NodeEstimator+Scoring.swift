import MISSCore

extension NodeEstimator {
    /// Rows of a scoring block: at most `scoringBlock` (its GSU relevances, 36 × L_mm floats, stay in the
    /// core's cache while the top-K reads them), and blocks shrink to `scoringMinimumBlock` toward the end of
    /// a level (see `parallelGuidedBlocks`).
    static let scoringBlock = 36
    static let scoringMinimumBlock = 6

    /// The scoring forward pass (`forward(_:nodes:keepSelections:backwardCaches: false)`): the logits of the
    /// training forward pass, bit for bit, in one parallel pass over blocks of candidate rows. A worker takes
    /// a block and computes everything for its rows — e_n and z_n, both queries, each GSU's relevances and
    /// top-K, the ESU's attention and pooling into x, then the MMoE head on the block's x — so a level has
    /// one parallel region instead of one per stage, and the last blocks are small, so the cores finish
    /// together. Every stage is row by row (`RelevanceKernel`, the rowwise head), so a row's values do not
    /// depend on its block. `Forward` carries the logits and, with `keepSelections`, both GSUs' selections;
    /// nothing for the backward pass.
    func scoringForward(_ ctx: UserContext, nodes: [Int], keepSelections: Bool, weights given: ScoringWeights? = nil) -> Forward {
        let n = nodes.count, d = config.idDim, m = nodeMM.cols, width = nodeInputWidth
        let objectives = config.objectives, k = config.topK
        let scale = 1 / Float(d).squareRoot()
        let table = nodeEmbedding.table.value
        precondition(table.cols == d && table.rows == nodeMM.rows, "forward: node tables do not match the configuration")
        for node in nodes { precondition(node >= 0 && node < table.rows, "forward: node \(node) out of 0..<\(table.rows)") }
        let useCo = config.useCoGSU && !ctx.coItems.isEmpty, useMM = config.useMMGSU && !ctx.mmItems.isEmpty
        let mmNode = config.mmNodeFeature
        var logits = Matrix(rows: n, cols: objectives)
        var co = GSUResult.none, mm = GSUResult.none
        func done() -> Forward {
            Forward(nodes: nodes, logits: logits, co: co, mm: mm, eNode: Matrix(rows: 0, cols: d), q: Matrix(rows: 0, cols: d),
                    qMM: Matrix(rows: 0, cols: d), x: Matrix(rows: 0, cols: width), expertOut: [], gateWeights: [], towerCaches: [], mixed: [])
        }
        if n == 0 { return done() }
        let weights = given ?? scoringWeights()
        let wqPacked = weights.wq, wqMMPacked = weights.wqMM
        let bias = headUserBias(ctx.xUser, packed: weights.headUser, bias: weights.headBias)
        let workers = min(Cores.count, max(1, (n + Self.scoringMinimumBlock - 1) / Self.scoringMinimumBlock))
        let block = Self.scoringBlock
        let ldq = wqPacked.paddedCount, ldqMM = wqMMPacked.paddedCount
        let ldr = max(useCo ? ctx.kCoPacked.stride : 0, useMM ? ctx.zMMPacked.stride : 0, 1)
        // Per worker: gathered e_n and z_n, both queries, one GSU's relevances; a row's ESU weights and top-K.
        let perWorker = block * (d + m + ldq + ldqMM + ldr) + max(1, k)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * perWorker)
        let topScratch = UnsafeMutablePointer<Int>.allocate(capacity: workers * (k + 1))
        defer { scratch.deallocate(); topScratch.deallocate() }
        let topSink = IndexSink(topScratch), sink = RowSink(scratch)
        // Per row, when kept: each GSU's selection, written in place. Otherwise each worker's scratch.
        let coSelected = useCo ? min(k, ctx.coItems.count) : 0, mmSelected = useMM ? min(k, ctx.mmItems.count) : 0
        func scored(_ coOut: SelectionRows?, _ mmOut: SelectionRows?) {
        logits.storage.withUnsafeMutableBufferPointer { lb in
        table.storage.withUnsafeBufferPointer { tb in
        nodeMM.storage.withUnsafeBufferPointer { zb in
        ctx.kMM.storage.withUnsafeBufferPointer { kmb in
            let logitsOut = RowSink(lb.baseAddress!)
            parallelGuidedBlocks(n, maxBlock: block, minBlock: Self.scoringMinimumBlock, workers: workers) { worker, range in
                let rows = range.count
                let e = sink.base + worker * perWorker, z = e + block * d, q = z + block * m, qMM = q + block * ldq
                let relevances = qMM + block * ldqMM, esuWeights = relevances + block * ldr
                let top = topSink.base + worker * (k + 1)
                // x = concat(e_n, z_n, x_co, x_mm) (Eq. 16 without x_user: `headUserBias`) for the block's rows.
                var x = Matrix(rows: rows, cols: width)
                x.storage.withUnsafeMutableBufferPointer { xb in
                    let xs = xb.baseAddress!
                    for (i, r) in range.enumerated() {
                        let row = xs + i * width
                        (e + i * d).update(from: tb.baseAddress! + nodes[r] * d, count: d)
                        (z + i * m).update(from: zb.baseAddress! + nodes[r] * m, count: m)
                        row.update(from: e + i * d, count: d)
                        if mmNode { (row + d).update(from: z + i * m, count: m) }   // else zeros (`mmNodeFeature`)
                    }
                    RelevanceKernel.products(e, rows: rows, keys: wqPacked, scale: 1, into: q, ldc: ldq)
                    // The Co-GSU's product reads the queries d apart (a row moves down, never over one not yet moved).
                    if ldq != d { for i in 1..<max(1, rows) { for j in 0..<d { q[i * d + j] = q[i * ldq + j] } } }
                    RelevanceKernel.products(e, rows: rows, keys: wqMMPacked, scale: 1, into: qMM, ldc: ldqMM)
                    if useCo {
                        // Eq. 11–12: Co-GSU relevances, top-K, Co-SBS reusing the scores.
                        ctx.kCoPacked.products(q, rows: rows, scale: scale, into: relevances, ldc: ldr)
                        for i in 0..<rows {
                            let scores = ctx.kCoPacked.row(relevances + i * ldr)
                            let o = xs + i * width + d + m
                            if let coOut {
                                coOut.write(range.lowerBound + i, width: coSelected, relevances: scores) { top, weights in
                                    Self.coAttention(scores, k: k, values: ctx.vCo, into: o, top: top, weights: weights, prefetch: true)
                                }
                            } else {
                                Self.coAttention(scores, k: k, values: ctx.vCo, into: o, top: top, weights: esuWeights, prefetch: true)
                            }
                        }
                    }
                    if useMM {
                        // Eq. 13–14: MM-GSU relevances on the frozen embeddings, top-K, MM-SBS with its own W^mm.
                        ctx.zMMPacked.products(z, rows: rows, scale: 1, into: relevances, ldc: ldr)
                        for i in 0..<rows {
                            let scores = ctx.zMMPacked.row(relevances + i * ldr)
                            let o = xs + i * width + 2 * d + m
                            if let mmOut {
                                mmOut.write(range.lowerBound + i, width: mmSelected, relevances: scores) { top, weights in
                                    Self.mmAttention(scores, k: k, query: qMM + i * ldqMM, keys: kmb.baseAddress!, scale: scale,
                                                     values: ctx.vMM, into: o, top: top, weights: weights, prefetch: true)
                                }
                            } else {
                                Self.mmAttention(scores, k: k, query: qMM + i * ldqMM, keys: kmb.baseAddress!, scale: scale,
                                                 values: ctx.vMM, into: o, top: top, weights: esuWeights, prefetch: true)
                            }
                        }
                    }
                }
                let y = head(x, packed: weights.head, bias: bias, caches: false, packedTowers: weights.towers).logits
                y.storage.withUnsafeBufferPointer { (logitsOut.base + range.lowerBound * objectives).update(from: $0.baseAddress!, count: rows * objectives) }
            }
        }}}}
        }
        if keepSelections {
            co = GSUResult(nodes: useCo ? n : 0, width: coSelected, keepScores: true) { coOut in
                mm = GSUResult(nodes: useMM ? n : 0, width: mmSelected, keepScores: true) { mmOut in
                    scored(useCo ? coOut : nil, useMM ? mmOut : nil)
                }
            }
        } else {
            scored(nil, nil)
        }
        return done()
    }
}

extension NodeEstimator {
    /// The weights the scoring pass reads, packed for `RelevanceKernel`: both query projections, the head's
    /// layers side by side (and their biases), every tower's layers. Packing is serial work (about 5 % of the
    /// calling thread's time in a beam request when it was done at every level, 2–3 % of the request's time);
    /// `BeamSearch.run` packs once per request, and a caller that scores many requests with unchanged
    /// parameters can pack once for all of them. Stale as soon as a parameter changes (training).
    public struct ScoringWeights: Sendable {
        let wq: PackedKeys, wqMM: PackedKeys
        /// The head's weights over the node columns of x and over x_user (`headUserBias`), and its bias.
        let head: PackedKeys, headUser: PackedKeys
        let headBias: [Float]
        let towers: [[PackedKeys]]
    }

    /// What a training step's instances read, packed once for all of them (the parameters change only between
    /// steps): the scoring weights, which the training forward pass reads as well; the K and V projections
    /// of the context; the backward pass's transposed products (dOut·Wᵀ for Wq, Wq^mm, [Wk | Wv], [Wk^mm | Wv^mm], and
    /// the head's rows over x's learned columns). The same values as packing them where they are used.
    public struct TrainingWeights: Sendable {
        public let scoring: ScoringWeights
        let wk: PackedKeys, wv: PackedKeys, wkMM: PackedKeys, wvMM: PackedKeys
        /// PackedKeys(W) of each projection: W's rows as the keys, so that a product is dOut·Wᵀ; for K and V
        /// (and their MM-SBS twins) the rows of [Wk | Wv], for [dK | dV]·[Wk | Wv]ᵀ.
        struct Transposed: Sendable { let wq, wqMM, kv, kvMM: PackedKeys }
        let transposed: Transposed
        let headInputs: PackedKeys, headUserInputs: PackedKeys
    }

    public func trainingWeights() -> TrainingWeights {
        TrainingWeights(scoring: scoringWeights(), wk: PackedKeys(columnsOf: wk.value), wv: PackedKeys(columnsOf: wv.value),
                        wkMM: PackedKeys(columnsOf: wkMM.value), wvMM: PackedKeys(columnsOf: wvMM.value),
                        transposed: .init(wq: PackedKeys(wq.value), wqMM: PackedKeys(wqMM.value),
                                          kv: PackedKeys(Matrix.hstack([wk.value, wv.value])),
                                          kvMM: PackedKeys(Matrix.hstack([wkMM.value, wvMM.value]))),
                        headInputs: packedHeadInputWeights(), headUserInputs: packedHeadUserInputWeights())
    }

    public func scoringWeights() -> ScoringWeights {
        ScoringWeights(wq: PackedKeys(columnsOf: wq.value), wqMM: PackedKeys(columnsOf: wqMM.value), head: packedHeadWeights(),
                       headUser: packedHeadUserWeights(), headBias: headBias(), towers: packedTowerWeights())
    }

    /// Every tower's layers' weights, packed for `RelevanceKernel` (what `Linear.forwardRowwise` packs per call).
    func packedTowerWeights() -> [[PackedKeys]] { towers.map { $0.layers.map { PackedKeys(columnsOf: $0.weight.value) } } }

    /// A tower's single output for `rows` rows of its input (rows × its input width, row-major): each layer's
    /// product by `RelevanceKernel` on `packed` weights, then its bias, and the ReLU between layers — the
    /// operations of `MLP.forward` over rowwise layers in their order, so the same values bit for bit.
    static func towerOutputs(_ tower: MLP, _ packed: [PackedKeys], _ input: UnsafePointer<Float>, rows: Int) -> [Float] {
        precondition(tower.layers.last?.outputs == 1 && packed.count == tower.layers.count, "towerOutputs: a tower ends in one output")
        if rows == 0 { return [] }
        let widest = packed.map(\.paddedCount).max() ?? 1
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * rows * widest) { buffer in
            let a = buffer.baseAddress!, b = a + rows * widest
            var current = UnsafePointer(input), spare = a
            for (l, layer) in tower.layers.enumerated() {
                let keys = packed[l], ld = keys.paddedCount, width = layer.outputs, relu = l < tower.layers.count - 1
                RelevanceKernel.products(current, rows: rows, keys: keys, scale: 1, into: spare, ldc: ld)
                // Bias and ReLU, the rows closed up to `width` apart (in place: every write lands at or
                // before the value it replaces, and every value is read before a write can reach it).
                let bias = layer.bias?.value.storage
                for r in 0..<rows {
                    for j in 0..<width {
                        var v = spare[r * ld + j]
                        if let bias { v += bias[j] }
                        spare[r * width + j] = relu ? (0 >= v ? 0 : v) : v
                    }
                }
                current = UnsafePointer(spare)
                spare = spare == a ? b : a
            }
            return Array(UnsafeBufferPointer(start: current, count: rows))
        }
    }
}

/// A worker's top-K scratch in the scoring pass (each worker its own k + 1 slots).
private struct IndexSink: @unchecked Sendable {
    let base: UnsafeMutablePointer<Int>
    init(_ base: UnsafeMutablePointer<Int>) { self.base = base }
}
