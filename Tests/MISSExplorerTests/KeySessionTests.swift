import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSModel
import MISSExplorer

/// Scripted key sessions: every key of the table, in a view where it works, does what its help says.
@Suite struct KeySessionTests {
    func press(_ s: ExplorerState, _ keys: Key...) -> ExplorerState {
        keys.reduce(s) { reduce($0, .key($1)) }
    }

    @Test func everyKeyInTheTableDispatchesToItsAction() {
        for b in KeyTable.bindings {
            let view = View.allCases.first { b.applies(in: $0) }!
            for key in b.keys {
                #expect(KeyTable.action(for: key, in: view) == b.action, "\(key.name) in \(view)")
            }
        }
        // No key is bound twice in one view.
        for v in View.allCases {
            let keys = KeyTable.bindings.filter { $0.applies(in: v) }.flatMap(\.keys)
            #expect(Set(keys).count == keys.count, "duplicate key in \(v)")
        }
    }

    @Test func everyKeyDoesWhatItsHelpSays() {
        let base = Fixture.state(width: 120, height: 40, view: .beam, level: 2)
        for b in KeyTable.bindings {
            for key in b.keys {
                let view = View.allCases.first { b.applies(in: $0) && $0 != .users } ?? .users
                var s = base
                s.view = view
                s.level = 3
                s.candidateCursor = 1
                s.gsuCursor = 1
                let t = press(s, key)
                let what = "\(key.name) (\(b.action)) in \(view)"
                switch b.action {
                case .quit: #expect(t.quit, "\(what)")
                case .help: #expect(t.showHelp, "\(what)")
                case .redraw: #expect(t.redrawRequested, "\(what)")
                case .nextPane, .previousPane: #expect(t.pane == 1, "\(what)")
                case .up: #expect((view == .gsu ? t.gsuCursor : t.candidateCursor) == 0, "\(what)")
                case .down: #expect((view == .gsu ? t.gsuCursor : t.candidateCursor) == 2, "\(what)")
                case .pageUp, .top: #expect((view == .gsu ? t.gsuCursor : t.candidateCursor) == 0, "\(what)")
                case .pageDown, .bottom:
                    let n = view == .gsu ? max(s.comparison!.co.count, s.comparison!.mm.count) : s.currentLevel!.candidates.count
                    #expect((view == .gsu ? t.gsuCursor : t.candidateCursor) == n - 1, "\(what)")
                case .levelBack: #expect(t.level == 2, "\(what)")
                case .levelForward: #expect(t.level == 4, "\(what)")
                case .open: #expect(t.view == .gsu, "\(what)")
                case .back: #expect(t.view == (view == .beam ? .users : .beam), "\(what)")
                case .show(let v): #expect(t.view == v, "\(what)")
                case .search:
                    var u = s
                    u.view = .users
                    #expect(press(u, key).search == "", "\(what)")
                case .nextUser: #expect(t.userCursor == s.userCursor + 1 && t.pending == [.loadUser(s.userCursor + 1)], "\(what)")
                case .previousUser: #expect(t.userCursor == s.userCursor - 1 && t.pending == [.loadUser(s.userCursor - 1)], "\(what)")
                case .export: #expect(t.pending == [.export], "\(what)")
                case .chooseItem: #expect(t.itemInput == "", "\(what)")
                case .heatmapAxis: #expect(t.heatmapAxis == .ownWindow, "\(what)")
                case .histogramScale: #expect(t.histogramScale == .timesWindow, "\(what)")
                case .userOrder: #expect(t.userOrder == .worstRecall, "\(what)")
                }
            }
        }
    }

