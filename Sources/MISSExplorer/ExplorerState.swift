/// Work the driver does for the state (off the UI thread), reporting back with events.
public enum Command: Equatable, Sendable {
    case loadUser(Int)
    case caseQuery(row: Int, item: Int32)
    case computeAggregates
    /// Every evaluation user's Recall@K (the Users view's column), at the state's beam size and K.
    case computeRecalls
    case export
}

public enum LoadState<T: Sendable>: Sendable {
    case idle
    case running(done: Int, total: Int)
    case ready(T)
    case failed(String)

    public var value: T? { if case .ready(let v) = self { return v } else { return nil } }
}

public enum ColorMode: String, Codable, Sendable, CaseIterable {
    case c256 = "256", c16 = "16", mono
}

public enum Event: Sendable {
    case key(Key)
    case resized(width: Int, height: Int)
    case tick
    case userLoaded(UserTrace)
    case caseReady(row: Int, CaseQuery)
    case aggregatesProgress(done: Int, total: Int)
    case aggregatesReady(Aggregates)
    case recallsProgress(done: Int, total: Int)
    case recallsReady([Int: Double])
    case exported(String)
    case failed(String)
}

/// The Users view's order: by id, or by the user's Recall@K (evaluation users first, worst or best first).
public enum UserOrder: String, Codable, Sendable, CaseIterable {
    case id, worstRecall = "worst recall", bestRecall = "best recall"

    var next: UserOrder { UserOrder.allCases[(UserOrder.allCases.firstIndex(of: self)! + 1) % UserOrder.allCases.count] }
}

/// Everything on screen, as a value. `reduce` is the only way it changes; `render` only reads it.
public struct ExplorerState: Sendable {
    public let catalog: Catalog
    public let users: [UserRow]
    public var colorMode: ColorMode
    public var width = 80, height = 24
    public var view: View = .beam
    public var previousView: View = .users
    public var showHelp = false
    public var pane = 0
    public var userCursor = 0
    /// The search line's text while searching (`/`), nil otherwise.
    public var search: String?
    /// The item prompt's text while choosing a case-study item (`i`), nil otherwise.
    public var itemInput: String?
    /// The case study's chosen query item (nil: the selected node is the query).
    public var caseQuery: CaseQuery?
    public var trace: UserTrace?
    public var loadingUser: Int?
    public var level = 1
    public var candidateCursor = 0
    public var gsuCursor = 0
    /// The Targets view's row (into the trace's `fates`).
    public var targetCursor = 0
    public var aggregates: LoadState<Aggregates> = .idle
    /// Recall@K per evaluation user (by row), computed in the background.
    public var recalls: LoadState<[Int: Double]> = .idle
    public var userOrder: UserOrder = .id
    /// Fig. 5's position axis (`a` in the heatmap view).
    public var heatmapAxis: HeatmapAxis = .shared
    /// Fig. 6's scores (`s` in the histogram view).
    public var histogramScale: HistogramScale = .softmax
    public var message: String?
    public var quit = false
    public var redrawRequested = false
    public var ticks = 0
    public var beamSize: Int
    public var finalK: Int
    /// Level and node to select when the next trace arrives (a reopened snapshot, `miss export`).
    public var restore: (level: Int, node: Int?)?
    /// Effects for the driver, drained after every reduce.
    public var pending: [Command] = []

    public init(catalog: Catalog, users: [UserRow], colorMode: ColorMode, beamSize: Int = 100, finalK: Int = 50) {
        self.catalog = catalog
        self.users = users
        self.colorMode = colorMode
        self.beamSize = beamSize
        self.finalK = finalK
    }

