import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSModel
@testable import MISSExplorer

/// The Targets view: where each held-out target left the beam search, by hand and against the trace itself.
@Suite struct TargetFateTests {
    func row(_ node: Int, _ mean: Float, kept: Bool, targets: Int = 0) -> CandidateRow {
        CandidateRow(node: node, traceIndex: 0, probabilities: [mean], mean: mean, kept: kept, targetsUnder: targets)
    }

    /// Root 0; level 1: nodes 1 and 2; level 2 (the leaves): 3, 4 under 1 and 5, 6 under 2. Beam 1, final K 1.
    /// Items 10…13 sit at leaves 3…6. The search keeps node 1 (0.9 against 0.4), then leaf 3 (0.8 against 0.3).
    @Test func fatesOfAHandMadeSearch() {
        let parent = [3: 1, 4: 1, 5: 2, 6: 2]
        let levels = [
            LevelView(level: 1, candidates: [row(1, 0.9, kept: true), row(2, 0.4, kept: false)], keptCount: 1, hierarchicalRecall: nil),
            LevelView(level: 2, candidates: [row(3, 0.8, kept: true), row(4, 0.3, kept: false)], keptCount: 1, hierarchicalRecall: nil),
        ]
        let retrieved = [RetrievedItem(item: 10, score: 0.8, hit: true)]
        let fates = TargetFate.fates(levels: levels, retrieved: retrieved, targets: [10, 11, 12, 13],
                                     leaf: { Int($0) - 7 }, ancestor: { node, level in level == 2 ? node : parent[node]! })
        // Retrieved first; then the deepest loss (item 11's leaf, #2 at level 2); then level 1's (items 12 and 13
        // share node 2: same rank, in item order).
        #expect(fates == [
            TargetFate(item: 10, level: 2, node: 3, rank: 1, candidates: 2, kept: 1, score: 0.8, cutoff: 0.8, retrievedRank: 1),
            TargetFate(item: 11, level: 2, node: 4, rank: 2, candidates: 2, kept: 1, score: 0.3, cutoff: 0.8, retrievedRank: nil),
            TargetFate(item: 12, level: 1, node: 2, rank: 2, candidates: 2, kept: 1, score: 0.4, cutoff: 0.9, retrievedRank: nil),
            TargetFate(item: 13, level: 1, node: 2, rank: 2, candidates: 2, kept: 1, score: 0.4, cutoff: 0.9, retrievedRank: nil),
        ])
        #expect(TargetFate.fates(levels: [], retrieved: [], targets: [10], leaf: { _ in 3 }, ancestor: { n, _ in n }).isEmpty)
    }

    /// On the fixture's real search: at every level, the targets still in the beam (retrieved, or lost deeper)
    /// are exactly those under the level's kept nodes, as the Beam view counts them; every lost target scored
    /// at most its level's cut-off; the retrieved ones are the final list's hits, at their ranks.
    @Test func fatesAgreeWithTheTrace() throws {
        for beam in [2, 6, 40] {
            let t = Fixture.trace(beamSize: beam)
            #expect(t.fates.count == t.targets.count && !t.targets.isEmpty)
            #expect(Set(t.fates.map(\.item)) == t.targets)
            for lv in t.levels {
                let underKept = lv.candidates.filter(\.kept).reduce(0) { $0 + $1.targetsUnder }
                let survive = t.fates.filter { $0.retrieved || $0.level > lv.level }.count
                #expect(underKept == survive, "beam \(beam), level \(lv.level)")
                let lostHere = t.fates.filter { !$0.retrieved && $0.level == lv.level }
                let underPruned = lv.candidates.filter { !$0.kept }.reduce(0) { $0 + $1.targetsUnder }
                #expect(lostHere.count == underPruned, "beam \(beam), level \(lv.level)")
                for f in lostHere {
                    #expect(f.score <= f.cutoff && f.kept == lv.keptCount && f.candidates == lv.candidates.count)
                    #expect(lv.candidates[f.rank - 1].node == f.node && !lv.candidates[f.rank - 1].kept)
                }
            }
            let hits = t.retrieved.enumerated().filter(\.element.hit).map { ($0.element.item, $0.offset + 1) }
            #expect(t.fates.filter(\.retrieved).map { ($0.item, $0.retrievedRank!) }.elementsEqual(hits) { $0 == $1 })
            #expect(t.fates.filter(\.retrieved).allSatisfy { $0.level == t.levels.count && $0.score >= $0.cutoff })
        }
    }

    @Test func enterOpensTheLevelWhereTheTargetLeft() throws {
        var s = Fixture.state(width: 120, height: 40, view: .beam, level: 1)
        s = reduce(s, .key(.char("7")))
        #expect(s.view == .targets)
        let fates = s.trace!.fates
        let lost = try #require(fates.firstIndex { !$0.retrieved })
        for _ in 0..<lost { s = reduce(s, .key(.down)) }
        #expect(s.targetCursor == lost)
        s = reduce(s, .key(.enter))
        #expect(s.view == .beam && s.level == fates[lost].level && s.selectedCandidate?.node == fates[lost].node)
        #expect(s.selectedCandidate?.kept == false && (s.selectedCandidate?.targetsUnder ?? 0) > 0)
        // Back in the Targets view, Esc goes to the Beam view; the cursor stays within the list.
        s = reduce(reduce(s, .key(.char("7"))), .key(.end))
        #expect(s.targetCursor == fates.count - 1)
        #expect(reduce(s, .key(.escape)).view == .beam)
        // Opening another user starts at its first target.
        s = reduce(s, .userLoaded(Fixture.trace()))
        #expect(s.targetCursor == 0)
    }

    @Test func aTrainingUserHasNoTargetsToFollow() throws {
        let model = Fixture.model
        let train = try #require(model.users.firstIndex { $0.split == "train" })
        var s = Fixture.state(width: 80, height: 24, view: .targets)
        s.loadingUser = train
        s = reduce(s, .userLoaded(model.trace(row: train, beamSize: 6, finalK: 10)))
        #expect(s.trace!.fates.isEmpty)
        let text = render(s).text
        #expect(text.contains("is a training user: no held-out targets to follow"), "\(text)")
        #expect(reduce(s, .key(.enter)).message == "no target selected")
    }

    @Test func theSnapshotAndReportCarryTheFates() throws {
        let s = Fixture.state(width: 120, height: 40, view: .targets)
        let snap = try #require(Snapshot(state: s, bundle: "b", data: "d"))
        let fates = try #require(snap.targetFates)
        #expect(fates.map(\.item) == s.trace!.fates.map { s.catalog.itemIDs[Int($0.item)] })
        #expect(fates.map(\.fate) == s.trace!.fates && snap.view == "targets")
        let md = Exporter.markdown(snap)
        #expect(md.contains("## Held-out targets: where each left the beam") && md.contains("| \(fates[0].item) |"))
        // A snapshot written before the fates existed still reads.
        var old = try JSONSerialization.jsonObject(with: snap.encoded()) as! [String: Any]
        old.removeValue(forKey: "targetFates")
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("old.json")
        try JSONSerialization.data(withJSONObject: old).write(to: url)
        #expect(try Snapshot.load(from: url).targetFates == nil)
    }
}
