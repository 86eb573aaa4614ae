import Foundation

/// The smallest terminal the views are laid out for.
public let minimumWidth = 80, minimumHeight = 24

/// Draws the whole screen from the state: pure, so that golden tests see exactly what a user sees.
public func render(_ s: ExplorerState) -> Screen {
    var screen = Screen(width: s.width, height: s.height)
    guard s.width >= minimumWidth && s.height >= minimumHeight else {
        tooSmall(&screen, s)
        return screen
    }
    titleBar(&screen, s)
    tabs(&screen, s)
    var body = Body(x: 0, y: 2, width: s.width, height: s.height - 3)
    if s.showHelp {
        help(&screen, &body, s)
    } else {
        switch s.view {
        case .users: usersView(&screen, body, s)
        case .beam: beamView(&screen, body, s)
        case .gsu: gsuView(&screen, body, s)
        case .heatmap: heatmapView(&screen, body, s)
        case .histogram: histogramView(&screen, body, s)
        case .caseStudy: caseView(&screen, body, s)
        case .targets: targetsView(&screen, body, s)
        }
    }
    statusLine(&screen, s)
    return screen
}

struct Body {
    var x: Int, y: Int, width: Int, height: Int
    var bottom: Int { y + height }
}

// MARK: - Frame

private func tooSmall(_ screen: inout Screen, _ s: ExplorerState) {
    let lines = ["Terminal too small: \(s.width)×\(s.height).",
                 "MISS Explorer needs at least \(minimumWidth)×\(minimumHeight).",
                 "Enlarge the window, or press q to quit."]
    let top = max(0, s.height / 2 - 1)
    for (i, l) in lines.enumerated() {
        let w = Screen.columns(l)
        screen.put(l, x: max(0, (s.width - w) / 2), y: top + i, style: i == 0 ? .warning : .normal)
    }
}

private func titleBar(_ screen: inout Screen, _ s: ExplorerState) {
    screen.paint(x: 0, y: 0, width: s.width, style: .title)
    var text = " MISS Explorer · \(s.catalog.datasetName)"
    if let t = s.trace {
        let u = t.user
        let long = " · user \(u.id) (\(u.split), \(t.historyLength) behaviours seen, \(u.targets) targets) · level \(s.level)/\(t.levels.count)"
        let short = " · \(u.id) (\(u.split), \(t.historyLength) seen, \(u.targets) targets) · level \(s.level)/\(t.levels.count)"
        text += Text.either(long, or: short, within: s.width - Screen.columns(text))
    } else if let row = s.loadingUser {
        text += " · loading user \(s.users[row].id)…"
    }
    screen.put(text, x: 0, y: 0, style: .title, maxWidth: s.width)
}

private func tabs(_ screen: inout Screen, _ s: ExplorerState) {
    var x = 1
    for v in View.allCases {
        let label = " \(v.number) \(v.title) "
        x += screen.put(label, x: x, y: 1, style: v == s.view && !s.showHelp ? .activeTab : .tab) + 1
    }
}

private func statusLine(_ screen: inout Screen, _ s: ExplorerState) {
    let y = s.height - 1
    screen.paint(x: 0, y: y, width: s.width, style: .status)
    if let text = s.search {
        screen.put(" /\(text)▏  Enter jump · Esc cancel", x: 0, y: y, style: .status)
        return
    }
    if let text = s.itemInput {
        screen.put(" item id or title: \(text)▏  Enter use · empty Enter back to the node · Esc cancel", x: 0, y: y, style: .status)
        return
    }
    if let m = s.message {
        screen.put(" " + m, x: 0, y: y, style: .warning)
        return
    }
    var x = 1
    let hints: [(keys: String, label: String)] = s.showHelp ? [("?/Esc", "close help"), ("q", "quit")] : KeyTable.hints(for: s.view)
    for h in hints {
        guard x + Screen.columns(h.keys) + Screen.columns(h.label) + 2 <= s.width else { break }
        x += screen.put(h.keys, x: x, y: y, style: .key)
        x += screen.put(" " + h.label + "  ", x: x, y: y, style: .status)
    }
}

