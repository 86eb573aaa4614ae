import Foundation
import Testing
import MISSCore
import MISSTestSupport
@testable import MISSModel

@Suite struct NodeEstimatorTests {
    func tiny(useCo: Bool = true, useMM: Bool = true) -> (NodeEstimator, IndexTree, [Int32]) {
        var rng = Xoshiro256StarStar(seed: 31)
        var c = EstimatorConfig()
        c.idDim = 4; c.coLength = 12; c.mmLength = 10; c.topK = 4; c.experts = 2; c.expertHidden = 5
        c.towerHidden = 3; c.objectives = 2; c.userRecent = 5; c.useCoGSU = useCo; c.useMMGSU = useMM
        let (est, tree) = estimatorOnRandomTree(&rng, items: 20, mmDim: 6, config: c, seed: 5, std: 0.8)
        let history = (0..<15).map { _ in Int32(rng.nextInt(below: 20)) }
        return (est, tree, history)
    }

    /// Finite-difference check of the whole estimator loss (BCE over nodes × objectives, Eq. 5–6).
    @Test(arguments: [(true, true), (true, false), (false, true)])
    func wholeLossGradient(_ ablation: (Bool, Bool)) {
        let (est, tree, history) = tiny(useCo: ablation.0, useMM: ablation.1)
        let nodes = [1, 4, tree.levelStarts[3] + 2, tree.leafNode(position: 7), tree.leafNode(position: 12)]
        let labels = Matrix([[1, 0], [0, 0], [1, 1], [0, 1], [1, 0]])
        func loss() -> Double {
            let ctx = est.context(history: history[...])
            return BCEWithLogits.loss(logits: est.forward(ctx, nodes: nodes).logits, labels: labels).loss
        }
        est.zeroGrad()
        let ctx = est.context(history: history[...])
        let f = est.forward(ctx, nodes: nodes)
        #expect(f.co.nodes == (ablation.0 ? 5 : 0) && f.mm.nodes == (ablation.1 ? 5 : 0))
        // The history repeats items in both windows: the projections' backward runs over distinct items.
        #expect(ctx.coGroups != nil && ctx.mmGroups != nil)
        let (_, dLogits) = BCEWithLogits.loss(logits: f.logits, labels: labels)
        est.backward(ctx, f, dLogits: dLogits)
        for p in est.parameters {
            if !ablation.0 && p.name.hasPrefix("co.") { #expect(p.grad.maxAbs == 0); continue }
            if !ablation.1 && p.name.hasPrefix("mm.") { #expect(p.grad.maxAbs == 0); continue }
            checkGradient(p, loss: loss)
        }
    }

    /// The baselines see no multi-modal feature: without MM-GSU and without `mmNodeFeature`, the node's frozen
    /// MM embedding z_n reaches no score — two estimators that differ only in their trees' node MM embeddings
    /// give the same logits, in training's forward pass and in scoring. With `mmNodeFeature` the same change
    /// moves them (the check can fail), and the head's z_n columns are the only x columns that are zeros.
    @Test(arguments: [false, true])
    func mmNodeFeatureDecidesWhetherZnReachesTheScores(_ mmNode: Bool) {
        var rng = Xoshiro256StarStar(seed: 41)
        var c = EstimatorConfig()
        c.idDim = 4; c.coLength = 12; c.mmLength = 10; c.topK = 4; c.experts = 2; c.expertHidden = 5
        c.towerHidden = 3; c.objectives = 2; c.userRecent = 5; c.useMMGSU = false; c.mmNodeFeature = mmNode
        let itemMM = Matrix.randomNormal(20, 6, using: &rng).l2NormalizedRows()
        let other = Matrix.randomNormal(20, 6, using: &rng).l2NormalizedRows()
        let tree = IndexTree.build(embeddings: itemMM, kind: .multimodal)
        let a = NodeEstimator(config: c, tree: tree, itemMM: itemMM, seed: 5)
        let b = NodeEstimator(config: c, tree: tree.withNodeEmbeddings(from: other), itemMM: other, seed: 5)
        #expect(a.nodeMM.storage != b.nodeMM.storage)
        let history = (0..<15).map { _ in Int32(rng.nextInt(below: 20)) }
        let nodes = Array(1..<tree.nodeCount)
        let fa = a.forward(a.context(history: history[...]), nodes: nodes), fb = b.forward(b.context(history: history[...]), nodes: nodes)
        let sa = a.forward(a.context(history: history[...]), nodes: nodes, keepSelections: false, backwardCaches: false)
        let sb = b.forward(b.context(history: history[...]), nodes: nodes, keepSelections: false, backwardCaches: false)
        #expect((fa.logits.storage == fb.logits.storage) == !mmNode)
        #expect((sa.logits.storage == sb.logits.storage) == !mmNode)
        let zColumns = fa.x.columns(c.idDim..<(c.idDim + 6))
        #expect((zColumns.maxAbs == 0) == !mmNode)
    }

    /// x_user's products folded into the head's bias (`headUserBias`): the forward passes' logits are the head
    /// over Eq. 16's whole x = [e_n | z_n | x_user | x_co | x_mm] (`headLogits`), up to rounding.
    @Test func userColumnsFoldedIntoTheBiasGiveTheWholeInputsLogits() {
        let (est, tree, history) = tiny()
        let ctx = est.context(history: history[...])
        #expect(ctx.xUser.maxAbs > 0.01)
        let nodes = Array(1..<tree.nodeCount)
        let f = est.forward(ctx, nodes: nodes)
        let d = est.config.idDim, m = est.nodeMM.cols
        #expect(f.x.cols == 3 * d + m)
        let user = Matrix(rows: nodes.count, cols: d, storage: (0..<nodes.count).flatMap { _ in ctx.xUser.storage })
        let whole = Matrix.hstack([f.x.columns(0..<(d + m)), user, f.x.columns((d + m)..<(3 * d + m))])
        #expect(whole.cols == est.config.inputWidth(mmDim: m))
        let reference = est.headLogits(whole, rowBlocks: 1)
        let worst = zip(f.logits.storage, reference.storage).map { abs($0 - $1) }.max() ?? 1
        #expect(worst < 1e-5, "largest difference \(worst)")
        let scored = est.forward(ctx, nodes: nodes, keepSelections: false, backwardCaches: false)
        #expect(scored.logits.storage == f.logits.storage)
    }

    @Test func gradientReplicasSumToTheSequentialGradient() {
        // The trainer's workers: each instance's gradient goes into a replica (shared values, own gradients);
        // summing the replicas must give what one estimator accumulates over both instances.
        let (est, tree, history) = tiny()
        let jobs: [(ArraySlice<Int32>, [Int], Matrix)] = [
            (history[...], [1, 4, tree.leafNode(position: 7)], Matrix([[1, 0], [0, 0], [0, 1]])),
            (history.prefix(9), [2, tree.levelStarts[3] + 1, tree.leafNode(position: 3)], Matrix([[0, 1], [1, 1], [0, 0]])),
        ]
        func run(_ e: NodeEstimator, _ job: (ArraySlice<Int32>, [Int], Matrix)) {
            let ctx = e.context(history: job.0)
            let f = e.forward(ctx, nodes: job.1)
            e.backward(ctx, f, dLogits: BCEWithLogits.loss(logits: f.logits, labels: job.2).dLogits)
        }
        est.zeroGrad()
        for j in jobs { run(est, j) }
        let sequential = est.parameters.map(\.denseGradient)
        let replicas = [est.gradientReplica(), est.gradientReplica()]
        for (r, j) in zip(replicas, jobs) {
            r.syncValues(from: est)
            #expect(zip(r.parameters, est.parameters).allSatisfy { $0.value == $1.value && $0.name == $1.name })
            run(r, j)
        }
        est.zeroGrad()
        for r in replicas { for (p, q) in zip(est.parameters, r.parameters) { p.accumulateGradient(from: q) } }
        for (p, g) in zip(est.parameters, sequential) {
            let diff = zip(p.denseGradient.storage, g.storage).map { abs($0 - $1) }.max() ?? 0
            #expect(diff < 1e-6, "\(p.name): replicas differ from the sequential gradient by \(diff)")
            #expect(g.maxAbs > 0, "\(p.name): no gradient at all")
        }
        // The trainer packs the weights once per step (`trainingWeights`) for every instance's context, forward
        // and backward pass: the same gradients bit for bit. Another estimator's packed weights give others,
        // so the packed weights are what the passes read.
        func gradients(_ packed: NodeEstimator.TrainingWeights?) -> [[Float]] {
            est.zeroGrad()
            for j in jobs {
                let ctx = est.context(history: j.0, packed: packed)
                let f = est.forward(ctx, nodes: j.1, scoringWeights: packed?.scoring)
                est.backward(ctx, f, dLogits: BCEWithLogits.loss(logits: f.logits, labels: j.2).dLogits, packed: packed)
            }
            return est.parameters.map(\.denseGradient.storage)
        }
        let unpacked = gradients(nil)
        #expect(gradients(est.trainingWeights()) == unpacked)
        let other = NodeEstimator(config: est.config, tree: tree, itemMM: est.itemMM, seed: 6)
        let foreign = gradients(other.trainingWeights())
        #expect(zip(foreign, unpacked).allSatisfy { $0 != $1 })
    }

    @Test(arguments: [16, 64])
    func scoringInRowBlocksGivesTheTrainingForwardsLogitsBitForBit(d: Int) {
        // Beam search and evaluation score with backwardCaches: false (`scoringForward`: every stage of a row,
        // head included, in blocks of rows on all cores, its gathers prefetched); training and the gradient
        // check run the whole batch. Every stage is rowwise, so a row's logits cannot depend on the blocks.
        // (With BLAS they did: measured, a few units in the last place.) d 64: two 32-column passes per pooling.
        var rng = Xoshiro256StarStar(seed: 77)
        var c = EstimatorConfig()
        c.idDim = d; c.coLength = 60; c.mmLength = 90; c.topK = 8; c.experts = 4; c.expertHidden = 64; c.towerHidden = 32
        let (est, tree) = estimatorOnRandomTree(&rng, items: 300, mmDim: 16, config: c, seed: 3, std: 0.5)
        for p in est.parameters where p.name.hasSuffix(".bias") { p.value = .randomNormal(p.value.rows, p.value.cols, std: 0.3, using: &rng) }
        let history = (0..<120).map { _ in Int32(rng.nextInt(below: 300)) }
        let ctx = est.context(history: history[...])
        let nodes = Array(tree.levelStarts[5]..<tree.nodeCount).filter { $0 % 3 != 1 }
        #expect(nodes.count > 2 * 64)
        func close(_ a: Matrix, _ b: Matrix) -> Bool { a.rows == b.rows && a.cols == b.cols && a.storage == b.storage }
        let whole = est.forward(ctx, nodes: nodes)
        let scoring = est.forward(ctx, nodes: nodes, keepSelections: false, backwardCaches: false)
        #expect(whole.logits.maxAbs > 0.5)
        #expect(close(scoring.logits, whole.logits))
        #expect(est.forward(ctx, nodes: nodes, keepSelections: false, backwardCaches: false).logits.storage == scoring.logits.storage)
        #expect(scoring.co.isEmpty && scoring.mm.isEmpty)
        // With the selections kept (the explorer's trace): both GSUs' selections of the training forward pass.
        let traced = est.forward(ctx, nodes: nodes, keepSelections: true, backwardCaches: false)
        #expect(traced.logits.storage == whole.logits.storage)
        #expect(traced.co == whole.co)
        #expect(traced.mm == whole.mm)
        #expect(traced.co.nodes == nodes.count && traced.mm.nodes == nodes.count)
        // Any blocks, including ragged ones and more blocks than cores; a different head gives other logits.
        let x = Matrix.randomNormal(nodes.count, c.inputWidth(mmDim: 16), using: &rng)
        let one = est.headLogits(x, rowBlocks: 1)
        // The head's single pass over x for all experts and gates is each layer's own forward, bit for bit.
        let expertOut = est.experts.map { ReLU.forward($0.forward(x)) }
        for t in 0..<c.objectives {
            let y = est.towers[t].forward(est.gates[t].forward(x: x, experts: expertOut).out).y
            #expect((0..<x.rows).allSatisfy { one[$0, t] == y[$0, 0] }, "objective \(t)")
        }
        for blocks in [2, 3, 5, 7] {
            #expect(close(est.headLogits(x, rowBlocks: blocks), one), "\(blocks) blocks")
            #expect(est.headLogits(x, rowBlocks: blocks).storage == est.headLogits(x, rowBlocks: blocks).storage)
        }
        let other = NodeEstimator(config: c, tree: tree, itemMM: est.itemMM, seed: 4)
        #expect(!close(other.headLogits(x, rowBlocks: 3), one))
        // A subset of the rows scores the same as those rows of the whole batch.
        let part = est.forward(ctx, nodes: Array(nodes[37..<191]), keepSelections: false, backwardCaches: false)
        #expect(close(part.logits, whole.logits.rows(37..<191)))
        // Weights packed once and handed in (`scoringWeights`, as a beam search does for all its levels) score
        // the same; and they are what is used: another estimator's packed weights give other logits.
        let packed = est.scoringWeights()
        #expect(est.forward(ctx, nodes: nodes, keepSelections: false, backwardCaches: false, scoringWeights: packed).logits.storage == whole.logits.storage)
        let foreign = est.forward(ctx, nodes: nodes, keepSelections: false, backwardCaches: false, scoringWeights: other.scoringWeights())
        #expect(!close(foreign.logits, whole.logits))
        let r = BeamSearch.run(estimator: est, tree: tree, context: ctx, config: .init(beamSize: 8, finalK: 5))
        let again = BeamSearch.run(estimator: est, tree: tree, context: ctx, config: .init(beamSize: 8, finalK: 5), weights: packed)
        #expect(r.items == again.items && r.scores == again.scores && r.items.count == 5)
    }

    @Test(arguments: [(true, true), (true, false), (false, true)])
    func contextOnSeveralCoresAndScoringGiveTheSameLogits(_ ablation: (Bool, Bool)) {
        // The context's two halves on two workers, and the scoring pass's parallel gathers and queries, give
        // the logits of the one-worker context and of the training forward pass, bit for bit; also with a GSU
        // switched off (its x columns are zeros) and with an empty history (both are).
        let (est, tree, history) = tiny(useCo: ablation.0, useMM: ablation.1)
        let nodes = Array(1..<tree.nodeCount)
        for h in [history[...], history.prefix(0)] {
            let one = est.context(history: h, workers: 1), two = est.context(history: h, workers: 2)
            let whole = est.forward(one, nodes: nodes).logits
            #expect(est.forward(two, nodes: nodes).logits.storage == whole.storage)
            #expect(est.forward(two, nodes: nodes, keepSelections: false, backwardCaches: false).logits.storage == whole.storage)
            #expect(est.forward(two, nodes: [], keepSelections: false, backwardCaches: false).logits.rows == 0)
        }
    }

    /// A history that repeats items (as lifelong ones do): the GSUs compute each distinct item's relevance once
    /// and read it back per position (`SequenceKeys`). Logits and both GSUs' selections (positions, scores,
    /// weights) are those of the context that packs every position, bit for bit; the gradients, whose K/V
    /// projections' backward runs over the distinct items (`ItemGroups`), agree up to rounding.
    @Test func repeatedItemsComputedOnceGiveTheSameForwardAndBackward() {
        var rng = Xoshiro256StarStar(seed: 88)
        var c = EstimatorConfig()
        c.idDim = 32; c.coLength = 150; c.mmLength = 300; c.topK = 20; c.experts = 2; c.expertHidden = 8; c.towerHidden = 4
        let (est, tree) = estimatorOnRandomTree(&rng, items: 60, mmDim: 32, config: c, seed: 9, std: 0.5)
        let history = (0..<400).map { _ in Int32(rng.nextInt(below: 25)) }
        let grouped = est.context(history: history[...]), every = est.context(history: history[...], distinctKeys: false)
        #expect(grouped.kCoPacked.isGrouped && grouped.zMMPacked.isGrouped)
        #expect(!every.kCoPacked.isGrouped && !every.zMMPacked.isGrouped)
        #expect(grouped.kCoPacked.packed.count <= 25 && grouped.zMMPacked.packed.count <= 25)
        let nodes = Array(tree.levelStarts[3]..<tree.nodeCount)
        let a = est.forward(grouped, nodes: nodes), b = est.forward(every, nodes: nodes)
        #expect(a.logits.storage == b.logits.storage && a.co == b.co && a.mm == b.mm)
        // Ties: a repeated item's positions share its score, so the top-K holds runs of equal scores.
        #expect(Set(a.co.scores(0)).count < a.co.width)
        #expect(est.forward(grouped, nodes: nodes, keepSelections: false, backwardCaches: false).logits.storage == b.logits.storage)
        let traced = est.forward(grouped, nodes: nodes, keepSelections: true, backwardCaches: false)
        #expect(traced.co == b.co && traced.mm == b.mm)
        let r = est.relevance(grouped, node: nodes[3]), s = est.relevance(every, node: nodes[3])
        #expect(r.co == s.co && r.mm == s.mm && r.co.count == 150 && r.mm.count == 300)
        let dLogits = Matrix.randomNormal(nodes.count, c.objectives, using: &rng)
        est.zeroGrad()
        est.backward(grouped, a, dLogits: dLogits)
        let ga = est.parameters.map(\.denseGradient.storage)
        est.zeroGrad()
        est.backward(every, b, dLogits: dLogits)
        let gb = est.parameters.map(\.denseGradient.storage)
        #expect(grouped.coGroups != nil && grouped.mmGroups != nil && every.coGroups == nil && every.mmGroups == nil)
        for (p, (x, y)) in zip(est.parameters, zip(ga, gb)) {
            let scale = max(1e-6, y.map { abs($0) }.max() ?? 0), worst = zip(x, y).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5 * scale, "\(p.name): largest difference \(worst) against \(scale)")
        }
        #expect(ga.contains { $0.contains { $0 != 0 } })
    }

    @Test func gsuSelectionsMatchABruteForceReference() {
        let (est, tree, history) = tiny()
        let ctx = est.context(history: history[...])
        let node = tree.levelStarts[2] + 1
        let f = est.forward(ctx, nodes: [node])
        // MM-GSU: z_n · z_i over the last L_mm behaviours, by hand.
        let mmItems = Array(history.suffix(10))
        let z = tree.nodeEmbeddings.row(node)
        let raw = mmItems.map { item in zip(z, est.itemMM.row(Int(item))).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
        let expected = Array(raw.indices.sorted { raw[$0] > raw[$1] || (raw[$0] == raw[$1] && $0 < $1) }.prefix(4))
        #expect(Array(f.mm.positions(0)) == expected)
        for (k, pos) in expected.enumerated() { #expect(abs(Array(f.mm.scores(0))[k] - raw[pos]) < 1e-5) }
        // Co-GSU: (Wq e_n)·(Wk e_i)/√d.
        let e = est.nodeEmbedding.table.value
        let q = matmul(e.rows(node..<(node + 1)), est.wq.value)
        let coItems = Array(history.suffix(12))
        let r = coItems.map { item -> Float in
            let leaf = Int(est.itemLeafNode[Int(item)])
            let k = matmul(e.rows(leaf..<(leaf + 1)), est.wk.value)
            return zip(q.storage, k.storage).reduce(Float(0)) { $0 + $1.0 * $1.1 } / 2
        }
        let coExpected = Array(r.indices.sorted { r[$0] > r[$1] || (r[$0] == r[$1] && $0 < $1) }.prefix(4))
        #expect(Array(f.co.positions(0)) == coExpected)
        #expect(abs(f.co.weights(0).reduce(0, +) - 1) < 1e-5 && abs(f.mm.weights(0).reduce(0, +) - 1) < 1e-5)
    }

    /// The flat selections: each node's row where the forward pass wrote it, the scratch slot past the row
    /// cleared, no scores unless kept, and equality that sees a single different weight.
    @Test func gsuResultRowsAreWhereTheyWereWritten() {
        func result(keepScores: Bool, nudge: Float = 0) -> NodeEstimator.GSUResult {
            NodeEstimator.GSUResult(nodes: 3, width: 2, keepScores: keepScores) { out in
                let relevances: [Float] = [0.5, -1, 2, 7, 3]
                for r in 0..<3 {
                    relevances.withUnsafeBufferPointer { rel in
                        out.write(r, width: 2, relevances: SequenceKeys(PackedKeys(Matrix(rows: 5, cols: 1))).row(rel.baseAddress!)) { top, weights in
                            top[0] = 4 - r; top[1] = r; top[2] = 99           // slot 2: the top-K's scratch
                            weights[0] = Float(r) + 0.25; weights[1] = Float(r) + nudge; weights[2] = 42
                            return 2
                        }
                    }
                }
            }
        }
        let g = result(keepScores: true)
        #expect(g.nodes == 3 && g.width == 2 && !g.isEmpty)
        #expect(Array(g.positions(0)) == [4, 0] && Array(g.positions(1)) == [3, 1] && Array(g.positions(2)) == [2, 2])
        #expect(Array(g.weights(2)) == [2.25, 2])
        #expect(Array(g.scores(0)) == [3, 0.5] && Array(g.scores(1)) == [7, -1] && Array(g.scores(2)) == [2, 2])
        #expect(g.positionStorage[2] == 0 && g.weightStorage[5] == 0 && g.scoreStorage[8] == 0)
        let unscored = result(keepScores: false)
        #expect(unscored.scores(1).isEmpty && Array(unscored.positions(1)) == [3, 1] && unscored != g)
        #expect(result(keepScores: true) == g && result(keepScores: true, nudge: 1e-3) != g)
        #expect(NodeEstimator.GSUResult.none.isEmpty && NodeEstimator.GSUResult.none.nodes == 0)
    }

    /// The attention backward over the selected positions against the formula in Double, node by node, at
    /// the default width and others (with and without a tail of < 32 columns); positions repeat within and
    /// across nodes, and some positions are never selected (their dK and dV rows are zero).
    @Test(arguments: [32, 24, 64])
    func selectedAttentionBackwardMatchesTheFormula(d: Int) {
        var rng = Xoshiro256StarStar(seed: UInt64(d))
        let n = 9, length = 40, width = 7, scale: Float = 0.3
        let q = Matrix.randomNormal(n, d, using: &rng), keys = Matrix.randomNormal(length, d, using: &rng)
        let values = Matrix.randomNormal(length, d, using: &rng), dX = Matrix.randomNormal(n, d, using: &rng)
        var picks: [[Int]] = [], weights: [[Float]] = []
        for _ in 0..<n {
            picks.append((0..<width).map { _ in rng.nextInt(below: length - 5) })   // positions ≥ 35 never selected
            let w = (0..<width).map { _ in rng.nextFloat() + 0.1 }, total = w.reduce(0, +)
            weights.append(w.map { $0 / total })
        }
        let gsu = NodeEstimator.GSUResult(nodes: n, width: width, keepScores: false) { out in
            for r in 0..<n {
                for k in 0..<width { out.positions(r)[k] = picks[r][k]; out.weights(r)[k] = weights[r][k] }
            }
        }
        let (dQ, dKV) = NodeEstimator.selectedAttentionBackward(gsu, dX: dX, queries: q, keys: keys, values: values, scale: scale)
        #expect(dKV.rows == length && dKV.cols == 2 * d)
        let dK = dKV.columns(0..<d), dV = dKV.columns(d..<(2 * d))
        var rQ = [Double](repeating: 0, count: n * d), rK = [Double](repeating: 0, count: length * d), rV = rK
        for r in 0..<n {
            let g = picks[r].map { pos in (0..<d).reduce(0.0) { $0 + Double(dX[r, $1]) * Double(values[pos, $1]) } }
            let mean = zip(weights[r], g).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            for (k, pos) in picks[r].enumerated() {
                let a = Double(weights[r][k]), ds = a * (g[k] - mean) * Double(scale)
                for j in 0..<d {
                    rQ[r * d + j] += ds * Double(keys[pos, j])
                    rK[pos * d + j] += ds * Double(q[r, j])
                    rV[pos * d + j] += a * Double(dX[r, j])
                }
            }
        }
        func close(_ m: Matrix, _ ref: [Double]) -> Bool { zip(m.storage, ref).allSatisfy { abs(Double($0) - $1) < 1e-4 } }
        #expect(close(dQ, rQ) && close(dK, rK) && close(dV, rV), "d \(d)")
        #expect((35..<length).allSatisfy { pos in (0..<d).allSatisfy { dK[pos, $0] == 0 && dV[pos, $0] == 0 } })
        #expect(dV.maxAbs > 0.01 && dK.maxAbs > 0.001 && dQ.maxAbs > 0.001)
    }

    /// A window that repeats items (`ItemGroups`): positions of one item share its key and value rows, and the
    /// grouped backward's dK | dV row of an item is the sum of its positions' rows in the per-position backward
    /// (up to rounding: the same terms, summed in another order); dQ is the same, bit for bit.
    @Test(arguments: [32, 24])
    func selectedAttentionBackwardSumsAnItemsPositions(d: Int) {
        var rng = Xoshiro256StarStar(seed: UInt64(100 + d))
        let n = 11, length = 60, width = 9, scale: Float = 0.25
        let items = (0..<length).map { _ in Int32(rng.nextInt(below: 17)) }
        let g = distinctPositions(items)
        let groups = try! #require(ItemGroups(g))
        #expect(groups.first.count < length && groups.first.count <= 17)
        let itemKeys = Matrix.randomNormal(17, d, using: &rng), itemValues = Matrix.randomNormal(17, d, using: &rng)
        let keys = itemKeys.gatherRows(items.map(Int.init)), values = itemValues.gatherRows(items.map(Int.init))
        let q = Matrix.randomNormal(n, d, using: &rng), dX = Matrix.randomNormal(n, d, using: &rng)
        let gsu = NodeEstimator.GSUResult(nodes: n, width: width, keepScores: false) { out in
            for r in 0..<n {
                let w = (0..<width).map { _ in rng.nextFloat() + 0.1 }, total = w.reduce(0, +)
                for k in 0..<width { out.positions(r)[k] = rng.nextInt(below: length); out.weights(r)[k] = w[k] / total }
            }
        }
        let every = NodeEstimator.selectedAttentionBackward(gsu, dX: dX, queries: q, keys: keys, values: values, scale: scale)
        let grouped = NodeEstimator.selectedAttentionBackward(gsu, dX: dX, queries: q, keys: keys, values: values, scale: scale,
                                                              groups: groups)
        #expect(grouped.dQ.storage == every.dQ.storage)
        #expect(every.dKV.rows == length && grouped.dKV.rows == groups.first.count && grouped.dKV.cols == 2 * d)
        var sums = Matrix(rows: groups.first.count, cols: 2 * d)
        for pos in 0..<length { for j in 0..<(2 * d) { sums[Int(groups.slots[pos]), j] += every.dKV[pos, j] } }
        let worst = zip(grouped.dKV.storage, sums.storage).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-5 * max(1, sums.maxAbs), "d \(d): largest difference \(worst)")
        #expect(sums.maxAbs > 0.01)
    }

    /// The poolings' sum of scaled rows (32 columns at a time in registers, then a tail of axpys), with and
    /// without prefetching: bit for bit the axpys into a zero row, in term order, that it stands for.
    @Test(arguments: [8, 32, 40, 64, 72, 96, 136])
    func sumOfScaledRowsIsTheAxpysInOrder(d: Int) {
        var rng = Xoshiro256StarStar(seed: UInt64(100 + d))
        let table = Matrix.randomNormal(500, d, using: &rng)
        let picks = (0..<23).map { _ in rng.nextInt(below: 500) }, coefficients = (0..<23).map { _ in rng.nextFloat() * 2 - 1 }
        var reference = [Float](repeating: 0, count: d)
        for (c, pos) in zip(coefficients, picks) { for j in 0..<d { reference[j] += c * table[pos, j] } }
        for ahead in [0, 1, 6, 40] {
            for terms in [0..<23, 5..<9, 3..<3] {
                var expected = [Float](repeating: 0, count: d)
                for i in terms { for j in 0..<d { expected[j] += coefficients[i] * table[picks[i], j] } }
                var out = [Float](repeating: .nan, count: d)
                table.storage.withUnsafeBufferPointer { t in
                    out.withUnsafeMutableBufferPointer { o in
                        NodeEstimator.sumOfScaledRows(into: o.baseAddress!, d, terms, prefetchAhead: ahead) { i in
                            (coefficients[i], t.baseAddress! + picks[i] * d)
                        }
                    }
                }
                #expect(out == expected, "d \(d), ahead \(ahead), terms \(terms)")
            }
        }
        #expect(reference.contains { abs($0) > 0.5 })
    }

    /// The training FLOP count (the bench's FLOP bound) on a configuration small enough to count by hand:
    /// d 2, m 3 (so x is 2 + 3 + 3·2 = 11 wide), L_co 3, L_mm 4, K 2, one expert of 2, one objective with a
    /// tower of 1, one node.
    @Test func trainingFLOPsCountedByHand() {
        var c = EstimatorConfig()
        c.idDim = 2; c.coLength = 3; c.mmLength = 4; c.topK = 2; c.experts = 1; c.expertHidden = 2
        c.towerHidden = 1; c.objectives = 1
        // Context K and V of both windows, 2·2·(3 + 4)·2·2 = 112, and the node's two queries, 2·2·2·2 = 16;
        // their backward (weight and input gradients) twice that: 128 + 256.
        // Co-GSU: relevance 2·3·2 = 12, pooling 2·2·2 = 8; backward 8·2·2 = 32.
        // MM-GSU: relevance 2·4·3 = 24, MM-SBS scores and pooling 4·2·2 = 16; backward 32.
        // Head over x: expert 2·11·2 = 44, gate 2·11·1 = 22 (66); mixing 2·1·2 = 4, tower 2·2·1 + 2·1 = 6.
        // Its backward: weight gradients 66, input gradients for the 8 learned columns of x 66·8/11 = 48,
        // the rest twice (20).
        let head = 66.0 + 10 + 66 + 48 + 20
        #expect(NodeEstimator.trainingFLOPs(config: c, mmDim: 3, coLength: 3, mmLength: 4, nodes: 1) == 128 + 256 + 60 + 64 + head)
        // Windows shorter than the lengths count what is there; an ablated GSU counts nothing.
        #expect(NodeEstimator.trainingFLOPs(config: c, mmDim: 3, coLength: 10, mmLength: 10, nodes: 1) == 128 + 256 + 60 + 64 + head)
        c.useMMGSU = false
        #expect(NodeEstimator.trainingFLOPs(config: c, mmDim: 3, coLength: 3, mmLength: 4, nodes: 1) == 128 + 256 + 20 + 32 + head)
        // x_user's 2 columns against the 3 outputs: 2·2·3 = 12 per node in each of the three products, once
        // per request where they are folded into the bias: 5 nodes leave 4 × 36 not executed, 1 node none.
        #expect(NodeEstimator.foldedUserFLOPs(config: c, nodes: 5) == 4 * 36)
        #expect(NodeEstimator.foldedUserFLOPs(config: c, nodes: 1) == 0)
        // A window of 4 positions holding 3 items, keys of 3 dimensions, 5 nodes: one repeated position's
        // products, 2·5·1·3 = 30, and its K and V projections' backward, 8·1·2·2 = 32; no repeats, nothing.
        #expect(NodeEstimator.repeatedItemFLOPs(config: c, keyDim: 3, positions: 4, distinct: 3, nodes: 5) == 30 + 32)
        #expect(NodeEstimator.repeatedItemFLOPs(config: c, keyDim: 3, positions: 4, distinct: 4, nodes: 5) == 0)
    }

    /// The head (experts and gates in one product, the rest row by row) gives the logits of its layers'
    /// own forward passes, bit for bit: towers narrower and wider than the experts, any row blocks.
    @Test(arguments: [4, 12, 20])
    func headIsItsLayersBitForBit(towerHidden: Int) {
        var rng = Xoshiro256StarStar(seed: 4)
        let itemMM = Matrix.randomNormal(60, 8, using: &rng).l2NormalizedRows()
        let tree = IndexTree.build(embeddings: itemMM, kind: .multimodal)
        var c = EstimatorConfig()
        c.idDim = 8; c.experts = 3; c.expertHidden = 8; c.towerHidden = towerHidden; c.objectives = 2
        let est = NodeEstimator(config: c, tree: tree, itemMM: itemMM, seed: 1)
        for p in est.parameters { p.value = .randomNormal(p.value.rows, p.value.cols, std: 0.5, using: &rng) }
        let x = Matrix.randomNormal(11, c.inputWidth(mmDim: 8), using: &rng)
        let expertOut = est.experts.map { ReLU.forward($0.forward(x)) }
        var reference = Matrix(rows: x.rows, cols: c.objectives)
        for t in 0..<c.objectives {
            let y = est.towers[t].forward(est.gates[t].forward(x: x, experts: expertOut).out).y
            for r in 0..<x.rows { reference[r, t] = y[r, 0] }
        }
        for blocks in [1, 3] { #expect(est.headLogits(x, rowBlocks: blocks).storage == reference.storage) }
        // Scoring's towers on weights packed once (the bias and ReLU of each layer, the rows closed up in place).
        let packed = est.packedTowerWeights()
        #expect(est.head(x, caches: false, packedTowers: packed).logits.storage == reference.storage)
        #expect(est.head(x, rows: 2..<9, caches: false, packedTowers: packed).logits.storage == reference.rows(2..<9).storage)
    }
}

