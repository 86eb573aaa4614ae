import Foundation
import Testing
import MISSTestSupport
import MISSExplorer

/// Every view at 80×24 and 160×48 against a recorded screen. Re-record on purpose only:
/// `MISS_RECORD_GOLDEN=1 swift test -c release --filter GoldenScreenTests`, then review the diff.
@Suite struct GoldenScreenTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    func check(_ name: String, _ screen: Screen, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = Self.folder.appendingPathComponent(name + ".txt")
        if ProcessInfo.processInfo.environment["MISS_RECORD_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.folder, withIntermediateDirectories: true)
            try screen.text.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            Issue.record("no golden screen \(url.path): record it with MISS_RECORD_GOLDEN=1", sourceLocation: sourceLocation)
            return
        }
        let actual = screen.text
        if !Self.matches(actual, expected) {
            let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }
            Issue.record("screen \(name) differs from \(url.lastPathComponent) at line \(first.map { $0.offset + 1 } ?? min(a.count, e.count)):\n got: \(first.map { String($0.element.0) } ?? "")\nwant: \(first.map { String($0.element.1) } ?? "")\n--- full screen ---\n\(actual)",
                         sourceLocation: sourceLocation)
        }
        #expect(screen.lines.allSatisfy { Screen.columns($0) == screen.width }, "every row fills exactly the width")
    }

    static let sizes = [(80, 24), (160, 48)]

    /// Exact, except that a decimal number may differ by one unit in its last digit: OpenBLAS picks its kernel
    /// per CPU and rounds differently, and screens recorded on one machine must pass on another.
    static func matches(_ actual: String, _ expected: String) -> Bool {
        if actual == expected { return true }
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        guard a.count == e.count else { return false }
        let number = try! Regex(#"\d+\.\d+"#)
        for (x, y) in zip(a, e) where x != y {
            let nx = x.ranges(of: number), ny = y.ranges(of: number)
            guard nx.count == ny.count else { return false }
            // The text around the numbers is identical…
            guard x.replacing(number, with: "#") == y.replacing(number, with: "#") else { return false }
            // …and each number is within one unit of its last digit.
            for (rx, ry) in zip(nx, ny) {
                let sx = x[rx], sy = y[ry]
                guard let vx = Double(sx), let vy = Double(sy) else { return false }
                let decimals = sx.count - (sx.firstIndex(of: ".").map { sx.distance(from: sx.startIndex, to: $0) } ?? sx.count) - 1
                if abs(vx - vy) > 1.5 * pow(10, Double(-decimals)) { return false }
            }
        }
        return true
    }

    @Test func theGoldenComparisonToleratesOnlyLastDigitRounding() {
        #expect(Self.matches("a 0.123 b\n", "a 0.124 b\n"))
        #expect(!Self.matches("a 0.123 b\n", "a 0.125 b\n"))
        #expect(!Self.matches("a 0.123 b\n", "a 0.123 c\n"))
        #expect(!Self.matches("n 12 x\n", "n 13 x\n"), "integers (counts, ids) must match exactly")
        #expect(!Self.matches("a\n", "a\nb\n"))
    }

    @Test(arguments: sizes) func everyView(size: (Int, Int)) throws {
        let (w, h) = size
        let tag = "\(w)x\(h)"
        for v in View.allCases {
            var s = Fixture.state(width: w, height: h, view: v, level: v == .beam ? 1 : 3)
            if v == .users { s.userCursor = Fixture.row }
            try check("\(v.rawValue)-\(tag)", render(s))
        }
        var help = Fixture.state(width: w, height: h)
        help = reduce(help, .key(.char("?")))
        try check("help-\(tag)", render(help))
        // The beam view's second pane (path and final top-K) at the leaf level.
        var path = Fixture.state(width: w, height: h, view: .beam)
        path.level = path.levelCount
        path = reduce(path, .key(.tab))
        try check("beam-leaf-path-\(tag)", render(path))
        // The path pane from level 1: at 80×24 the path is longer than its half of the pane.
        try check("beam-path-\(tag)", render(Self.longestPath(width: w, height: h)))
        // Searching in the users view, and a user still loading.
        var search = Fixture.state(width: w, height: h, view: .users)
        for c in "/u1" { search = reduce(search, .key(.char(c))) }
        try check("users-search-\(tag)", render(search))
        var loading = ExplorerState.initial(catalog: Fixture.model.catalog, users: Fixture.model.users, colorMode: .mono, row: Fixture.row)
        loading = reduce(loading, .resized(width: w, height: h))
        try check("loading-\(tag)", render(loading))
        // Fig. 5 on each user's own window (`a`).
        let own = reduce(Fixture.state(width: w, height: h, view: .heatmap), .key(.char("a")))
        try check("heatmap-own-window-\(tag)", render(own))
        // Fig. 6 times each window's length (`s`).
        let timesWindow = reduce(Fixture.state(width: w, height: h, view: .histogram), .key(.char("s")))
        try check("histogram-times-window-\(tag)", render(timesWindow))
    }

    @Test func tooSmallTerminalSaysWhatItNeeds() throws {
        var s = Fixture.state()
        s = reduce(s, .resized(width: 60, height: 20))
        let text = render(s).text
        #expect(text.contains("Terminal too small: 60×20."))
        #expect(text.contains("needs at least 80×24"))
        try check("too-small-60x20", render(s))
    }

    /// GSU lists longer than the screen: every row drawn is a whole entry, in rank order, above the legend
    /// and the selected entry's line, and scrolling to the last entry shows it (the list's last row was once
    /// drawn under the legend).
    @Test func aLongGSUListEndsAboveTheLegendAndScrollsToItsLastEntry() throws {
        // A test user whose history holds at least 24 behaviours, so that the top-24 fills both lists.
        let model = Fixture.longListModel
        let row = try #require(model.users.firstIndex { $0.split == "test" && $0.targets > 0 && model.history(of: $0.index).count >= 24 })
        var s = Fixture.state(width: 80, height: 24, view: .gsu, level: 1, model: model, row: row)
        let n = max(s.comparison!.co.count, s.comparison!.mm.count)
        #expect(n == 24, "the top-24 fills both lists")
        let legend = "◆ in both top-K · score: raw r_i · weight: ESU softmax over the top-K"
        let down = KeyTable.bindings.first { $0.action == .down }!.keys[0]
        for cursor in [0, n - 1] {
            while s.gsuCursor < cursor { s = reduce(s, .key(down)) }
            let lines = render(s).lines.map { $0.trimmingCharacters(in: .whitespaces) }
            let header = try #require(lines.firstIndex { $0.hasPrefix("#   pos") })
            let at = try #require(lines.firstIndex(of: legend), "the legend on a line of its own")
            #expect(lines[at + 1].hasPrefix("Co-GSU #\(cursor + 1):"), "the selected entry's line below the legend")
            // Between the headers and the legend: only entries, both columns, consecutive ranks, no gap.
            let ranks = lines[(header + 1)..<at].map { line in line.split(separator: " ").first.flatMap { Int($0) } }
            #expect(ranks.count == 24 - 9, "the rows a 24-line screen has for the list")
            #expect(ranks.allSatisfy { $0 != nil })
            let first = ranks.first!!
            #expect(ranks.map { $0! } == Array(first..<(first + ranks.count)))
            #expect((first...(first + ranks.count - 1)).contains(cursor + 1), "the selected entry is on screen")
            if cursor == n - 1 { #expect(ranks.last! == n, "scrolled to the end, the last entry is the last row") }
        }
    }

    /// A path longer than the pane has room for keeps the selected node's row and the deepest ones, and says
    /// which levels it leaves out (it once showed only the deepest rows, without the selected node).
    @Test func aLongPathKeepsTheSelectedNodeAndSaysWhatItLeavesOut() throws {
        let s = Self.longestPath(width: 80, height: 24)
        let levels = s.trace!.levels.count
        let lines = render(s).lines.map { $0.trimmingCharacters(in: .whitespaces) }
        let title = try #require(lines.firstIndex { $0.hasPrefix("Path of node \(s.selectedCandidate!.node) ") })
        #expect(lines[title + 1].hasPrefix("L1 "), "the selected node's row first")
        let elided = try #require(lines.firstIndex { $0.hasPrefix("⋮ L2–L") })
        let rows = lines[(title + 1)..<elided].count + lines[(elided + 1)...].prefix { $0.hasPrefix("L") }.count
        let hidden = levels - rows
        #expect(hidden > 0, "the fixture's \(levels) levels do not fit at 80×24")
        #expect(lines[elided].hasPrefix("⋮ L2–L\(1 + hidden): \(hidden) levels not shown"))
        let last = lines[(elided + 1)...].prefix { $0.hasPrefix("L") }.last
        #expect(last?.hasPrefix("L\(levels) ") == true, "down to the leaf level")
        // Tall enough, the whole path and no elision.
        let tall = render(Self.longestPath(width: 80, height: 48)).lines
        #expect(!tall.contains { $0.contains("⋮") })
        #expect(tall.filter { $0.trimmingCharacters(in: .whitespaces).range(of: #"^L\d+ "#, options: .regularExpression) != nil }.count == levels)
    }

    /// More heatmap users than rows: the screen says how many it shows (at 80×24 the note once fell off the
    /// bottom, and three of Fig. 5's 20 users went missing without a word).
    @Test func aHeatmapTallerThanTheScreenSaysHowManyUsersItShows() throws {
        var s = Fixture.state(width: 80, height: 24, view: .heatmap)
        var a = Fixture.aggregates
        let times = 30 / a.heatmapUsers.count + 1
        a.heatmapUsers = (0..<times).flatMap { i in a.heatmapUsers.map { "\($0).\(i)" } }
        a.coHeat = Array(repeating: a.coHeat, count: times).flatMap { $0 }
        a.mmHeat = Array(repeating: a.mmHeat, count: times).flatMap { $0 }
        a.sasHeat = a.sasHeat.map { h in Array(repeating: h, count: times).flatMap { $0 } }
        s = reduce(s, .aggregatesReady(a))
        let lines = render(s).lines.map { $0.trimmingCharacters(in: .whitespaces) }
        let shown = lines.filter { line in a.heatmapUsers.contains { line.hasPrefix($0 + " ") } }.count
        #expect(shown == 24 - 3 - 5, "the body's rows less title, legend, panel titles, axis and the note")
        #expect(lines.contains("(\(shown) of \(a.heatmapUsers.count) users shown: enlarge the terminal for all)"))
        #expect(lines.contains { $0.hasPrefix("old") && $0.hasSuffix("recent") }, "the axis is still drawn")
    }

    /// The path pane (Tab) for the level-1 candidate whose path goes deepest, in a beam of 40 (the fixture's
    /// beam of 6 prunes every level-1 path by level 6).
    static func longestPath(width: Int, height: Int) -> ExplorerState {
        var s = Fixture.state(width: width, height: height, view: .beam)
        s = reduce(s, .userLoaded(Fixture.trace(beamSize: 40)))
        s.level = 1
        let t = s.trace!
        let lengths = t.levels[0].candidates.map { t.path(from: 1, node: $0.node, catalog: s.catalog).count }
        s.candidateCursor = lengths.indices.max { lengths[$0] < lengths[$1] }!
        return reduce(s, .key(.tab))
    }

    /// A level where children of the beam hold only items of the user's history: the header and the snapshot say how
    /// many were left unscored, and those plus the candidates are all the children of the previous level's beam.
    @Test func aLevelSaysHowManyAllSeenSubtreesItSkipped() throws {
        let m = Fixture.model
        let found = (0..<m.users.count).lazy.compactMap { row -> (UserTrace, Int)? in
            let t = Fixture.trace(row: row, beamSize: 6)
            return t.levels.firstIndex { $0.skipped > 0 }.map { (t, $0) }
        }.first
        let (t, i) = try #require(found, "some user of the fixture has a subtree of seen items next to the beam")
        let tree = m.bundle.tree
        let previousBeam = i == 0 ? [0] : t.levels[i - 1].candidates.filter(\.kept).map(\.node)
        #expect(t.levels[i].candidates.count + t.levels[i].skipped == previousBeam.map { tree.children(of: $0).count }.reduce(0, +))
        var s = Fixture.state(width: 160, height: 48, view: .beam)
        s = reduce(s, .userLoaded(t))
        s.level = t.levels[i].level
        #expect(render(s).text.contains("\(t.levels[i].candidates.count) candidates · \(t.levels[i].keptCount) kept (beam 6)"))
        #expect(render(s).text.contains("· \(t.levels[i].skipped) all-seen skipped ·"))
        // At 80 columns the header's compact form keeps the count.
        s = reduce(s, .resized(width: 80, height: 24))
        #expect(render(s).text.contains("\(t.levels[i].candidates.count) cand. · \(t.levels[i].keptCount) kept (beam 6) · H@h "))
        #expect(render(s).text.contains("· \(t.levels[i].skipped) skipped ·"))
        let snapshot = try #require(Snapshot(state: s, bundle: "b", data: "d"))
        #expect(snapshot.skipped == t.levels[i].skipped)
        #expect(Exporter.markdown(snapshot).contains("\(t.levels[i].skipped) children of the previous beam not scored"))
    }

    @Test func colourModesDrawHeatCellsDifferently() {
        var s = Fixture.state(width: 80, height: 24, view: .heatmap)
        let mono = render(s)
        s.colorMode = .c256
        let rich = render(s)
        let heatCells = rich.cells.filter { if case .heat = $0.style { return true } else { return false } }
        #expect(!heatCells.isEmpty)
        #expect(heatCells.allSatisfy { $0.char == " " }, "256 colours: the background carries the shade")
        #expect(mono.cells.contains { c in if case .heat = c.style { return "░▒▓█".contains(c.char) } else { return false } },
                "without colour a glyph ramp carries it")
    }
}