private func help(_ screen: inout Screen, _ body: inout Body, _ s: ExplorerState) {
    screen.put("Keys (this table also drives the key dispatch and the bottom line)", x: 1, y: body.y, style: .header)
    let keyWidth = s.width >= 150 ? 14 : 9
    var y = body.y + 1
    let two = s.width >= 150 || KeyTable.bindings.count + 2 > body.height
    let perColumn = two ? (KeyTable.bindings.count + 1) / 2 : KeyTable.bindings.count
    for (i, b) in KeyTable.bindings.enumerated() {
        let col = two && i >= perColumn ? s.width / 2 : 0
        let row = y + (two && i >= perColumn ? i - perColumn : i)
        guard row < body.bottom else { continue }
        let scope = b.views.map { v in View.allCases.filter { v.contains($0) }.map(\.title).joined(separator: ",") } ?? "all"
        screen.put(Text.fit(b.keyNames, keyWidth), x: col + 1, y: row, style: .key)
        let width = (two ? s.width / 2 : s.width) - keyWidth - 3
        screen.put(Text.fit(b.help + (s.width >= 100 ? "  [\(scope)]" : ""), width), x: col + keyWidth + 2, y: row)
    }
    y += perColumn
    if y < body.bottom {
        let note = "Colours: \(s.colorMode.rawValue) (NO_COLOR or --no-color for none). Numbers are the real estimator's."
        screen.put(Text.either(note, or: "Colours: \(s.colorMode.rawValue) (off: NO_COLOR, --no-color) · numbers: the real estimator's", within: s.width - 2),
                   x: 1, y: y, style: .dim, maxWidth: s.width - 2)
    }
}

private func placeholder(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) -> Bool {
    if let row = s.loadingUser, s.trace == nil || s.trace?.user.index != s.users[row].index {
        let spin = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"][s.ticks % 10]
        screen.put("\(spin) Running the beam search for user \(s.users[row].id) (beam \(s.beamSize), L_mm \(s.catalog.config.mmLength))…",
                   x: 2, y: body.y + 1, style: .bold)
        if s.trace == nil { return true }
        return false
    }
    if s.trace == nil {
        screen.put("No user open. Press 1 for the Users view, pick one and press Enter.", x: 2, y: body.y + 1)
        return true
    }
    return false
}

/// Scroll offset that keeps `cursor` visible in `rows` rows.
func scrollOffset(cursor: Int, rows: Int, count: Int) -> Int {
    guard rows > 0, count > rows else { return 0 }
    return min(max(0, cursor - rows + 1 + min(rows / 2, max(0, count - cursor - 1))), count - rows)
}

// MARK: - Users

private func usersView(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) {
    let test = s.users.filter { $0.split == "test" }.count, valid = s.users.filter { $0.split == "valid" }.count
    let recall: String, short: String
    switch s.recalls {
    case .ready(let r):
        recall = "Recall@\(s.finalK) of \(r.count) evaluation users (beam \(s.beamSize)) · order: \(s.userOrder.rawValue) (o)"
        short = "R@\(s.finalK) (beam \(s.beamSize)) · order: \(s.userOrder.rawValue) (o)"
    case .running(let d, let n): recall = "Recall@\(s.finalK): computing \(d)/\(n) users…"; short = "R@\(s.finalK): \(d)/\(n)…"
    case .failed: recall = "Recall@\(s.finalK): failed"; short = recall
    case .idle: recall = "Recall@\(s.finalK): not computed"; short = recall
    }
    screen.put(Text.either("\(s.users.count) users · \(test) test · \(valid) validation · targets: held-out second half · " + recall,
                           or: "\(s.users.count) users · \(test) test · \(valid) valid · " + short, within: s.width - 2),
               x: 1, y: body.y, style: .dim, maxWidth: s.width - 2)
    let idWidth = max(10, min(24, s.users.map { Screen.columns($0.id) }.max() ?? 10))
    let header = Text.fit("user", idWidth) + "  split  " + Text.right("length", 8) + "  " + Text.right("targets", 8)
        + Text.right("R@\(s.finalK)", 7) + "  sequence"
    screen.put(header, x: 2, y: body.y + 1, style: .header)
    let rows = body.height - 2
    let order = s.userDisplayOrder
    let cursor = order.firstIndex(of: s.userCursor) ?? 0
    let off = scrollOffset(cursor: cursor, rows: rows, count: order.count)
    let maxLen = s.users.map(\.length).max() ?? 1
    let barWidth = max(0, s.width - Screen.columns(header) - 6)
    let recalls = s.recalls.value
    for i in 0..<min(rows, max(0, order.count - off)) {
        let u = s.users[order[off + i]]
        let y = body.y + 2 + i
        let r = u.split == "train" || u.targets == 0 ? "–" : recalls.map { $0[u.index].map { String(format: "%.3f", $0) } ?? "–" } ?? "…"
        let line = Text.fit(u.id, idWidth) + "  " + Text.fit(u.split, 5) + "  " + Text.right("\(u.length)", 8) + "  "
            + Text.right(u.split == "train" ? "–" : "\(u.targets)", 8) + Text.right(r, 7) + "  "
        let selected = off + i == cursor
        let open = s.trace?.user.index == u.index
        screen.put((open ? "▸" : " ") + line, x: 1, y: y, style: selected ? .selected : .normal)
        let filled = Int((Double(u.length) / Double(maxLen) * Double(barWidth)).rounded(.up))
        screen.put(String(repeating: "▪", count: min(barWidth, filled)), x: 1 + 1 + Screen.columns(line), y: y, style: selected ? .selected : .dim)
        if selected { screen.paint(x: 1, y: y, width: s.width - 2, style: .selected) }
    }
}