    /// Starts on `row` (loading its trace) in `view`, and asks for the aggregates in the background.
    public static func initial(catalog: Catalog, users: [UserRow], colorMode: ColorMode, row: Int?, view: View = .beam,
                               beamSize: Int = 100, finalK: Int = 50) -> ExplorerState {
        var s = ExplorerState(catalog: catalog, users: users, colorMode: colorMode, beamSize: beamSize, finalK: finalK)
        s.pending = [.computeAggregates, .computeRecalls]
        if let row {
            s.userCursor = row
            s.loadingUser = row
            s.pending.append(.loadUser(row))
            s.view = view
        } else {
            s.view = .users
        }
        return s
    }

    public var levelCount: Int { trace?.levels.count ?? 0 }

    public var currentLevel: LevelView? {
        guard let t = trace, level >= 1, level <= t.levels.count else { return nil }
        return t.levels[level - 1]
    }

    public var selectedCandidate: CandidateRow? {
        guard let l = currentLevel, candidateCursor < l.candidates.count else { return nil }
        return l.candidates[candidateCursor]
    }

    public var comparison: GSUComparison? {
        guard let t = trace, let c = selectedCandidate else { return nil }
        return t.comparison(level: level, candidate: c)
    }

    /// The Users view's rows in `userOrder`: by recall, the evaluation users whose recall is known (ties by row),
    /// then everyone else by row.
    public var userDisplayOrder: [Int] {
        guard userOrder != .id, let r = recalls.value else { return Array(users.indices) }
        let known = r.keys.sorted { a, b in
            r[a]! != r[b]! ? (userOrder == .worstRecall ? r[a]! < r[b]! : r[a]! > r[b]!) : a < b
        }
        return known + users.indices.filter { r[$0] == nil }
    }

    /// Rows the body has for lists (the views' common layout: title, tabs, a header, the status line).
    public var bodyRows: Int { max(1, height - 6) }
}

public func reduce(_ state: ExplorerState, _ event: Event) -> ExplorerState {
    var s = state
    s.redrawRequested = false
    switch event {
    case .resized(let w, let h):
        s.width = w; s.height = h
    case .tick:
        s.ticks &+= 1
    case .userLoaded(let t):
        guard t.user.index == s.loadingUser.map({ s.users[$0].index }) || s.loadingUser == nil else { return s }
        let previousNode = s.selectedCandidate?.node
        s.trace = t
        s.loadingUser = nil
        s.caseQuery = nil
        var node = previousNode
        if let r = s.restore {
            s.level = r.level
            node = r.node
            s.restore = nil
        }
        s.level = min(max(1, s.level), max(1, t.levels.count))
        s.candidateCursor = node.flatMap { n in s.currentLevel?.candidates.firstIndex { $0.node == n } } ?? 0
        s.gsuCursor = 0
        s.targetCursor = 0
    case .caseReady(let row, let q):
        if s.trace?.user.index == s.users[row].index { s.caseQuery = q }
    case .aggregatesProgress(let done, let total):
        s.aggregates = .running(done: done, total: total)
    case .aggregatesReady(let a):
        s.aggregates = .ready(a)
    case .recallsProgress(let done, let total):
        s.recalls = .running(done: done, total: total)
    case .recallsReady(let r):
        s.recalls = .ready(r)
    case .exported(let path):
        s.message = "exported \(path)"
    case .failed(let why):
        s.message = why
        if s.loadingUser != nil { s.loadingUser = nil }
    case .key(let key):
        s.message = nil
        handleKey(&s, key)
    }
    return s
}

