import Foundation
import MISSCore

/// A case-study snapshot: what the explorer shows for one (user, level, node), with the numbers the real
/// estimator produced. `miss explore --snapshot FILE` reopens it (recomputing everything from the bundle);
/// the numbers in the file are the record of what was seen.
public struct Snapshot: Codable, Equatable, Sendable {
    public static let format = "miss-explorer-snapshot"
    public static let version = 1

    public struct Candidate: Codable, Equatable, Sendable {
        public var node: Int
        public var label: String
        public var leaves: Int
        public var targetsUnder: Int
        public var probabilities: [Float]
        public var mean: Float
        public var kept: Bool
    }

    public struct Entry: Codable, Equatable, Sendable {
        public var rank: Int
        public var position: Int
        public var item: String
        public var title: String
        public var score: Float
        public var weight: Float
        public var inBoth: Bool
    }

    public struct GSU: Codable, Equatable, Sendable {
        public var node: Int
        public var label: String
        public var overlap: Double
        public var userOverlap: Double
        public var co: [Entry]
        public var mm: [Entry]
    }

    public struct Retrieved: Codable, Equatable, Sendable {
        public var rank: Int
        public var item: String
        public var title: String
        public var score: Float
        public var hit: Bool
    }

    /// A held-out target's fate, with its item's id and title and the label of the node where it left the beam.
    public struct Target: Codable, Equatable, Sendable {
        public var item: String
        public var title: String
        public var label: String
        public var fate: TargetFate
    }

    public var format: String
    public var version: Int
    public var bundle: String
    public var data: String
    public var dataset: String
    public var objectives: [String]
    public var user: String
    public var split: String
    public var historyLength: Int
    public var targets: Int
    public var view: String
    public var level: Int
    public var levels: Int
    public var node: Int?
    public var beam: Int
    public var finalK: Int
    public var candidates: Int
    /// Children left unscored because all their items are in the user's history (absent in snapshots written before it).
    public var skipped: Int?
    public var kept: Int
    public var hierarchicalRecall: Double?
    /// The level's best candidates by mean score (up to 20).
    public var topCandidates: [Candidate]
    public var path: [Candidate]
    public var gsu: GSU?
    /// The case study's chosen query item and both GSUs for it (absent when the node is the query).
    public var caseItem: String?
    public var caseStudy: GSU?
    public var retrieved: [Retrieved]
    public var recall: Double?
    public var aggregates: Aggregates?
    /// Fig. 5's axis on screen (`HeatmapAxis`; absent in snapshots written before it could change).
    public var heatmapAxis: HeatmapAxis?
    /// Fig. 6's scale on screen (`HistogramScale`; absent in snapshots written before it could change).
    public var histogramScale: HistogramScale?
    /// Where each held-out target left the beam, in the Targets view's order (absent in snapshots written before it).
    public var targetFates: [Target]?