// MARK: - Beam

private func beamView(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) {
    if placeholder(&screen, body, s) { return }
    guard let t = s.trace, let lv = s.currentLevel else { return }
    let h = lv.hierarchicalRecall.map { String(format: "%.3f", $0) } ?? "– (no targets)"
    let ms = String(format: "%.0f", t.seconds * 1000)
    let counts = "\(lv.candidates.count) candidates · \(lv.keptCount) kept (beam \(t.beamSize)) · H@hRecall \(h)"
    let skipped = lv.skipped > 0 ? " · \(lv.skipped) all-seen skipped" : ""
    let full = "Level \(lv.level) of \(t.levels.count) · \(counts)\(skipped) · search \(ms) ms"
    // On a narrow terminal a shorter form, so that the search time is not cut off; the count of all-seen
    // subtrees skipped stays when it fits.
    let medium = "Level \(lv.level)/\(t.levels.count) · \(counts) · \(ms) ms"
    let compact = "L\(lv.level)/\(t.levels.count) · \(lv.candidates.count) cand. · \(lv.keptCount) kept (beam \(t.beamSize)) · H@h \(h)"
        + " · \(lv.skipped) skipped · \(ms) ms"
    screen.put(Text.firstFitting([full] + (lv.skipped > 0 ? [compact] : []) + [medium], within: s.width - 2),
               x: 1, y: body.y, style: .bold, maxWidth: s.width - 2)
    let wide = s.width >= 120
    let leftWidth = wide ? s.width * 3 / 5 : s.width
    let rightX = wide ? leftWidth + 1 : 0
    let rightWidth = wide ? s.width - leftWidth - 2 : s.width
    if wide || s.pane == 0 {
        candidateTable(&screen, Body(x: 0, y: body.y + 1, width: leftWidth, height: body.height - 1), s, t, lv, focused: s.pane == 0)
    }
    if wide || s.pane == 1 {
        if wide { for y in (body.y + 1)..<body.bottom { screen.put("│", x: leftWidth, y: y, style: .dim) } }
        pathPane(&screen, Body(x: rightX, y: body.y + 1, width: rightWidth, height: body.height - 1), s, t, focused: s.pane == 1)
    }
}

private func candidateTable(_ screen: inout Screen, _ b: Body, _ s: ExplorerState, _ t: UserTrace, _ lv: LevelView, focused: Bool) {
    let objectives = s.catalog.objectives
    let shown = min(objectives.count, max(0, (b.width - 52) / 6))
    let labelWidth = max(8, b.width - 37 - 6 * shown)
    var header = Text.right("#", 4) + " " + Text.right("node", 6) + " " + Text.fit("label", labelWidth) + Text.right("leaves", 7) + Text.right("tgts", 5)
    for o in objectives.prefix(shown) { header += Text.right(String(o.prefix(5)), 6) }
    header += Text.right("mean", 7) + " kept"
    screen.put(header, x: b.x + 1, y: b.y, style: .header, maxWidth: b.width - 1)
    let rows = b.height - 1
    let off = scrollOffset(cursor: s.candidateCursor, rows: rows, count: lv.candidates.count)
    for i in 0..<min(rows, max(0, lv.candidates.count - off)) {
        let c = lv.candidates[off + i]
        let y = b.y + 1 + i
        var line = Text.right("\(off + i + 1)", 4) + " " + Text.right("\(c.node)", 6) + " " + Text.fit(s.catalog.nodeLabels[c.node], labelWidth)
            + Text.right("\(s.catalog.nodeLeaves[c.node])", 7) + Text.right(c.targetsUnder > 0 ? "\(c.targetsUnder)" : "·", 5)
        for p in c.probabilities.prefix(shown) { line += Text.right(Text.score(p), 6) }
        line += Text.right(Text.score(c.mean), 7) + "  " + (c.kept ? "●" : "○")
        let selected = off + i == s.candidateCursor
        let style: Style = selected ? (focused ? .selected : .bold) : c.targetsUnder > 0 ? .hit : c.kept ? .kept : .pruned
        screen.put(line, x: b.x + 1, y: y, style: style, maxWidth: b.width - 1)
        if selected && focused { screen.paint(x: b.x, y: y, width: b.width, style: .selected) }
    }
}