    @Test func stepsFollowTheSelectedNodeDownAndBackUp() {
        var s = Fixture.state(width: 120, height: 40, view: .beam, level: 1)
        let n1 = s.selectedCandidate!.node
        s = press(s, .right)
        #expect(s.level == 2)
        #expect(Int(s.catalog.parent[s.selectedCandidate!.node]) == n1, "stepping down selects a child of the node")
        s = press(s, .char("h"))
        #expect(s.level == 1 && s.selectedCandidate!.node == n1, "stepping up returns to its ancestor")
        s = press(s, .left)
        #expect(s.level == 1 && s.message != nil, "no level above 1: a message, not a crash")
        s.level = s.levelCount
        s = press(s, .right)
        #expect(s.level == s.levelCount && s.message!.contains("leaf level"))
    }

    /// `o` orders the Users view by each evaluation user's Recall@K, worst first, then best first, then by id;
    /// each order starts with the cursor at its top, and the cursor moves along the order shown.
    @Test func usersOrderByRecallAndTheCursorFollowsTheOrder() throws {
        var s = Fixture.state(width: 120, height: 40, view: .users)
        let r = try #require(s.recalls.value)
        #expect(r.count == s.users.filter { $0.split != "train" && $0.targets > 0 }.count && !r.isEmpty)
        s.userCursor = 0
        s = press(s, .char("o"))
        #expect(s.userOrder == .worstRecall)
        let worst = s.userDisplayOrder
        #expect(worst.count == s.users.count && Set(worst) == Set(s.users.indices))
        let ranked = worst.prefix(r.count).map { r[$0]! }
        #expect(ranked == ranked.sorted() && Set(worst.prefix(r.count)) == Set(r.keys))
        // A new order starts at its top; the cursor moves along it: to the second row shown, and back.
        #expect(s.userCursor == worst[0])
        s = press(s, .down, .down, .home)
        #expect(s.userCursor == worst[0])
        s = press(s, .down)
        #expect(s.userCursor == worst[1])
        let text = render(s).text
        #expect(text.contains("order: worst recall (o)") && text.contains("R@10"))
        // ] and [ (in the Beam view too) follow the same order: the next-worst user, and back.
        var beam = press(s, .char("2"))
        beam = press(beam, .char("]"))
        // (No load is asked for when that user's trace is the one open.)
        let open = beam.trace?.user.index == beam.users[worst[2]].index
        #expect(beam.userCursor == worst[2] && (open || beam.pending.last == .loadUser(worst[2])))
        #expect(press(beam, .char("[")).userCursor == worst[1])
        s = press(s, .char("o"))
        #expect(s.userOrder == .bestRecall && s.userDisplayOrder.prefix(r.count).map { r[$0]! } == ranked.reversed())
        s = press(s, .char("o"))
        #expect(s.userOrder == .id && s.userDisplayOrder == Array(s.users.indices))
        // Before the recalls are in, `o` says why it does nothing.
        s.recalls = .running(done: 3, total: 9)
        s = press(s, .char("o"))
        #expect(s.userOrder == .id && s.message?.contains("3/9") == true)
        // The column's recall is the trace's own.
        let row = Fixture.row
        #expect(r[row] == Fixture.trace().recall)
    }

    @Test func searchJumpsToAUserAndReportsMisses() {
        var s = Fixture.state(width: 80, height: 24, view: .users)
        s = press(s, .char("/"), .char("u"), .char("2"), .char("0"), .enter)
        #expect(s.search == nil)
        #expect(s.users[s.userCursor].id == "u20")
        s = press(s, .char("/"), .char("z"), .char("z"), .enter)
        #expect(s.message == "no user id contains 'zz'")
        s = press(s, .char("/"), .char("x"), .escape)
        #expect(s.search == nil && s.message == nil)
        s = press(s, .char("/"), .char("u"), .char("3"), .backspace)
        #expect(s.search == "u")
        // Enter on a user opens its beam search.
        s = press(s, .escape, .enter)
        #expect(s.view == .beam && s.pending.last == .loadUser(s.userCursor))
    }

