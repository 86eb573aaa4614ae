import Testing
import MISSCore
@testable import MISSModel

@Suite struct EarlyStoppingTests {
    @Test func keepsTheBestWeightsAndStopsAfterPatienceValidationsWithoutGain() {
        let p = Parameter(name: "w", value: Matrix([[1]]))
        var s = EarlyStopping(patience: 2)
        #expect(s.record(score: 0.5, step: 10, parameters: [p]) == (true, false))
        p.value = Matrix([[2]])
        #expect(s.record(score: 0.7, step: 20, parameters: [p]) == (true, false))
        p.value = Matrix([[3]])
        #expect(s.record(score: 0.7, step: 30, parameters: [p]) == (false, false))   // a tie is no gain
        p.value = Matrix([[4]])
        #expect(s.record(score: 0.6, step: 40, parameters: [p]) == (false, true))
        #expect(s.best?.score == 0.7 && s.best?.step == 20)
        s.restoreBest(into: [p])
        #expect(p.value == Matrix([[2]]))
        // Patience 0 never stops; without a validation nothing is restored.
        var never = EarlyStopping(patience: 0)
        _ = never.record(score: 1, step: 1, parameters: [p])
        for step in 2...20 { #expect(!never.record(score: 0, step: step, parameters: [p]).stop) }
        let q = Parameter(name: "q", value: Matrix([[9]]))
        EarlyStopping(patience: 1).restoreBest(into: [q])
        #expect(q.value == Matrix([[9]]))
    }
}