private func pathPane(_ screen: inout Screen, _ b: Body, _ s: ExplorerState, _ t: UserTrace, focused: Bool) {
    var y = b.y
    let w = b.width - 1
    guard let c = s.selectedCandidate else { return }
    screen.put("Path of node \(c.node) to the leaves (best-scored child per level)", x: b.x + 1, y: y, style: focused ? .activeTab : .header, maxWidth: w)
    y += 1
    let path = t.path(from: s.level, node: c.node, catalog: s.catalog)
    // Half the pane for the path, the rest for the final top-K. A path longer than that keeps its first row
    // (the selected node) and its deepest ones, with a line that says which levels are left out between them.
    let budget = max(1, (b.height - 3) / 2)
    let shown: [(level: Int, row: CandidateRow)?] = path.count <= budget ? path
        : budget >= 3 ? [path[0], nil] + path.suffix(budget - 2) : Array(path.prefix(budget))
    for entry in shown {
        guard let step = entry else {
            let hidden = path.count - (budget - 1)
            screen.put("⋮ L\(path[1].level)–L\(path[hidden].level): \(hidden) levels not shown (a taller terminal shows them)",
                       x: b.x + 1, y: y, style: .dim, maxWidth: w)
            y += 1
            continue
        }
        let r = step.row
        let line = "L\(step.level) " + Text.right("\(r.node)", 6) + " " + Text.score(r.mean) + (r.kept ? " ●" : " ○") + (r.targetsUnder > 0 ? " ✓\(r.targetsUnder)" : "   ") + " " + s.catalog.nodeLabels[r.node]
        screen.put(line, x: b.x + 1, y: y, style: step.level == s.level ? .bold : r.kept ? .kept : .pruned, maxWidth: w)
        y += 1
    }
    if !path.isEmpty, let last = path.last, !last.row.kept, last.level < t.levels.count {
        screen.put("(pruned at level \(last.level): its children were never scored)", x: b.x + 1, y: y, style: .dim, maxWidth: w)
        y += 1
    }
    y += 1
    guard y < b.bottom else { return }
    let recall = t.recall.map { String(format: " · Recall@%d %.3f", t.retrieved.count, $0) } ?? ""
    let hits = t.retrieved.filter(\.hit).count
    screen.put("Final top-\(t.retrieved.count): \(hits) hits\(recall)", x: b.x + 1, y: y, style: focused ? .activeTab : .header, maxWidth: w)
    y += 1
    for (rank, r) in t.retrieved.enumerated() where y < b.bottom {
        let line = Text.right("\(rank + 1)", 3) + (r.hit ? " ✓ " : "   ") + Text.score(r.score) + " " + s.catalog.itemTitles[Int(r.item)]
        screen.put(line, x: b.x + 1, y: y, style: r.hit ? .hit : .normal, maxWidth: w)
        y += 1
    }
}

// MARK: - Targets

/// One target's fate in words, within `width` columns: where its path left the beam and by how much, or where
/// it was retrieved.
func fateSentence(_ f: TargetFate, _ s: ExplorerState, levels: Int, width: Int) -> String {
    let id = s.catalog.itemIDs[Int(f.item)]
    let gap = String(format: "%.3f", abs(f.score - f.cutoff))
    if let r = f.retrievedRank {
        return Text.either("\(id) retrieved: #\(r) of the final top-\(f.kept), scoring \(Text.score(f.score)); the last of them scored \(Text.score(f.cutoff))",
                           or: "\(id) retrieved: #\(r) of the final \(f.kept), \(Text.score(f.score)) (last \(Text.score(f.cutoff)))", within: width)
    }
    let what = f.level == levels ? "its leaf" : "its ancestor, node \(f.node) (\(s.catalog.nodeLabels[f.node])),"
    return Text.either("\(id) left the beam at level \(f.level): \(what) ranked #\(f.rank) of \(f.candidates); the beam kept \(f.kept), "
                       + "down to \(Text.score(f.cutoff)); it scored \(Text.score(f.score)), \(gap) short",
                       or: "\(id) pruned at L\(f.level): node \(f.node) #\(f.rank) of \(f.candidates), kept \(f.kept) down to "
                       + "\(Text.score(f.cutoff)); \(Text.score(f.score)) is \(gap) short", within: width)
}