    /// The snapshot of a state that has a trace (nil otherwise).
    public init?(state s: ExplorerState, bundle: String, data: String) {
        guard let t = s.trace, let lv = s.currentLevel else { return nil }
        let cat = s.catalog
        func candidate(_ c: CandidateRow) -> Candidate {
            Candidate(node: c.node, label: cat.nodeLabels[c.node], leaves: Int(cat.nodeLeaves[c.node]), targetsUnder: c.targetsUnder,
                      probabilities: c.probabilities, mean: c.mean, kept: c.kept)
        }
        func entry(_ e: GSUEntry) -> Entry {
            Entry(rank: e.rank, position: e.position, item: cat.itemIDs[Int(e.item)], title: cat.itemTitles[Int(e.item)],
                  score: e.score, weight: e.weight, inBoth: e.inBoth)
        }
        format = Self.format
        version = Self.version
        self.bundle = bundle
        self.data = data
        dataset = cat.datasetName
        objectives = cat.objectives
        user = t.user.id
        split = t.user.split
        historyLength = t.historyLength
        targets = t.targets.count
        view = s.view.rawValue
        level = s.level
        levels = t.levels.count
        node = s.selectedCandidate?.node
        beam = t.beamSize
        finalK = t.retrieved.count
        candidates = lv.candidates.count
        kept = lv.keptCount
        skipped = lv.skipped
        hierarchicalRecall = lv.hierarchicalRecall
        topCandidates = lv.candidates.prefix(20).map(candidate)
        path = s.selectedCandidate.map { c in t.path(from: s.level, node: c.node, catalog: cat).map { candidate($0.row) } } ?? []
        if let c = s.selectedCandidate, let cmp = s.comparison {
            gsu = GSU(node: c.node, label: cat.nodeLabels[c.node], overlap: cmp.overlap, userOverlap: t.meanOverlap(level: s.level),
                      co: cmp.co.map(entry), mm: cmp.mm.map(entry))
        }
        if let q = s.caseQuery {
            caseItem = cat.itemIDs[Int(q.item)]
            caseStudy = GSU(node: q.comparison.node, label: cat.itemTitles[Int(q.item)], overlap: q.comparison.overlap,
                            userOverlap: t.meanOverlap(level: s.level), co: q.comparison.co.map(entry), mm: q.comparison.mm.map(entry))
        }
        retrieved = t.retrieved.enumerated().map { i, r in
            Retrieved(rank: i + 1, item: cat.itemIDs[Int(r.item)], title: cat.itemTitles[Int(r.item)], score: r.score, hit: r.hit)
        }
        recall = t.recall
        aggregates = s.aggregates.value
        heatmapAxis = s.heatmapAxis
        histogramScale = s.histogramScale
        targetFates = t.fates.map { f in
            Target(item: cat.itemIDs[Int(f.item)], title: cat.itemTitles[Int(f.item)], label: cat.nodeLabels[f.node], fate: f)
        }
    }

    public func encoded() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }

    /// Reads a snapshot, checking its format and version; errors name the file and the field.
    public static func load(from url: URL) throws -> Snapshot {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw InputError(file: url.path, problem: "no such file", fix: "Pass a snapshot.json written by the explorer's export (e) or `miss export`")
        }
        struct Header: Decodable { var format: String?; var version: Int? }
        guard let header = try? JSONDecoder().decode(Header.self, from: data) else {
            throw InputError(file: url.path, problem: "is not JSON (truncated or another kind of file)", fix: "Export the snapshot again")
        }
        guard header.format == format else {
            throw InputError(file: url.path, location: "format", problem: "is '\(header.format ?? "missing")', not '\(format)'",
                             fix: "Pass a snapshot.json written by the explorer's export (e) or `miss export`")
        }
        guard header.version == version else {
            throw InputError(file: url.path, location: "version", problem: "snapshot version \(header.version.map(String.init) ?? "missing") is not the supported version \(version)",
                             fix: "Re-export it with this version of miss")
        }
        do {
            return try JSONDecoder().decode(Snapshot.self, from: data)
        } catch {
            throw InputError(file: url.path, problem: "is not a complete snapshot (\(error))", fix: "Export the snapshot again")
        }
    }
}

/// Writes a snapshot folder: snapshot.json, report.md and (when the aggregates are ready) heatmap.svg and histogram.svg.
public enum Exporter {
    @discardableResult
    public static func write(state: ExplorerState, bundle: String, data: String, to dir: URL) throws -> [String] {
        guard let snap = Snapshot(state: state, bundle: bundle, data: data) else {
            throw InputError(file: dir.path, problem: "nothing to export: no user's beam search is open", fix: "Open a user first")
        }
        var files: [String: Data] = ["snapshot.json": try snap.encoded(), "report.md": Data(markdown(snap).utf8)]
        if let a = snap.aggregates {
            files["heatmap.svg"] = Data(SVG.heatmap(a, axis: state.heatmapAxis).utf8)
            files["histogram.svg"] = Data(SVG.histograms(a, topK: state.catalog.config.topK, scale: state.histogramScale).utf8)
        }
        try AtomicWrite.writeDirectory(at: dir) { d in
            for (name, bytes) in files { try AtomicWrite.write(bytes, to: d.appendingPathComponent(name)) }
        }
        return files.keys.sorted()
    }

