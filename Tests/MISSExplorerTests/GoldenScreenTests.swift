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
        if actual != expected {
            let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }
            Issue.record("screen \(name) differs from \(url.lastPathComponent) at line \(first.map { $0.offset + 1 } ?? min(a.count, e.count)):\n got: \(first.map { String($0.element.0) } ?? "")\nwant: \(first.map { String($0.element.1) } ?? "")\n--- full screen ---\n\(actual)",
                         sourceLocation: sourceLocation)
        }
        #expect(screen.lines.allSatisfy { Screen.columns($0) == screen.width }, "every row fills exactly the width")
    }

    static let sizes = [(80, 24), (160, 48)]

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
        // Searching in the users view, and a user still loading.
        var search = Fixture.state(width: w, height: h, view: .users)
        for c in "/u1" { search = reduce(search, .key(.char(c))) }
        try check("users-search-\(tag)", render(search))
        var loading = ExplorerState.initial(catalog: Fixture.model.catalog, users: Fixture.model.users, colorMode: .mono, row: Fixture.row)
        loading = reduce(loading, .resized(width: w, height: h))
        try check("loading-\(tag)", render(loading))
    }

    @Test func tooSmallTerminalSaysWhatItNeeds() throws {
        var s = Fixture.state()
        s = reduce(s, .resized(width: 60, height: 20))
        let text = render(s).text
        #expect(text.contains("Terminal too small: 60×20."))
        #expect(text.contains("needs at least 80×24"))
        try check("too-small-60x20", render(s))
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