private func targetsView(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) {
    if placeholder(&screen, body, s) { return }
    guard let t = s.trace else { return }
    guard !t.fates.isEmpty else {
        screen.put("\(t.user.id) is a \(t.user.split == "train" ? "training" : t.user.split) user: no held-out targets to follow.",
                   x: 1, y: body.y, style: .bold, maxWidth: s.width - 2)
        screen.put("Evaluation users (validation and test, in 1 Users) have them: the second half of their sequence.",
                   x: 1, y: body.y + 1, maxWidth: s.width - 2)
        return
    }
    let retrieved = t.fates.filter(\.retrieved).count, levels = t.levels.count
    let summary = "\(t.fates.count) held-out targets · \(retrieved) retrieved in the top \(s.finalK) (beam \(t.beamSize)) · Enter: its level in the Beam view"
    screen.put(Text.either(summary, or: "\(t.fates.count) targets · \(retrieved) in the top \(s.finalK) (beam \(t.beamSize)) · Enter: its level",
                           within: s.width - 2), x: 1, y: body.y, style: .bold, maxWidth: s.width - 2)
    // "L3 4 · L9 2": how many targets left the beam at each level.
    let lost = TargetFate.lostPerLevel(t.fates).map { "L\($0.level) \($0.count)" }.joined(separator: " · ")
    let left = "Left the beam at: " + (lost.isEmpty ? "none" : lost)
    screen.put(Text.either(left + " (L\(levels) = leaves scored, not in the top \(s.finalK))", or: left, within: s.width - 2),
               x: 1, y: body.y + 1, style: .dim, maxWidth: s.width - 2)
    let columns = Text.right("#", 4) + "  " + Text.fit("fate", 9) + Text.right("level", 6) + Text.right("rank", 6) + Text.right("of", 5)
        + Text.right("kept", 5) + Text.right("score", 7) + Text.right("cut-off", 8) + Text.right("gap", 7) + "  "
    let titleWidth = max(8, s.width - Screen.columns(columns) - 3)
    let header = columns + Text.fit("item", titleWidth)
    screen.put(header, x: 1, y: body.y + 2, style: .header, maxWidth: s.width - 2)
    // The list, then the selected target's sentence on the last line (reserved).
    let rows = body.height - 4
    let off = scrollOffset(cursor: s.targetCursor, rows: rows, count: t.fates.count)
    for i in 0..<min(rows, max(0, t.fates.count - off)) {
        let f = t.fates[off + i]
        let fate = f.retrievedRank.map { "✓ top \($0)" } ?? "pruned"
        let line = Text.right("\(off + i + 1)", 4) + "  " + Text.fit(fate, 9) + Text.right("L\(f.level)", 6) + Text.right("\(f.rank)", 6)
            + Text.right("\(f.candidates)", 5) + Text.right("\(f.kept)", 5) + Text.right(Text.score(f.score), 7)
            + Text.right(Text.score(f.cutoff), 8) + Text.right(String(format: "%+.3f", f.score - f.cutoff), 7) + "  "
            + Text.fit("\(s.catalog.itemIDs[Int(f.item)]) \(s.catalog.itemTitles[Int(f.item)])", titleWidth)
        let selected = off + i == s.targetCursor
        screen.put(line, x: 1, y: body.y + 3 + i, style: selected ? .selected : f.retrieved ? .hit : .normal, maxWidth: s.width - 2)
    }
    if s.targetCursor < t.fates.count {
        screen.put(fateSentence(t.fates[s.targetCursor], s, levels: levels, width: s.width - 2), x: 1, y: body.bottom - 1, style: .bold, maxWidth: s.width - 2)
    }
}

// MARK: - GSUs

func overlapLine(_ s: ExplorerState, _ cmp: GSUComparison, _ t: UserTrace) -> String {
    let all: String
    switch s.aggregates {
    case .ready(let a): all = "\(Text.percent(a.overlap)) over \(a.users) evaluation users"
    case .running(let d, let n): all = "computing \(d)/\(n)…"
    case .failed: all = "failed"
    case .idle: all = "not computed"
    }
    return "Overlap of the two top-K: this node \(Text.percent(cmp.overlap)) · this user \(Text.percent(t.meanOverlap(level: s.level))) (level's kept nodes) · all: \(all) (paper: 13%)"
}

