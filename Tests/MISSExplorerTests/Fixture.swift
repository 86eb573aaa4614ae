import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData
import MISSModel
import MISSExplorer

/// A tiny trained bundle on a synthetic world: the real estimator, small enough for debug builds.
enum Fixture {
    static let model = makeModel(topK: 10)
    /// The same bundle with each GSU's top-24: lists longer than a 24-row screen holds.
    static let longListModel = makeModel(topK: 24)

    static func makeModel(topK: Int) -> ExplorerModel {
        var wc = SyntheticWorld.Config()
        wc.seed = 3; wc.items = 320; wc.users = 60; wc.minLength = 30; wc.maxLength = 240
        let d = SyntheticWorld.generate(wc).dataset
        let mm = d.modalities[0].values.l2NormalizedRows()
        let tree = IndexTree.build(embeddings: mm, kind: .multimodal)
        var c = EstimatorConfig()
        c.idDim = 8; c.coLength = 40; c.mmLength = 80; c.topK = topK; c.experts = 2; c.expertHidden = 8; c.towerHidden = 4
        c.objectives = d.objectives.count
        let est = NodeEstimator(config: c, tree: tree, itemMM: mm, seed: 5)
        let split = EvaluationSplit(dataset: d, seed: 1)
        var tc = LevelwiseTrainer.Config()
        tc.steps = 15; tc.instancesPerBatch = 4; tc.seed = 2
        try! LevelwiseTrainer(dataset: d, tree: tree, users: split.train).train(est, config: tc)
        var b = ModelBundle(estimator: est, tree: tree, embeddings: ItemEmbeddings(content: mm, multimodal: mm, textSource: "dataset"),
                            dataset: d, splitSeed: 1, training: ["steps": 15])
        var so = SASRecTraining.Options()
        so.config.dim = 8; so.config.maxLength = 20; so.config.negatives = 16; so.steps = 20; so.batch = 8; so.evalEvery = 0
        b.sasrec = try! SASRecTraining.run(dataset: d, split: split, options: so).model
        return ExplorerModel(bundle: b, dataset: d, bundlePath: "fixture.bundle", dataPath: "fixture.missdata")
    }

    static let row: Int = model.firstEvaluationUser!

    /// The trace with a fixed search time, so that screens do not depend on the machine's speed.
    static func trace(row: Int = row, model: ExplorerModel = model, beamSize: Int = 6) -> UserTrace {
        var t = model.trace(row: row, beamSize: beamSize, finalK: 10)
        t.seconds = 0.0125
        return t
    }

    /// The estimator's per-request context for a trace's user (what the trace was computed from).
    static func context(_ t: UserTrace) -> UserContext {
        model.bundle.estimator.context(history: model.dataset.behaviourItems[model.history(of: t.user.index)])
    }

    static let aggregates = aggregates(of: model)
    /// Every evaluation user's Recall@10 at beam 6 (the states' settings).
    static let recalls = model.recalls(beamSize: 6, finalK: 10)
    static func aggregates(of model: ExplorerModel) -> Aggregates { model.aggregates(heatmapRows: 20, maxUsers: 500, buckets: 32, bins: 20) }

    /// A state with the user's trace and the aggregates loaded, at a size.
    static func state(width: Int = 80, height: Int = 24, view: View = .beam, level: Int? = nil, model: ExplorerModel = model,
                      row: Int = row) -> ExplorerState {
        var s = ExplorerState.initial(catalog: model.catalog, users: model.users, colorMode: .mono, row: row, view: view, beamSize: 6, finalK: 10)
        #expect(s.pending == [.computeAggregates, .computeRecalls, .loadUser(row)])
        s.pending = []
        s = reduce(s, .resized(width: width, height: height))
        s = reduce(s, .userLoaded(trace(row: row, model: model)))
        s = reduce(s, .aggregatesReady(model === Self.model ? aggregates : aggregates(of: model)))
        s = reduce(s, .recallsReady(model === Self.model ? recalls : model.recalls(beamSize: 6, finalK: 10)))
        if let level { s.level = level; s.candidateCursor = 0 }
        return s
    }
}
