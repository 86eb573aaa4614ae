import Foundation
import Testing
import MISSModel

@Suite struct StatisticsTests {
    /// Units {0, 0, 0, 1}: a resample's mean is (ones)/4 with ones ~ Binomial(4, 1/4): P(≤ 0) = 0.316, P(≤ 2) = 0.949,
    /// P(≤ 3) = 0.996. So the 2.5 % quantile is 0 and the 97.5 % one 3/4, by hand.
    @Test func bootstrapIntervalOfAToyCaseByHand() {
        let i = Statistics.bootstrapMean(strata: [[0, 0, 0, 1]])
        #expect(i.estimate == 0.25 && i.low == 0 && i.high == 0.75)
        #expect(!i.excludesZero)
        // The same seed gives the same interval; a constant gives a point.
        #expect(Statistics.bootstrapMean(strata: [[0, 0, 0, 1]]) == i)
        let constant = Statistics.bootstrapMean(strata: [[0.5, 0.5, 0.5]])
        #expect(constant == Statistics.Interval(estimate: 0.5, low: 0.5, high: 0.5))
    }

    /// Paired: a − b per unit. a = {1, 1, 1, 1}, b = {1, 1, 1, 0} is the toy case above; a difference that is the
    /// same 0.5 for every unit is significant at any confidence, though each method alone varies widely.
    @Test func pairedDifferenceResamplesTheSameUsers() {
        let d = Statistics.pairedDifference([[1, 1, 1, 1]], [[1, 1, 1, 0]])
        #expect(d.estimate == 0.25 && d.low == 0 && d.high == 0.75)
        let a: [[Double]] = [[0.9, 0.6, 0.5, 1.0, 0.7]], b = a.map { $0.map { $0 - 0.5 } }
        let shift = Statistics.pairedDifference(a, b)
        #expect(abs(shift.estimate - 0.5) < 1e-12 && abs(shift.low - 0.5) < 1e-12 && abs(shift.high - 0.5) < 1e-12 && shift.excludesZero)
        #expect(Statistics.bootstrapMean(strata: a).high - Statistics.bootstrapMean(strata: a).low > 0.1)
    }

    /// Strata are resampled within themselves: two strata {0, 0} and {1, 1} have no spread within, so every
    /// resample's pooled mean is exactly 1/2; pooled as one stratum, resamples spread over 0…1.
    @Test func strataKeepTheirSizes() {
        let within = Statistics.bootstrapMean(strata: [[0, 0], [1, 1]])
        #expect(within.estimate == 0.5 && within.low == 0.5 && within.high == 0.5)
        let pooled = Statistics.bootstrapMean(strata: [[0, 0, 1, 1]])
        #expect(pooled.low < 0.5 && pooled.high > 0.5)
        #expect(Statistics.bootstrapMean(strata: [[], [0.2]]).estimate == 0.2)
    }

    /// The paper's levels 13/16/19/22 of 22 on other depths: the same fraction, rounded.
    @Test func correspondingLevelsByHand() {
        #expect(Evaluation.correspondingLevels(leafLevel: 22) == [13, 16, 19, 22])
        #expect(Evaluation.correspondingLevels(leafLevel: 13) == [8, 9, 11, 13])   // 7.68, 9.45, 11.23, 13
        #expect(Evaluation.correspondingLevels(leafLevel: 14) == [8, 10, 12, 14])  // 8.27, 10.18, 12.09, 14
        #expect(Evaluation.correspondingLevels(leafLevel: 2) == [1, 2])
    }
}