private func gsuView(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) {
    if placeholder(&screen, body, s) { return }
    guard let t = s.trace, let c = s.selectedCandidate, let cmp = s.comparison else { return }
    let cfg = s.catalog.config
    screen.put("Node \(c.node) at level \(s.level): \(s.catalog.nodeLabels[c.node]) · \(s.catalog.nodeLeaves[c.node]) leaves · mean \(Text.score(c.mean)) · \(c.kept ? "kept" : "pruned")",
               x: 1, y: body.y, style: .bold, maxWidth: s.width - 2)
    screen.put(overlapLine(s, cmp, t), x: 1, y: body.y + 1, style: .normal, maxWidth: s.width - 2)
    let half = (s.width - 3) / 2
    let columns: [(String, [GSUEntry], Style, Int)] = [
        ("Co-GSU (ID) · last \(t.coItems.count) of L_co \(cfg.coLength)", cmp.co, .co, 1),
        ("MM-GSU (frozen MM) · last \(t.mmItems.count) of L_mm \(cfg.mmLength)", cmp.mm, .mm, half + 2),
    ]
    // Below the two title lines, the column titles and headers: the list, then the legend and the selected
    // entry's line (both always reserved, so that a full list's last row is never drawn under them).
    let rows = body.height - 6
    let n = max(cmp.co.count, cmp.mm.count)
    let off = scrollOffset(cursor: s.gsuCursor, rows: rows, count: n)
    for (p, (title, entries, style, x)) in columns.enumerated() {
        screen.put(title, x: x, y: body.y + 2, style: s.pane == p ? .activeTab : style, maxWidth: half)
        let titleWidth = half - 23
        screen.put(Text.right("#", 2) + " " + Text.right("pos", 5) + " " + Text.right("score", 6) + " " + Text.right("weight", 6) + "  " + Text.fit("title", titleWidth),
                   x: x, y: body.y + 3, style: .header, maxWidth: half)
        for i in 0..<min(rows, max(0, entries.count - off)) {
            let e = entries[off + i]
            let line = Text.right("\(e.rank)", 2) + " " + Text.right("\(e.position)", 5) + " " + Text.right(Text.score(e.score), 6) + " "
                + Text.right(String(format: "%.3f", e.weight), 6) + (e.inBoth ? " ◆" : "  ") + Text.fit(s.catalog.itemTitles[Int(e.item)], titleWidth)
            let selected = off + i == s.gsuCursor
            screen.put(line, x: x, y: body.y + 4 + i, style: selected && s.pane == p ? .selected : e.inBoth ? .both : .normal, maxWidth: half)
        }
    }
    let entries = s.pane == 0 ? cmp.co : cmp.mm
    if s.gsuCursor < entries.count {
        let e = entries[s.gsuCursor]
        let id = s.catalog.itemIDs[Int(e.item)]
        screen.put("\(s.pane == 0 ? "Co" : "MM")-GSU #\(e.rank): \(s.catalog.itemTitles[Int(e.item)]) [item \(id), position \(e.position) of \(t.historyLength)]\(e.inBoth ? " · in both" : "")",
                   x: 1, y: body.bottom - 1, style: .dim, maxWidth: s.width - 2)
    }
    screen.put("◆ in both top-K · score: raw r_i · weight: ESU softmax over the top-K", x: 1, y: body.bottom - 2, style: .dim, maxWidth: s.width - 2)
}

// MARK: - Aggregates

private func aggregatesPlaceholder(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) -> Aggregates? {
    switch s.aggregates {
    case .ready(let a): return a
    case .running(let done, let total):
        let frac = total > 0 ? Double(done) / Double(total) : 0
        let width = 30
        let filled = Int(frac * Double(width))
        screen.put("Computing both GSUs over the evaluation users with the real estimator…", x: 2, y: body.y + 1, style: .bold)
        screen.put(String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled) + " \(done)/\(total) users", x: 2, y: body.y + 3)
    case .idle:
        screen.put("Waiting to compute the aggregates…", x: 2, y: body.y + 1)
    case .failed(let why):
        screen.put("Could not compute the aggregates: \(why)", x: 2, y: body.y + 1, style: .warning, maxWidth: s.width - 4)
    }
    return nil
}

/// A heat cell's glyph: blank with a grey background in 256 colours, a shade ramp otherwise.
func heatGlyph(_ level: Int, _ mode: ColorMode) -> Character {
    if mode == .c256 { return " " }
    let ramp: [Character] = [" ", "░", "▒", "▓", "█"]
    return ramp[min(4, (level * 5) / 24)]
}

