import MISSCore
@testable import MISSModel

/// The estimator tests' world: `items` random L2-normalised MM embeddings of `mmDim` dimensions, their
/// multi-modal tree, and an estimator with `config` (its `seed`) over them whose node ID embeddings are drawn
/// N(0, std²), larger than the default initialisation so that attention weights are far from uniform. Draws
/// from `rng` in that order; the caller goes on drawing from it (histories, gradients).
func estimatorOnRandomTree(_ rng: inout Xoshiro256StarStar, items: Int, mmDim: Int, config: EstimatorConfig,
                           seed: UInt64, std: Float) -> (NodeEstimator, IndexTree) {
    let itemMM = Matrix.randomNormal(items, mmDim, using: &rng).l2NormalizedRows()
    let tree = IndexTree.build(embeddings: itemMM, kind: .multimodal)
    let est = NodeEstimator(config: config, tree: tree, itemMM: itemMM, seed: seed)
    est.nodeEmbedding.table.value = .randomNormal(tree.nodeCount, config.idDim, std: std, using: &rng)
    return (est, tree)
}