    public static func markdown(_ s: Snapshot) -> String {
        func f(_ x: Float) -> String { String(format: "%.4f", x) }
        func pct(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        func cell(_ t: String) -> String { t.replacingOccurrences(of: "|", with: "\\|") }
        var md = "# Case study: user \(s.user), level \(s.level) of \(s.levels)\n\n"
        md += "Dataset `\(s.dataset)` (`\(s.data)`), bundle `\(s.bundle)`. User \(s.user) (\(s.split)): \(s.historyLength) behaviours seen, \(s.targets) held-out targets. "
        md += "Beam \(s.beam), final K \(s.finalK). Snapshot format \(s.format) v\(s.version); reopen with `miss explore --snapshot snapshot.json`.\n\n"
        md += "## Level \(s.level)\n\n\(s.candidates) candidates, \(s.kept) kept"
        md += (s.skipped ?? 0) > 0 ? " (\(s.skipped!) children of the previous beam not scored: all their items are in the history)" : ""
        md += s.hierarchicalRecall.map { ", H@hRecall \(String(format: "%.3f", $0))" } ?? ""
        md += ".\n\n| # | node | label | leaves | targets | " + s.objectives.joined(separator: " | ") + " | mean | kept |\n"
        md += "|---|---|---|---|---|" + s.objectives.map { _ in "---|" }.joined() + "---|---|\n"
        for (i, c) in s.topCandidates.enumerated() {
            md += "| \(i + 1) | \(c.node) | \(cell(c.label)) | \(c.leaves) | \(c.targetsUnder) | " + c.probabilities.map(f).joined(separator: " | ")
                + " | \(f(c.mean)) | \(c.kept ? "yes" : "no") |\n"
        }
        if !s.path.isEmpty {
            md += "\nPath of node \(s.path[0].node) to the leaves: " + s.path.map { "\($0.node) (\(cell($0.label)), \(f($0.mean)))" }.joined(separator: " → ") + "\n"
        }
        if let g = s.gsu {
            md += "\n## Co-GSU vs MM-GSU for node \(g.node) (\(cell(g.label)))\n\n"
            md += "Overlap of the two top-K: this node \(pct(g.overlap)), this user at this level \(pct(g.userOverlap))"
            md += s.aggregates.map { ", over \($0.users) evaluation users \(pct($0.overlap))" } ?? ""
            md += " (the paper reports 13%).\n\n| # | Co-GSU item | pos | score | weight | MM-GSU item | pos | score | weight |\n|---|---|---|---|---|---|---|---|---|\n"
            for i in 0..<max(g.co.count, g.mm.count) {
                func side(_ e: Snapshot.Entry?) -> String {
                    guard let e else { return " | | | " }
                    return "\(e.inBoth ? "◆ " : "")\(cell(e.title)) | \(e.position) | \(f(e.score)) | \(f(e.weight))"
                }
                md += "| \(i + 1) | \(side(i < g.co.count ? g.co[i] : nil)) | \(side(i < g.mm.count ? g.mm[i] : nil)) |\n"
            }
            md += "\n◆ = in both top-K. score = raw relevance r_i; weight = the ESU's softmax over the top-K.\n"
        }
        if let c = s.caseStudy ?? s.gsu {
            md += "\n## Case study (Fig. 7): query \(s.caseItem.map { "item \($0), " } ?? "node \(c.node), ")\(cell(c.label))\n\n"
            md += "| # | Co-GSU top-5 | MM-GSU top-5 |\n|---|---|---|\n"
            for i in 0..<5 {
                let co = i < c.co.count ? cell(c.co[i].title) : "", mm = i < c.mm.count ? cell(c.mm[i].title) : ""
                md += "| \(i + 1) | \(co) | \(mm) |\n"
            }
        }
        md += "\n## Retrieved top-\(s.finalK)"
        md += s.recall.map { " (Recall@\(s.finalK) \(String(format: "%.3f", $0)))" } ?? ""
        md += "\n\n| # | item | title | score | hit |\n|---|---|---|---|---|\n"
        for r in s.retrieved { md += "| \(r.rank) | \(cell(r.item)) | \(cell(r.title)) | \(f(r.score)) | \(r.hit ? "✓" : "") |\n" }
        if let fates = s.targetFates, !fates.isEmpty {
            let retrieved = fates.filter(\.fate.retrieved).count
            let lost = TargetFate.lostPerLevel(fates.map(\.fate))
            md += "\n## Held-out targets: where each left the beam\n\n\(fates.count) targets, \(retrieved) retrieved in the top \(s.finalK). "
            md += "Left the beam at: " + (lost.isEmpty ? "none" : lost.map { "level \($0.level): \($0.count)" }.joined(separator: ", "))
            md += " (level \(s.levels) = the leaves: scored, not in the top \(s.finalK)). For each target: the last level its ancestor was scored at, "
            md += "that node's rank among the level's candidates (best first), how many the beam kept, its mean score and the lowest kept one.\n\n"
            md += "| # | item | title | fate | level | node | rank | of | kept | score | cut-off |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
            for (i, t) in fates.enumerated() {
                let x = t.fate
                md += "| \(i + 1) | \(cell(t.item)) | \(cell(t.title)) | \(x.retrievedRank.map { "retrieved #\($0)" } ?? "pruned") | \(x.level) | "
                    + "\(x.node) (\(cell(t.label))) | \(x.rank) | \(x.candidates) | \(x.kept) | \(f(x.score)) | \(f(x.cutoff)) |\n"
            }
        }
        if let a = s.aggregates {
            md += "\n## Figures 5 and 6\n\nOver \(a.users) evaluation users (query: each user's first held-out target). "
            md += a.available(s.heatmapAxis ?? .shared) == .ownWindow
                ? "Fig. 5's rows each span their own user's window, stretched to the width. "
                : "Fig. 5's axis is the last \(a.window) behaviours, the most recent at the right. "
            md += a.available(s.histogramScale ?? .softmax) == .timesWindow
                ? "Fig. 6 shows each softmax score times its window's length (1 = uniform attention over the window). "
                : "Fig. 6 shows the softmax scores themselves. "
            md += "![heatmap](heatmap.svg)\n\n![histograms](histogram.svg)\n"
        }
        return md
    }
}

/// Minimal, well-formed SVG for the two figures.
public enum SVG {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func grey(_ v: Double) -> String {
        let g = Int((max(0, min(1, v)) * 255).rounded())
        return "rgb(\(g),\(g),\(g))"
    }

