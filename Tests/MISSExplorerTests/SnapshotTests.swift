import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import MISSTestSupport
import MISSCore
import MISSExplorer

@Suite struct SnapshotTests {
    @Test func exportWritesJSONMarkdownAndSVGAndTheJSONRoundTrips() throws {
        var s = Fixture.state(width: 120, height: 40, view: .gsu, level: 3)
        s.candidateCursor = 1
        let dir = try temporaryDirectory().appendingPathComponent("snap")
        let files = try Exporter.write(state: s, bundle: "b", data: "d", to: dir)
        #expect(files == ["heatmap.svg", "histogram.svg", "report.md", "snapshot.json"])
        let loaded = try Snapshot.load(from: dir.appendingPathComponent("snapshot.json"))
        #expect(loaded == Snapshot(state: s, bundle: "b", data: "d"))
        #expect(loaded.level == 3 && loaded.node == s.selectedCandidate!.node && loaded.view == "gsu")
        #expect(loaded.gsu!.co.count == Fixture.model.catalog.config.topK)
        let md = try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(md.contains("# Case study: user \(loaded.user), level 3"))
        #expect(md.contains("Co-GSU vs MM-GSU for node \(loaded.node!)"))

        // Reopening restores user, view, level and node through the same reduce path.
        var r = ExplorerState.initial(catalog: Fixture.model.catalog, users: Fixture.model.users, colorMode: .mono,
                                      row: try Fixture.model.row(ofUser: loaded.user), view: View(rawValue: loaded.view)!, beamSize: 6, finalK: 10)
        r.restore = (loaded.level, loaded.node)
        r = reduce(r, .userLoaded(Fixture.trace()))
        #expect(r.view == .gsu && r.level == 3 && r.selectedCandidate?.node == loaded.node)
    }

    @Test func svgFiguresAreWellFormedXML() throws {
        let a = Fixture.aggregates
        for svg in [SVG.heatmap(a), SVG.histograms(a, topK: 10)] {
            let parser = XMLParser(data: Data(svg.utf8))
            #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
            #expect(svg.contains("<svg") && svg.hasSuffix("</svg>\n"))
        }
        // Escaping: a user id with markup characters stays well-formed.
        var b = a
        b.heatmapUsers = ["<u&1>"] + b.heatmapUsers.dropFirst()
        #expect(XMLParser(data: Data(SVG.heatmap(b).utf8)).parse())
        let rects = SVG.heatmap(a).components(separatedBy: "<rect").count - 2   // minus the background
        #expect(rects == a.heatmapUsers.count * a.buckets * a.heatPanels.count)
        // Each user's own window: the same grid, its own rows, and a note that says so.
        let own = SVG.heatmap(a, axis: .ownWindow)
        #expect(XMLParser(data: Data(own.utf8)).parse())
        #expect(own.components(separatedBy: "<rect").count - 2 == rects && own != SVG.heatmap(a) && own.contains("own window"))
        // Aggregates without own-window rows (a snapshot from before them) fall back to the shared axis.
        var old = a
        old.ownWindows = nil; old.coHeatOwn = nil; old.mmHeatOwn = nil; old.sasHeatOwn = nil
        #expect(old.available(.ownWindow) == .shared && SVG.heatmap(old, axis: .ownWindow) == SVG.heatmap(old))
    }

    @Test func theFiguresScalesAreExportedAndAnOlderSnapshotWithoutThemLoads() throws {
        var s = Fixture.state(width: 120, height: 40, view: .heatmap)
        s = reduce(s, .key(.char("a")))
        s = reduce(s, .key(.char("5")))
        s = reduce(s, .key(.char("s")))
        let dir = try temporaryDirectory().appendingPathComponent("own")
        try Exporter.write(state: s, bundle: "b", data: "d", to: dir)
        let json = dir.appendingPathComponent("snapshot.json")
        let snapshot = try Snapshot.load(from: json)
        #expect(snapshot.heatmapAxis == .ownWindow && snapshot.histogramScale == .timesWindow)
        let svg = try String(contentsOf: dir.appendingPathComponent("heatmap.svg"), encoding: .utf8)
        #expect(svg == SVG.heatmap(Fixture.aggregates, axis: .ownWindow))
        let histograms = try String(contentsOf: dir.appendingPathComponent("histogram.svg"), encoding: .utf8)
        #expect(histograms == SVG.histograms(Fixture.aggregates, topK: 10, scale: .timesWindow) && histograms.contains("× window length"))
        #expect(XMLParser(data: Data(histograms.utf8)).parse())
        let md = try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(md.contains("Fig. 5's rows each span their own user's window") && md.contains("times its window's length"))
        // Written before the axis and the own-window rows existed: no such keys; it still loads.
        var object = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        #expect(object.removeValue(forKey: "heatmapAxis") != nil && object.removeValue(forKey: "histogramScale") != nil)
        var aggregates = try #require(object["aggregates"] as? [String: Any])
        for key in ["ownWindows", "coHeatOwn", "mmHeatOwn", "sasHeatOwn", "coHistogramTimesWindow", "mmHistogramTimesWindow"] {
            #expect(aggregates.removeValue(forKey: key) != nil)
        }
        object["aggregates"] = aggregates
        let older = dir.deletingLastPathComponent().appendingPathComponent("older.json")
        try JSONSerialization.data(withJSONObject: object).write(to: older)
        let loaded = try Snapshot.load(from: older)
        #expect(loaded.heatmapAxis == nil && loaded.histogramScale == nil && loaded.aggregates?.ownWindows == nil
                && loaded.aggregates?.coHeat == Fixture.aggregates.coHeat)
        #expect(loaded.aggregates!.available(.timesWindow) == .softmax
                && SVG.histograms(loaded.aggregates!, topK: 10, scale: .timesWindow) == SVG.histograms(loaded.aggregates!, topK: 10))
    }

    @Test func badSnapshotsGiveClearErrors() throws {
        let dir = try temporaryDirectory()
        let missing = inputError { _ = try Snapshot.load(from: dir.appendingPathComponent("nope.json")) }
        #expect(missing?.problem == "no such file")
        let truncated = dir.appendingPathComponent("cut.json")
        let s = Fixture.state()
        let full = try Snapshot(state: s, bundle: "b", data: "d")!.encoded()
        try full.prefix(full.count / 2).write(to: truncated)
        #expect(inputError { _ = try Snapshot.load(from: truncated) }?.problem.contains("not JSON") == true)
        let other = dir.appendingPathComponent("v9.json")
        let text = String(decoding: full, as: UTF8.self).replacingOccurrences(of: "\"version\" : 1", with: "\"version\" : 9")
        try Data(text.utf8).write(to: other)
        let e = inputError { _ = try Snapshot.load(from: other) }
        #expect(e?.location == "version" && e?.problem.contains("version 9") == true)
        let wrongKind = dir.appendingPathComponent("k.json")
        try Data(#"{"format":"something-else","version":1}"#.utf8).write(to: wrongKind)
        #expect(inputError { _ = try Snapshot.load(from: wrongKind) }?.location == "format")
    }

    @Test func exportingWithoutATraceIsRefusedAndWritesNothing() throws {
        let s = ExplorerState.initial(catalog: Fixture.model.catalog, users: Fixture.model.users, colorMode: .mono, row: nil)
        let dir = try temporaryDirectory().appendingPathComponent("never")
        #expect(inputError { try Exporter.write(state: s, bundle: "b", data: "d", to: dir) } != nil)
        #expect(!FileManager.default.fileExists(atPath: dir.path))
    }
}
