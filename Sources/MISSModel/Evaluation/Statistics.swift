import Foundation
import MISSCore

/// The uncertainty of the suite's numbers, over evaluation users. A unit is one evaluation user of one split;
/// several split seeds are strata (each has its own test users), and a bootstrap resamples every stratum's
/// units with replacement, keeping its size. A method's paired difference from another is resampled over the
/// same units, so that the users both were measured on cancel out of the comparison.
public enum Statistics {
    /// An estimate and its percentile-bootstrap interval.
    public struct Interval: Codable, Sendable, Equatable {
        public var estimate: Double
        public var low: Double
        public var high: Double

        public init(estimate: Double, low: Double, high: Double) {
            self.estimate = estimate
            self.low = low
            self.high = high
        }

        /// The interval leaves out 0 (for a difference: one method is ahead at this confidence).
        public var excludesZero: Bool { low > 0 || high < 0 }
    }

    public static let defaultResamples = 10_000

    /// The mean of every unit (all strata pooled) and its `confidence` percentile-bootstrap interval: `resamples`
    /// times, each stratum's units drawn with replacement (as many as it has), the pooled mean taken; the interval's
    /// ends are the (1 − confidence)/2 and (1 + confidence)/2 quantiles of those means (the lower one rounded
    /// down, the upper one up, over the sorted means). Seeded: the same input gives the same interval.
    public static func bootstrapMean(strata: [[Double]], confidence: Double = 0.95, resamples: Int = defaultResamples,
                                     seed: UInt64 = 1) -> Interval {
        let strata = strata.filter { !$0.isEmpty }
        let n = strata.reduce(0) { $0 + $1.count }
        guard n > 0 else { return Interval(estimate: .nan, low: .nan, high: .nan) }
        let estimate = strata.reduce(0) { $0 + $1.reduce(0, +) } / Double(n)
        var rng = Xoshiro256StarStar(seed: seed).derived("bootstrap")
        var means = [Double](repeating: 0, count: max(1, resamples))
        for r in means.indices {
            var sum = 0.0
            for stratum in strata {
                for _ in 0..<stratum.count { sum += stratum[rng.nextInt(below: stratum.count)] }
            }
            means[r] = sum / Double(n)
        }
        means.sort()
        let last = Double(means.count - 1)
        let lo = Int(((1 - confidence) / 2 * last).rounded(.down)), hi = Int(((1 + confidence) / 2 * last).rounded(.up))
        return Interval(estimate: estimate, low: means[max(0, lo)], high: means[min(means.count - 1, hi)])
    }

    /// a − b over the same units (`a[s][i]` and `b[s][i]` the same user of stratum s): the mean difference and its
    /// bootstrap interval (`bootstrapMean` of the per-unit differences).
    public static func pairedDifference(_ a: [[Double]], _ b: [[Double]], confidence: Double = 0.95,
                                        resamples: Int = defaultResamples, seed: UInt64 = 1) -> Interval {
        precondition(a.count == b.count && zip(a, b).allSatisfy { $0.count == $1.count }, "pairedDifference: the two methods' units differ")
        return bootstrapMean(strata: zip(a, b).map { zip($0, $1).map { $0 - $1 } }, confidence: confidence, resamples: resamples, seed: seed)
    }
}