    /// Fig. 5: rows = users, columns = position buckets old → recent (on `axis`); brightness = the row-relative
    /// softmax mass.
    public static func heatmap(_ a: Aggregates, axis wanted: HeatmapAxis = .shared) -> String {
        let cell = 10, label = 90, gap = 30, top = 40
        let panel = a.buckets * cell
        let axis = a.available(wanted)
        let panels = a.heatPanels(axis: axis)
        let width = label + panels.count * panel + (panels.count - 1) * gap + 20, height = top + a.heatmapUsers.count * cell + 40
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        out += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
        for (p, (title, heat)) in panels.enumerated() {
            let x0 = label + p * (panel + gap)
            out += "<text x=\"\(x0)\" y=\"\(top - 10)\" font-weight=\"bold\">\(title)</text>\n"
            for (r, row) in heat.enumerated() {
                let mx = Double(row.max() ?? 0)
                for (b, v) in row.enumerated() {
                    let x = x0 + b * cell, y = top + r * cell
                    if v < 0 {
                        out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"#f4f4f4\" stroke=\"#ddd\" stroke-width=\"0.5\"/>\n"
                    } else {
                        out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(grey(mx > 0 ? Double(v) / mx : 0))\"/>\n"
                    }
                }
            }
            let axis = top + heat.count * cell + 14
            out += "<text x=\"\(x0)\" y=\"\(axis)\">old</text><text x=\"\(x0 + panel)\" y=\"\(axis)\" text-anchor=\"end\">recent</text>\n"
        }
        for (r, u) in a.heatmapUsers.enumerated() {
            out += "<text x=\"\(label - 6)\" y=\"\(top + r * cell + cell - 1)\" text-anchor=\"end\" font-size=\"9\">\(escape(u))</text>\n"
        }
        let windows = a.ownWindows ?? []
        let span = axis == .ownWindow ? "per bucket of each user's own window (\(windows.min() ?? 0)–\(windows.max() ?? 0) behaviours), stretched to the width"
            : "per bucket of \(a.window / max(1, a.buckets)) positions (last \(a.window) behaviours)"
        out += "<text x=\"\(label)\" y=\"\(height - 8)\" font-size=\"9\">Softmax attention mass \(span), relative to each row's maximum; grey = outside the GSU's window.</text>\n"
        return out + "</svg>\n"
    }