private func heatmapView(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) {
    guard let a = aggregatesPlaceholder(&screen, body, s) else { return }
    let axis = a.available(s.heatmapAxis)
    let span: String
    if axis == .ownWindow, let windows = a.ownWindows, let shortest = windows.min(), let longest = windows.max() {
        span = "each user's own window (\(shortest == longest ? "\(longest)" : "\(shortest)–\(longest)") behaviours, stretched)"
    } else {
        span = "last \(a.window) behaviours (\(max(1, a.window / a.buckets)) per column)"
    }
    screen.put("Fig. 5 · GSU attention by position, \(span) · query: each user's first held-out target",
               x: 1, y: body.y, style: .bold, maxWidth: s.width - 2)
    let labelWidth = 9
    // Three panels when the bundle has SASRec and the terminal is wide enough, else the two GSUs.
    var all = a.heatPanels(axis: axis)
    let needed = labelWidth + 1 + all.count * (a.buckets + 2)
    var sasNote = a.sasHeat == nil ? "SASRec: not in bundle (miss train --sasrec-steps N)" : "SASRec: its last position's attention"
    if all.count > 2 && s.width < needed {
        all = Array(all.prefix(2))
        sasNote = "SASRec panel: widen to ≥ \(needed) columns"
    }
    screen.put("Shade: mean softmax score per position, relative to the row's max · ·: outside the window · " + sasNote,
               x: 1, y: body.y + 1, style: .dim, maxWidth: s.width - 2)
    let cell = max(1, (s.width - labelWidth - 2 * all.count) / (all.count * a.buckets))
    let panelWidth = cell * a.buckets
    let panels: [(String, [[Float]], Int)] = all.enumerated().map { i, p in (p.title, p.heat, labelWidth + 1 + i * (panelWidth + 2)) }
    // Title, legend, panel titles and the axis take four lines; if the users do not all fit, one more goes to
    // the line that says how many are shown.
    let fit = body.height - 4
    let rows = a.heatmapUsers.count <= fit ? a.heatmapUsers.count : max(1, fit - 1)
    for (title, heat, x) in panels {
        screen.put(Text.fit(title, panelWidth), x: x, y: body.y + 2, style: .header)
        for r in 0..<rows {
            let row = heat[r]
            let top = row.max() ?? 0
            for (b, v) in row.enumerated() {
                let level = v < 0 || top <= 0 ? -1 : Int((v / top * 23).rounded())
                for c in 0..<cell {
                    if level < 0 {
                        screen.put(c == 0 ? "·" : " ", x: x + b * cell + c, y: body.y + 3 + r, style: .dim)
                    } else {
                        screen.put(String(heatGlyph(level, s.colorMode)), x: x + b * cell + c, y: body.y + 3 + r, style: .heat(UInt8(level)))
                    }
                }
            }
        }
        let axisY = body.y + 3 + rows
        if axisY < body.bottom {
            screen.put("old", x: x, y: axisY, style: .dim)
            screen.put("recent", x: x + panelWidth - 6, y: axisY, style: .dim)
        }
    }
    for r in 0..<rows { screen.put(Text.fit(a.heatmapUsers[r], labelWidth), x: 1, y: body.y + 3 + r, style: .dim) }
    if rows < a.heatmapUsers.count, body.y + 4 + rows < body.bottom {
        screen.put("(\(rows) of \(a.heatmapUsers.count) users shown: enlarge the terminal for all)", x: 1, y: body.y + 4 + rows, style: .dim)
    }
}

private func histogramView(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) {
    guard let a = aggregatesPlaceholder(&screen, body, s) else { return }
    let k = s.catalog.config.topK
    let scale = a.available(s.histogramScale)
    let what = scale == .timesWindow ? "softmax score × window length (1 = uniform over the window)" : "softmax scores (over the whole window)"
    screen.put("Fig. 6 · \(what) of each GSU's top-\(k) · \(a.users) evaluation users",
               x: 1, y: body.y, style: .bold, maxWidth: s.width - 2)
    let half = (s.width - 3) / 2
    let (co, mm) = a.histograms(scale: scale)
    let panels: [(String, Aggregates.Histogram, Style, Int)] = [("Co-GSU", co, .co, 1), ("MM-GSU", mm, .mm, half + 2)]
    let available = body.height - 4
    for (title, hist, style, x) in panels {
        // Merge neighbouring bins until they fit.
        var counts = hist.counts
        while counts.count > available && counts.count > 1 {
            counts = stride(from: 0, to: counts.count, by: 2).map { counts[$0] + ($0 + 1 < counts.count ? counts[$0 + 1] : 0) }
        }
        let total = counts.reduce(0, +)
        let binWidth = (hist.upper - hist.lower) / Float(max(1, counts.count))
        // Softmax scores with four decimals; other scales with as many as tell the bins apart (up to four).
        let decimals = hist.upper < 1 ? 4 : min(4, max(1, Int((-log10(Double(max(binWidth, 1e-9)))).rounded(.up)) + 1))
        let format = "%.\(decimals)f"
        let range = hist.lower == 0 ? "max \(String(format: format, hist.upper))"
            : "\(String(format: format, hist.lower))–\(String(format: format, hist.upper))"
        screen.put("\(title): \(total) scores, \(range)", x: x, y: body.y + 2, style: style, maxWidth: half)
        let labelWidth = 15
        let countWidth = 7
        let barWidth = max(4, half - labelWidth - countWidth - 3)
        let top = max(1, counts.max() ?? 1)
        for (i, c) in counts.enumerated() {
            let lo = hist.lower + Float(i) * binWidth
            let label = String(format: format, lo) + "–" + String(format: format, lo + binWidth)
            let eighths = Int((Double(c) / Double(top) * Double(barWidth * 8)).rounded())
            let partial: [Character] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"].map { $0.first ?? " " }
            var bar = String(repeating: "█", count: eighths / 8)
            if eighths % 8 > 0 { bar.append(partial[eighths % 8]) }
            if c > 0 && bar.isEmpty { bar = "▏" }
            let y = body.y + 3 + i
            screen.put(Text.fit(label, labelWidth) + "│", x: x, y: y, style: .dim, maxWidth: half)
            screen.put(bar, x: x + labelWidth + 1, y: y, style: style, maxWidth: barWidth)
            screen.put(Text.right("\(c)", countWidth), x: x + labelWidth + 1 + barWidth, y: y, maxWidth: countWidth)
        }
        let axisY = body.y + 3 + counts.count
        if axisY < body.bottom {
            screen.put(Text.fit("score", labelWidth) + "└" + String(repeating: "─", count: barWidth) + " count", x: x, y: axisY, style: .dim, maxWidth: half)
        }
    }
}