private func handleKey(_ s: inout ExplorerState, _ key: Key) {
    if key == .resize { return }
    if let text = s.search {
        switch key {
        case .escape: s.search = nil
        case .enter:
            s.search = nil
            if let row = findUser(s, text) {
                s.userCursor = row
            } else {
                s.message = "no user id contains '\(text)'"
            }
        case .backspace: s.search = String(text.dropLast())
        case .char(let c): s.search = text + String(c)
        default: break
        }
        if let t = s.search, let row = findUser(s, t) { s.userCursor = row }
        return
    }
    if let text = s.itemInput {
        switch key {
        case .escape: s.itemInput = nil
        case .enter:
            s.itemInput = nil
            if text.isEmpty {
                s.caseQuery = nil
            } else if let item = findItem(s.catalog, text), s.trace != nil {
                s.pending.append(.caseQuery(row: s.userCursor, item: Int32(item)))
            } else {
                s.message = "no item id or title matches '\(text)'"
            }
        case .backspace: s.itemInput = String(text.dropLast())
        case .char(let c): s.itemInput = text + String(c)
        default: break
        }
        return
    }
    if s.showHelp {
        switch key {
        case .char("?"), .escape: s.showHelp = false
        case .char("q"): s.quit = true
        default: break
        }
        return
    }
    guard let action = KeyTable.action(for: key, in: s.view) else {
        s.message = "\(key.name) does nothing in \(s.view.title) (? for help)"
        return
    }
    perform(&s, action)
}

/// An item by exact id, else the first whose title contains the text (case-insensitive).
func findItem(_ c: Catalog, _ text: String) -> Int? {
    c.itemIDs.firstIndex(of: text) ?? c.itemTitles.firstIndex { $0.localizedCaseInsensitiveContains(text) }
}

func findUser(_ s: ExplorerState, _ text: String) -> Int? {
    guard !text.isEmpty else { return nil }
    return s.users.firstIndex { $0.id == text } ?? s.users.firstIndex { $0.id.localizedCaseInsensitiveContains(text) }
}

private func perform(_ s: inout ExplorerState, _ action: Action) {
    switch action {
    case .quit: s.quit = true
    case .help: s.showHelp = true
    case .redraw: s.redrawRequested = true
    case .nextPane: s.pane = (s.pane + 1) % 2
    case .previousPane: s.pane = (s.pane + 1) % 2
    case .up: move(&s, by: -1)
    case .down: move(&s, by: 1)
    case .pageUp: move(&s, by: -s.bodyRows)
    case .pageDown: move(&s, by: s.bodyRows)
    case .top: move(&s, by: -Int.max / 2)
    case .bottom: move(&s, by: Int.max / 2)
    case .levelBack: stepLevel(&s, by: -1)
    case .levelForward: stepLevel(&s, by: 1)
    case .open:
        if s.view == .users {
            load(&s, row: s.userCursor)
            show(&s, .beam)
        } else if s.view == .beam {
            if s.selectedCandidate != nil { show(&s, .gsu) } else { s.message = "no node selected" }
        } else if s.view == .targets {
            // The level where the target left the beam (or its leaf, when retrieved), its ancestor selected.
            guard let t = s.trace, s.targetCursor < t.fates.count else { s.message = "no target selected"; return }
            let f = t.fates[s.targetCursor]
            s.level = f.level
            s.candidateCursor = t.levels[f.level - 1].candidates.firstIndex { $0.node == f.node } ?? 0
            s.gsuCursor = 0
            show(&s, .beam)
        }
    case .back:
        switch s.view {
        case .gsu, .caseStudy, .targets: show(&s, .beam)
        case .beam: show(&s, .users)
        default: show(&s, s.previousView == s.view ? .beam : s.previousView)
        }
    case .show(let v): show(&s, v)
    case .search: s.search = ""
    case .chooseItem:
        if s.trace == nil { s.message = "open a user first" } else { s.itemInput = "" }
    case .nextUser, .previousUser:
        // In the Users view's order (by id, or by recall after `o` there): the next-worst user, say.
        let order = s.userDisplayOrder, next = action == .nextUser
        let at = order.firstIndex(of: s.userCursor) ?? 0
        guard next ? at + 1 < order.count : at > 0 else { s.message = next ? "this is the last user" : "this is the first user"; return }
        s.userCursor = order[next ? at + 1 : at - 1]
        load(&s, row: s.userCursor)
    case .heatmapAxis:
        s.heatmapAxis = s.heatmapAxis == .shared ? .ownWindow : .shared
    case .histogramScale:
        s.histogramScale = s.histogramScale == .softmax ? .timesWindow : .softmax
    case .userOrder:
        switch s.recalls {
        case .ready:
            // A new order starts at its top (the worst or best user), or at the first user by id.
            s.userOrder = s.userOrder.next
            s.userCursor = s.userDisplayOrder.first ?? 0
        case .running(let done, let total): s.message = "recall is still being computed (\(done)/\(total) users): order by id until then"
        case .idle, .failed: s.message = "no recall computed: order by id"
        }
    case .export:
        if s.trace == nil { s.message = "nothing to export yet: open a user first" }
        else if s.loadingUser != nil { s.message = "wait until the user's beam search is loaded, then export" }
        else { s.pending.append(.export) }
    }
}

