import MISSCore

/// The evaluation protocol (TDM's): users shuffled by seed into train / validation / test; each
/// evaluation user's time-ordered behaviours are cut in half: the first half is the history the
/// model sees, the second half is the target set.
public struct EvaluationSplit: Sendable, Equatable {
    public var seed: UInt64
    public var train: [Int]
    public var validation: [Int]
    public var test: [Int]

    /// `evaluationFraction` of the users go to validation and the same share to test. Users with
    /// fewer than `minimumLength` behaviours cannot be cut in half usefully and always train.
    public init(dataset: Dataset, seed: UInt64, evaluationFraction: Double = 0.1, minimumLength: Int = 4) {
        precondition(evaluationFraction >= 0 && evaluationFraction < 0.5, "evaluation fraction must be in [0, 0.5)")
        self.seed = seed
        var rng = Xoshiro256StarStar(seed: seed).derived("split")
        var eligible: [Int] = []
        var short: [Int] = []
        for u in 0..<dataset.userCount {
            if dataset.sequenceLength(of: u) >= minimumLength { eligible.append(u) } else { short.append(u) }
        }
        rng.shuffle(&eligible)
        let n = Int((Double(dataset.userCount) * evaluationFraction).rounded())
        let nEval = min(n, eligible.count / 2)
        validation = Array(eligible[0..<nEval]).sorted()
        test = Array(eligible[nEval..<(2 * nEval)]).sorted()
        train = (Array(eligible[(2 * nEval)...]) + short).sorted()
    }

    /// Behaviour indices of the history half of an evaluation user (first ⌊n/2⌋ behaviours).
    public static func history(of user: Int, in dataset: Dataset) -> Range<Int> {
        let r = dataset.behaviours(of: user)
        return r.lowerBound..<(r.lowerBound + r.count / 2)
    }

    /// Behaviour indices of the target half.
    public static func targets(of user: Int, in dataset: Dataset) -> Range<Int> {
        let r = dataset.behaviours(of: user)
        return (r.lowerBound + r.count / 2)..<r.upperBound
    }

    /// The users (of `users`, in order) that have at least one target item: the ones metrics average over.
    public static func usersWithTargets(_ users: [Int], in dataset: Dataset) -> [Int] {
        users.filter { !targetItems(of: $0, in: dataset).isEmpty }
    }

    /// The distinct target items of an evaluation user that are not already in the history
    /// (the protocol retrieves from the catalogue excluding history items).
    public static func targetItems(of user: Int, in dataset: Dataset, objective: Int? = nil) -> Set<Int32> {
        let seen = Set(dataset.behaviourItems[history(of: user, in: dataset)])
        var out = Set<Int32>()
        for b in targets(of: user, in: dataset) where objective.map({ dataset.hasObjective($0, behaviour: b) }) ?? true {
            let item = dataset.behaviourItems[b]
            if !seen.contains(item) { out.insert(item) }
        }
        return out
    }
}
