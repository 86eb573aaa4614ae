import MISSCore

/// One validation: its step and score (exact, for the record; printed rounded).
public struct Validation: Codable, Equatable, Sendable {
    public var step: Int
    public var score: Double
    public init(step: Int, score: Double) { self.step = step; self.score = score }

    /// "step:score" with the score to 3 decimals, as training prints it.
    public var short: String { String(format: "%d:%.3f", step, score) }
}

/// Best weights by validation score, and when to stop: what the tree models' training (`ModelTraining`) and
/// SASRec's (`SASRecTraining`) both do after every validation.
struct EarlyStopping {
    /// Validations without gain before stopping; 0 = never stop early.
    let patience: Int
    private(set) var best: (score: Double, step: Int, weights: [Matrix])?
    private var stale = 0

    init(patience: Int) { self.patience = patience }

    /// Records a validation `score` at `step`, keeping a copy of `parameters`' values when it is the best so far.
    /// Returns whether it was, and whether training should stop now.
    mutating func record(score: Double, step: Int, parameters: [Parameter]) -> (improved: Bool, stop: Bool) {
        if best == nil || score > best!.score {
            best = (score, step, parameters.map(\.value))
            stale = 0
            return (true, false)
        }
        stale += 1
        return (false, patience > 0 && stale >= patience)
    }

    /// Puts the best weights back (nothing without a validation).
    func restoreBest(into parameters: [Parameter]) {
        if let best { for (p, w) in zip(parameters, best.weights) { p.value = w } }
    }
}