    /// Fig. 6: one histogram per GSU of the softmax scores of its top-K (on `scale`).
    public static func histograms(_ a: Aggregates, topK: Int, scale wanted: HistogramScale = .softmax) -> String {
        let scale = a.available(wanted)
        let (co, mm) = a.histograms(scale: scale)
        let what = scale == .timesWindow ? "softmax score × window length" : "softmax score"
        let format = "%.4f"
        let pw = 360, ph = 220, gap = 60, left = 50, top = 40
        let width = left + 2 * pw + gap + 20, height = top + ph + 60
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        out += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
        for (p, (title, h)) in [("Co-GSU", co), ("MM-GSU", mm)].enumerated() {
            let x0 = left + p * (pw + gap)
            let maxCount = max(1, h.counts.max() ?? 1)
            let bw = Double(pw) / Double(max(1, h.counts.count))
            out += "<text x=\"\(x0)\" y=\"\(top - 12)\" font-weight=\"bold\">\(title): \(what)s of the top-\(topK) (\(h.counts.reduce(0, +)) scores)</text>\n"
            for (i, c) in h.counts.enumerated() {
                let bh = Double(ph) * Double(c) / Double(maxCount)
                out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#555\"/>\n",
                              Double(x0) + Double(i) * bw, Double(top + ph) - bh, max(0.5, bw - 1), bh)
            }
            out += "<line x1=\"\(x0)\" y1=\"\(top + ph)\" x2=\"\(x0 + pw)\" y2=\"\(top + ph)\" stroke=\"black\"/>\n"
            out += "<line x1=\"\(x0)\" y1=\"\(top)\" x2=\"\(x0)\" y2=\"\(top + ph)\" stroke=\"black\"/>\n"
            out += "<text x=\"\(x0)\" y=\"\(top + ph + 14)\">\(String(format: format, h.lower))</text>\n"
            out += "<text x=\"\(x0 + pw)\" y=\"\(top + ph + 14)\" text-anchor=\"end\">\(String(format: format, h.upper))</text>\n"
            out += "<text x=\"\(x0 + pw / 2)\" y=\"\(top + ph + 30)\" text-anchor=\"middle\">\(what)</text>\n"
            out += "<text x=\"\(x0 - 6)\" y=\"\(top + 4)\" text-anchor=\"end\">\(maxCount)</text>\n"
            out += "<text x=\"\(x0 - 6)\" y=\"\(top + ph)\" text-anchor=\"end\">0</text>\n"
        }
        let note = scale == .timesWindow ? " Each score is its softmax times the length of the window it is over (1 = uniform attention)." : ""
        out += "<text x=\"\(left)\" y=\"\(height - 8)\" font-size=\"9\">\(a.users) evaluation users; count of top-K scores per bin.\(note)</text>\n"
        return out + "</svg>\n"
    }
}