private func show(_ s: inout ExplorerState, _ v: View) {
    if v != s.view { s.previousView = s.view }
    s.view = v
    s.pane = 0
    if (v == .gsu || v == .caseStudy || v == .targets) && s.trace == nil && s.loadingUser == nil {
        s.message = "open a user first (1 Users, Enter)"
    }
    if case .failed = s.aggregates, v == .heatmap || v == .histogram {
        s.aggregates = .idle
        s.pending.append(.computeAggregates)
    }
}

private func load(_ s: inout ExplorerState, row: Int) {
    guard row >= 0 && row < s.users.count else { return }
    if s.trace?.user.index == s.users[row].index { return }
    s.loadingUser = row
    s.pending.append(.loadUser(row))
}

private func move(_ s: inout ExplorerState, by delta: Int) {
    func clamp(_ v: Int, _ n: Int) -> Int { n == 0 ? 0 : min(max(0, v), n - 1) }
    switch s.view {
    case .users:
        // Along the view's order: the cursor is a row, its place in the order moves.
        let order = s.userDisplayOrder
        let at = order.firstIndex(of: s.userCursor) ?? 0
        if !order.isEmpty { s.userCursor = order[clamp(at &+ delta, order.count)] }
    case .beam:
        if s.pane == 0 {
            s.candidateCursor = clamp(s.candidateCursor &+ delta, s.currentLevel?.candidates.count ?? 0)
        } else {
            let n = s.trace.map { t in s.selectedCandidate.map { t.path(from: s.level, node: $0.node, catalog: s.catalog).count } ?? 0 } ?? 0
            // The path pane follows the selected node: moving in it steps along the path.
            if n > 0 { stepLevel(&s, by: delta > 0 ? 1 : -1) }
        }
    case .gsu:
        let n = s.comparison.map { max($0.co.count, $0.mm.count) } ?? 0
        s.gsuCursor = clamp(s.gsuCursor &+ delta, n)
    case .targets:
        s.targetCursor = clamp(s.targetCursor &+ delta, s.trace?.fates.count ?? 0)
    default: break
    }
}

/// Steps one level down (following the selected node to its best-scored child) or up (to its ancestor).
private func stepLevel(_ s: inout ExplorerState, by delta: Int) {
    guard let t = s.trace else { s.message = "no beam search yet: open a user"; return }
    let target = s.level + delta
    guard target >= 1 && target <= t.levels.count else {
        s.message = delta > 0 ? "already at the leaf level (\(t.levels.count))" : "already at level 1 (the root's children)"
        return
    }
    let node = s.selectedCandidate?.node
    s.level = target
    s.gsuCursor = 0
    let rows = t.levels[target - 1].candidates
    guard let node else { s.candidateCursor = 0; return }
    if delta > 0 {
        s.candidateCursor = rows.firstIndex { Int(s.catalog.parent[$0.node]) == node } ?? 0
    } else {
        let up = s.catalog.ancestor(of: node, atLevel: target)
        s.candidateCursor = rows.firstIndex { $0.node == up } ?? 0
    }
}