    @Test func aChosenCaseItemIsScoredByTheEstimatorLikeTheSameLeafInTheTrace() {
        var s = Fixture.state(width: 120, height: 40, view: .caseStudy)
        s.level = s.levelCount
        s.candidateCursor = 0
        let leaf = s.selectedCandidate!
        let item = s.catalog.item(ofLeaf: leaf.node)!
        s = press(s, .char("i"))
        for c in s.catalog.itemIDs[Int(item)] { s = press(s, .char(c)) }
        s = press(s, .enter)
        #expect(s.pending.last == .caseQuery(row: s.userCursor, item: item))
        let q = Fixture.model.caseQuery(row: s.userCursor, item: item)
        // The chosen item's leaf is a candidate of the traced leaf level: the same GSU selections up to rounding
        // (a one-row GEMM and the level's batched GEMM round differently, which can reorder a repeated item's ties).
        let traced = s.trace!.comparison(level: s.levelCount, candidate: leaf)
        for (mine, theirs) in [(q.comparison.co, traced.co), (q.comparison.mm, traced.mm)] {
            #expect(Set(mine.map(\.item)) == Set(theirs.map(\.item)))
            for (a, b) in zip(mine.map(\.score), theirs.map(\.score)) { #expect(abs(a - b) < 1e-5) }
        }
        s = reduce(s, .caseReady(row: s.userCursor, q))
        #expect(render(s).text.contains("Query item (chosen): \(s.catalog.itemTitles[Int(item)])"))
        #expect(Snapshot(state: s, bundle: "b", data: "d")!.caseItem == s.catalog.itemIDs[Int(item)])
        // A title fragment works too; an unknown one says so; an empty Enter returns to the node.
        s = press(s, .char("i"), .char("z"), .char("q"), .char("x"), .char("w"), .enter)
        #expect(s.message == "no item id or title matches 'zqxw'")
        s = press(s, .char("i"), .enter)
        #expect(s.caseQuery == nil)
    }

    @Test func helpIsModalAndQuitAlwaysWorks() {
        var s = press(Fixture.state(), .char("?"))
        #expect(s.showHelp)
        s = press(s, .char("3"))
        #expect(s.showHelp && s.view == .beam, "other keys do nothing under the help")
        s = press(s, .escape)
        #expect(!s.showHelp)
        #expect(press(s, .char("?"), .char("q")).quit)
        var u = s
        u.view = .users
        #expect(press(u, .char("/"), .char("q")).quit == false, "q is text while searching")
    }

    @Test func unknownKeysAndResizesNeverCrash() {
        var s = Fixture.state()
        s = press(s, .char("Z"))
        #expect(s.message!.contains("does nothing"))
        for (w, h) in [(10, 5), (80, 24), (200, 60), (0, 0), (79, 24)] {
            s = reduce(s, .resized(width: w, height: h))
            for v in View.allCases {
                s.view = v
                let screen = render(s)
                #expect(screen.width == max(0, w) && screen.height == max(0, h))
            }
        }
    }

    @Test func theTraceIsTheEstimatorsOwnScores() {
        // The explorer shows what BeamSearch and the estimator computed: re-score a level's candidates directly.
        let m = Fixture.model
        let t = Fixture.trace()
        let ctx = Fixture.context(t)
        let lv = t.levels[2]
        let nodes = lv.candidates.map(\.node)
        let p = m.bundle.estimator.forward(ctx, nodes: nodes).logits.map(sigmoid)
        for (i, c) in lv.candidates.enumerated() {
            for o in 0..<p.cols { #expect(abs(p[i, o] - c.probabilities[o]) < 1e-6) }
            #expect(abs(c.mean - c.probabilities.reduce(0, +) / Float(c.probabilities.count)) < 1e-6)
        }
        #expect(lv.candidates.filter(\.kept).count == lv.keptCount)
        #expect(zip(lv.candidates, lv.candidates.dropFirst()).allSatisfy { $0.mean >= $1.mean })
    }

    @Test func relevanceAgreesWithTheBatchedForwardPass() {
        // Figs. 5–6 use NodeEstimator.relevance (one node); the beam search uses the batched GEMM. Same numbers.
        let m = Fixture.model
        let t = Fixture.trace()
        let ctx = Fixture.context(t)
        let lv = t.levels[3]
        for c in lv.candidates.prefix(3) {
            let cmp = t.comparison(level: 4, candidate: c)
            let (co, mm) = m.bundle.estimator.relevance(ctx, node: c.node)
            for e in cmp.co { #expect(abs(co[e.position - t.coStart] - e.score) < 1e-5) }
            for e in cmp.mm { #expect(abs(mm[e.position - t.mmStart] - e.score) < 1e-5) }
            // The GSU's top-K really are the K largest relevances.
            let kth = cmp.co.map(\.score).min()!
            #expect(co.filter { $0 > kth + 1e-6 }.count < cmp.co.count)
        }
    }

    @Test func ownWindowBucketsByHand() {
        // A full window: the same means as the shared axis's buckets.
        #expect(ExplorerModel.stretched([0.1, 0.3, 0.2, 0.2, 0.1, 0.1], buckets: 3, window: 6) == [0.2, 0.2, 0.1])
        // Scores for the last 2 of 6 positions: the older buckets are outside the GSU's window.
        #expect(ExplorerModel.stretched([0.5, 0.5], buckets: 3, window: 6) == [-1, -1, 0.5])
        // Uneven parts: positions 0–1 and 2–4.
        #expect(ExplorerModel.stretched([1, 2, 3, 4, 5], buckets: 2, window: 5) == [1.5, 4])
        // A window shorter than the buckets is stretched: each bucket takes the position under its start.
        #expect(ExplorerModel.stretched([0.25, 0.75], buckets: 4, window: 2) == [0.25, 0.25, 0.75, 0.75])
        #expect(ExplorerModel.stretched([0.25, 0.75], buckets: 3, window: 3) == [-1, 0.25, 0.75])

        // The fixture's rows: each user's own window is its longest (MM-GSU's here, L_mm 80 ≥ L_co 40 and
        // SASRec's 20), every MM row fills the panel, and the bucket means times their sizes add up to the
        // softmax's mass, 1.
        let a = Fixture.aggregates, c = Fixture.model.catalog.config
        let windows = try! #require(a.ownWindows), mmOwn = try! #require(a.mmHeatOwn), coOwn = try! #require(a.coHeatOwn)
        #expect(windows.count == a.heatmapUsers.count && mmOwn.count == windows.count && coOwn.count == windows.count)
        for (r, id) in a.heatmapUsers.enumerated() {
            let row = try! Fixture.model.row(ofUser: id)
            let n = Fixture.model.history(of: Fixture.model.users[row].index).count
            #expect(windows[r] == min(n, max(c.mmLength, c.coLength)))
            #expect(mmOwn[r].allSatisfy { $0 >= 0 }, "the MM-GSU's window is the row's own: no bucket outside it")
            let w = windows[r], b = a.buckets
            if w >= b {
                let mass = (0..<b).reduce(Float(0)) { $0 + mmOwn[r][$1] * Float(($1 + 1) * w / b - $1 * w / b) }
                #expect(abs(mass - 1) < 1e-4, "row \(id): \(mass)")
            }
            // Co-GSU's last min(n, L_co) positions: the buckets wholly before them are outside.
            let coStart = w - min(n, c.coLength)
            for bucket in 0..<b {
                let end = max(bucket * w / b + 1, (bucket + 1) * w / b)
                #expect((coOwn[r][bucket] < 0) == (end <= coStart), "row \(id), bucket \(bucket)")
            }
        }
    }

    @Test func scoresTimesTheirWindowByHand() {
        // Bins over [min, max]: width 0.5 from 1; the maximum goes to the last bin.
        let h = ExplorerModel.histogram(spanning: [1, 1.5, 2, 3], bins: 4)
        #expect(h.lower == 1 && h.upper == 3 && h.counts == [1, 1, 1, 1])
        // Equal values: one bin holds them all.
        let same = ExplorerModel.histogram(spanning: [2, 2], bins: 3)
        #expect(same.lower == 2 && same.upper > 2 && same.counts == [2, 0, 0])
        // The fixture: the same top-K scores on both scales; every user's best is at least the uniform 1/n,
        // so times n the largest is ≥ 1; and the softmax scale's bins start at 0, the other's at its minimum.
        let a = Fixture.aggregates
        for (plain, scaled) in [(a.coHistogram, a.coHistogramTimesWindow!), (a.mmHistogram, a.mmHistogramTimesWindow!)] {
            #expect(plain.counts.reduce(0, +) == scaled.counts.reduce(0, +))
            #expect(plain.lower == 0 && scaled.upper >= 1 && scaled.lower > 0 && scaled.lower < scaled.upper)
        }
        #expect(a.histograms(scale: .timesWindow).co == a.coHistogramTimesWindow && a.histograms(scale: .softmax).co == a.coHistogram)
    }

    /// The figures' own keys: `a` (Fig. 5's axis) in the heatmap, `s` (Fig. 6's scale) in the histogram; each
    /// switches its figure back and forth, is named on the bottom line, and does nothing in another view.
    @Test(arguments: [(View.heatmap, Character("a"), "a axis", "position, last ", "own window", View.beam),
                      (View.histogram, Character("s"), "s scale", "Fig. 6 · softmax scores", "× window length", View.heatmap)])
    func aFiguresKeySwitchesItOnlyInItsView(view: View, key: Character, hint: String, first: String, second: String, elsewhere: View) {
        func shown(_ s: ExplorerState) -> (HeatmapAxis, HistogramScale) { (s.heatmapAxis, s.histogramScale) }
        var s = Fixture.state(width: 80, height: 24, view: view)
        let initial = shown(s)
        #expect(initial == (.shared, .softmax) && render(s).text.contains(first))
        s = reduce(s, .key(.char(key)))
        #expect(shown(s) != initial && render(s).text.contains(second) && !render(s).text.contains(first))
        #expect(render(s).text.contains(hint), "the bottom line names the key")
        s = reduce(s, .key(.char(key)))
        #expect(shown(s) == initial)
        let other = reduce(Fixture.state(width: 80, height: 24, view: elsewhere), .key(.char(key)))
        #expect(shown(other) == initial && other.message == "\(key) does nothing in \(elsewhere.title) (? for help)")
    }

    @Test func overlapBucketsAndHistogramsByHand() {
        // Buckets: 6 positions in a window of 6, 3 buckets → means of pairs; a 2-position vector fills only the last bucket.
        #expect(ExplorerModel.bucketed([0.1, 0.3, 0.2, 0.2, 0.1, 0.1], buckets: 3, window: 6) == [0.2, 0.2, 0.1])
        #expect(ExplorerModel.bucketed([0.5, 0.5], buckets: 3, window: 6) == [-1, -1, 0.5])
        let h = ExplorerModel.histogram([0, 0.1, 0.2, 0.4], bins: 4)
        #expect(h.upper == 0.4 && h.counts == [1, 1, 1, 1])
        let t = Fixture.trace()
        let c = t.levels[2].candidates[0]
        let cmp = t.comparison(level: 3, candidate: c)
        let shared = Set(cmp.co.map(\.item)).intersection(cmp.mm.map(\.item))
        #expect(cmp.overlap == Double(shared.count) / Double(min(cmp.co.count, cmp.mm.count)))
        #expect(cmp.co.allSatisfy { $0.inBoth == shared.contains($0.item) })
        let a = Fixture.aggregates
        #expect(a.overlap >= 0 && a.overlap <= 1 && a.users == Fixture.model.aggregateUsers.count)
        #expect(a.coHistogram.counts.reduce(0, +) == a.users * Fixture.model.catalog.config.topK)
    }
}
