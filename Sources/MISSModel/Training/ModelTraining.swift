import Foundation
import MISSCore
import MISSData

/// Level-wise training with validation, best-weight selection and early stopping: what `miss train` and
/// the paper suite both run.
public enum ModelTraining {
    public struct Options: Sendable {
        public var config = EstimatorConfig()
        public var trainer = LevelwiseTrainer.Config()
        /// Validate every N steps (0 = never); stop after `patience` validations without gain (0 = never).
        /// 400 and 5: 2000 steps without gain (at 3, early stopping ended some SampleData runs on a plateau).
        public var evalEvery = 400
        public var patience = 5
        public var validationUsers = 60
        /// The validation score is Recall@K at this K, with beam K: the rule every method of the suite early-stops by.
        public var validationK = 50
        /// Rank by one objective instead of the mean (`BeamSearch.Config.rankingObjective`), in validation too.
        public var rankingObjective: Int?
        /// The validation's beam search skips subtrees whose items are all in the history (`BeamSearch.Config`).
        public var skipSeenSubtrees = BeamSearch.Config().skipSeenSubtrees
        public init() {}
    }

    public struct Outcome {
        public var estimator: NodeEstimator
        public var stepsRun: Int
        public var samples: Int
        public var lastLoss: Double
        public var trainSeconds: Double
        public var validationSeconds: Double
        /// Best validation score (Recall@K on the validation users) and its step.
        public var best: (score: Double, step: Int)?
        /// Every validation in order.
        public var history: [Validation]

        public var samplesPerSecond: Double { Double(samples) / max(1e-9, trainSeconds) }

        public var trainingMetrics: [String: Double] {
            var m: [String: Double] = ["steps": Double(stepsRun), "final_loss": lastLoss, "samples": Double(samples),
                                       "seconds": trainSeconds, "samples_per_second": samplesPerSecond]
            if let best {
                m["best_step"] = Double(best.step); m["validation_recall"] = best.score
            }
            return m
        }
    }

    /// Trains a new estimator (seeded by `options.trainer.seed`) on `tree` for `dataset`'s training users,
    /// validating on its validation users. `checkpoint` runs after every validation with the current weights;
    /// `progress` after every step with the best validation so far. The best weights are restored at the end.
    public static func run(dataset: Dataset, tree: IndexTree, itemMM: Matrix, split: EvaluationSplit, options: Options,
                           progress: ((LevelwiseTrainer.StepReport, Double, (score: Double, step: Int)?) -> Void)? = nil,
                           checkpoint: ((NodeEstimator, Int, Double) throws -> Void)? = nil) throws -> Outcome {
        let estimator = NodeEstimator(config: options.config, tree: tree, itemMM: itemMM, seed: options.trainer.seed)
        let validation = Array(EvaluationSplit.usersWithTargets(split.validation, in: dataset).prefix(options.validationUsers))
        var stopping = EarlyStopping(patience: options.patience)
        var stepsRun = 0, samples = 0
        var lastLoss = 0.0, trainSeconds = 0.0, validationSeconds = 0.0
        var history: [Validation] = []
        var lastTick = Date()
        let steps = options.trainer.steps
        try LevelwiseTrainer(dataset: dataset, tree: tree, users: split.train).train(estimator, config: options.trainer, progress: { r in
            samples += r.samples
            lastLoss = r.loss
            trainSeconds += Date().timeIntervalSince(lastTick)
            lastTick = Date()
            progress?(r, Double(samples) / max(1e-9, trainSeconds), stopping.best.map { ($0.score, $0.step) })
        }, control: { r in
            stepsRun = r.step
            guard options.evalEvery > 0, !validation.isEmpty, r.step % options.evalEvery == 0 || r.step == steps else { return .proceed }
            let v0 = Date()
            let report = Evaluation.evaluate(estimator: estimator, tree: tree, dataset: dataset, users: validation,
                                             k: options.validationK, beamSize: options.validationK,
                                             skipSeenSubtrees: options.skipSeenSubtrees, rankingObjective: options.rankingObjective)
            let score = report.recall
            history.append(Validation(step: r.step, score: score))
            let (_, stop) = stopping.record(score: score, step: r.step, parameters: estimator.parameters)
            try checkpoint?(estimator, r.step, score)
            validationSeconds += Date().timeIntervalSince(v0)
            lastTick = Date()
            return stop ? .stop : .proceed
        })
        stopping.restoreBest(into: estimator.parameters)
        return Outcome(estimator: estimator, stepsRun: stepsRun, samples: samples, lastLoss: lastLoss, trainSeconds: trainSeconds,
                       validationSeconds: validationSeconds, best: stopping.best.map { ($0.score, $0.step) }, history: history)
    }
}