// MARK: - Case study

private func caseView(_ screen: inout Screen, _ body: Body, _ s: ExplorerState) {
    if placeholder(&screen, body, s) { return }
    guard let t = s.trace, let c = s.selectedCandidate, var cmp = s.comparison else { return }
    let query: String
    if let chosen = s.caseQuery {
        cmp = chosen.comparison
        query = "Query item (chosen): \(s.catalog.itemTitles[Int(chosen.item)]) [item \(s.catalog.itemIDs[Int(chosen.item)])] · i to change, i Enter for the node"
    } else if let item = s.catalog.item(ofLeaf: c.node) {
        query = "Query item: \(s.catalog.itemTitles[Int(item)]) [item \(s.catalog.itemIDs[Int(item)])]"
    } else {
        query = "Query node \(c.node) at level \(s.level): \(s.catalog.nodeLabels[c.node]), \(s.catalog.nodeLeaves[c.node]) items (step to the leaf level, →, for an item)"
    }
    screen.put("Fig. 7 · case study for user \(t.user.id)", x: 1, y: body.y, style: .bold, maxWidth: s.width - 2)
    screen.put(query, x: 1, y: body.y + 1, style: .hit, maxWidth: s.width - 2)
    let half = (s.width - 3) / 2
    let lines = max(1, min(3, (body.height - 8) / 5))
    for (p, (title, entries, style)) in [("Co-GSU top-5 items (ID embeddings)", cmp.co, Style.co), ("MM-GSU top-5 items (multi-modal)", cmp.mm, Style.mm)].enumerated() {
        let x = p == 0 ? 1 : half + 2
        screen.put(title, x: x, y: body.y + 3, style: style, maxWidth: half)
        var y = body.y + 4
        for (e, times) in distinctItems(entries).prefix(5) {
            let repeats = times > 1 ? " · ×\(times)" : ""
            screen.put("\(e.rank). " + (e.inBoth ? "◆ " : "") + "score \(Text.score(e.score)) · position \(e.position)/\(t.historyLength)" + repeats,
                       x: x, y: y, style: e.inBoth ? .both : .dim, maxWidth: half)
            y += 1
            for l in wrap(s.catalog.itemTitles[Int(e.item)], width: half - 3).prefix(lines) {
                screen.put(l, x: x + 3, y: y, maxWidth: half - 3)
                y += 1
            }
        }
    }
    let recent = t.mmItems.suffix(3).reversed().map { s.catalog.itemTitles[Int($0)] }
    if body.bottom - 2 > body.y + 4 + 5 * (lines + 1) {
        screen.put("Most recent behaviours: " + recent.joined(separator: " · "), x: 1, y: body.bottom - 1, style: .dim, maxWidth: s.width - 2)
    }
}

/// A GSU's top-K by distinct item (a lifelong sequence repeats items): each item's best entry and how often it occurs.
func distinctItems(_ entries: [GSUEntry]) -> [(GSUEntry, Int)] {
    var order: [Int32] = [], best: [Int32: GSUEntry] = [:], count: [Int32: Int] = [:]
    for e in entries {
        if best[e.item] == nil { best[e.item] = e; order.append(e.item) }
        count[e.item, default: 0] += 1
    }
    return order.map { (best[$0]!, count[$0]!) }
}

/// Greedy word wrap to `width` columns.
func wrap(_ text: String, width: Int) -> [String] {
    var lines: [String] = [], line = ""
    for word in text.split(separator: " ") {
        let w = String(word)
        if line.isEmpty { line = w } else if Screen.columns(line) + 1 + Screen.columns(w) <= width { line += " " + w } else {
            lines.append(line); line = w
        }
    }
    if !line.isEmpty { lines.append(line) }
    return lines.isEmpty ? [""] : lines
}
