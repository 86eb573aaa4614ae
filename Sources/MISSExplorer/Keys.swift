/// A key press, as the backend decodes it.
public enum Key: Hashable, Sendable {
    case char(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case tab, backTab, enter, escape, backspace
    case ctrlL
    case resize

    /// How the help and the bottom line spell it.
    public var name: String {
        switch self {
        case .char(" "): return "Space"
        case .char(let c): return String(c)
        case .up: return "↑"
        case .down: return "↓"
        case .left: return "←"
        case .right: return "→"
        case .pageUp: return "PgUp"
        case .pageDown: return "PgDn"
        case .home: return "Home"
        case .end: return "End"
        case .tab: return "Tab"
        case .backTab: return "S-Tab"
        case .enter: return "Enter"
        case .escape: return "Esc"
        case .backspace: return "Bksp"
        case .ctrlL: return "^L"
        case .resize: return "resize"
        }
    }
}

/// The explorer's views, numbered as on the tab bar.
public enum View: String, Codable, CaseIterable, Sendable {
    case users, beam, gsu, heatmap, histogram, caseStudy = "case", targets

    public var title: String {
        switch self {
        case .users: return "Users"
        case .beam: return "Beam"
        case .gsu: return "GSUs"
        case .heatmap: return "Heatmap"
        case .histogram: return "Histogram"
        case .caseStudy: return "Case"
        case .targets: return "Targets"
        }
    }

    public var number: Int { View.allCases.firstIndex(of: self)! + 1 }
}

public enum Action: Hashable, Sendable {
    case quit, help, redraw, nextPane, previousPane
    case up, down, pageUp, pageDown, top, bottom
    case levelBack, levelForward
    case open, back
    case show(View)
    case search, chooseItem
    case nextUser, previousUser
    case export
    case heatmapAxis, histogramScale, userOrder
}

/// One row of the key table: it drives dispatch, the help screen and the bottom line.
public struct KeyBinding: Sendable {
    public var keys: [Key]
    public var action: Action
    /// Short label for the bottom line; nil keeps it out of the bottom line (still in the help).
    public var hint: String?
    public var help: String
    /// Views where it works (nil = everywhere).
    public var views: Set<View>?

    public var keyNames: String { keys.map(\.name).joined(separator: "/") }

    public func applies(in view: View) -> Bool { views.map { $0.contains(view) } ?? true }
}

public enum KeyTable {
    public static let bindings: [KeyBinding] = [
        KeyBinding(keys: [.char("q")], action: .quit, hint: "quit", help: "Quit", views: nil),
        KeyBinding(keys: [.char("?")], action: .help, hint: "help", help: "Show or hide this help", views: nil),
        KeyBinding(keys: [.char("1")], action: .show(.users), hint: nil, help: "Users view", views: nil),
        KeyBinding(keys: [.char("2")], action: .show(.beam), hint: nil, help: "Beam search, level by level", views: nil),
        KeyBinding(keys: [.char("3")], action: .show(.gsu), hint: nil, help: "Co-GSU vs MM-GSU for the node", views: nil),
        KeyBinding(keys: [.char("4")], action: .show(.heatmap), hint: nil, help: "Fig. 5 heatmap by position", views: nil),
        KeyBinding(keys: [.char("5")], action: .show(.histogram), hint: nil, help: "Fig. 6 score histograms", views: nil),
        KeyBinding(keys: [.char("6")], action: .show(.caseStudy), hint: nil, help: "Fig. 7 case study (top-5)", views: nil),
        KeyBinding(keys: [.char("7")], action: .show(.targets), hint: nil, help: "Where targets left the beam", views: nil),
        KeyBinding(keys: [.tab], action: .nextPane, hint: "pane", help: "Next pane", views: [.beam, .gsu]),
        KeyBinding(keys: [.backTab], action: .previousPane, hint: nil, help: "Previous pane", views: [.beam, .gsu]),
        KeyBinding(keys: [.up, .char("k")], action: .up, hint: "move", help: "Move up", views: [.users, .beam, .gsu, .targets]),
        KeyBinding(keys: [.down, .char("j")], action: .down, hint: nil, help: "Move down", views: [.users, .beam, .gsu, .targets]),
        KeyBinding(keys: [.pageUp], action: .pageUp, hint: nil, help: "Page up", views: [.users, .beam, .gsu, .targets]),
        KeyBinding(keys: [.pageDown], action: .pageDown, hint: nil, help: "Page down", views: [.users, .beam, .gsu, .targets]),
        KeyBinding(keys: [.home, .char("g")], action: .top, hint: nil, help: "First row", views: [.users, .beam, .gsu, .targets]),
        KeyBinding(keys: [.end, .char("G")], action: .bottom, hint: nil, help: "Last row", views: [.users, .beam, .gsu, .targets]),
        KeyBinding(keys: [.left, .char("h")], action: .levelBack, hint: "level", help: "Level up (towards the root)", views: [.beam, .gsu, .caseStudy]),
        KeyBinding(keys: [.right, .char("l")], action: .levelForward, hint: nil, help: "Level down (follows the node)", views: [.beam, .gsu, .caseStudy]),
        KeyBinding(keys: [.enter], action: .open, hint: "open", help: "Open user / node's GSUs / target's level", views: [.users, .beam, .targets]),
        KeyBinding(keys: [.escape, .backspace], action: .back, hint: nil, help: "Back to the previous view",
                   views: [.beam, .gsu, .heatmap, .histogram, .caseStudy, .targets]),
        KeyBinding(keys: [.char("/")], action: .search, hint: "search", help: "Find a user by id", views: [.users]),
        KeyBinding(keys: [.char("o")], action: .userOrder, hint: "order", help: "Order users by id or recall", views: [.users]),
        KeyBinding(keys: [.char("i")], action: .chooseItem, hint: "item", help: "Case study: choose an item", views: [.caseStudy]),
        KeyBinding(keys: [.char("]"), .char("n")], action: .nextUser, hint: "user", help: "Next user (Users order)", views: [.beam, .gsu, .caseStudy, .targets]),
        KeyBinding(keys: [.char("["), .char("p")], action: .previousUser, hint: nil, help: "Previous user (Users order)", views: [.beam, .gsu, .caseStudy, .targets]),
        KeyBinding(keys: [.char("a")], action: .heatmapAxis, hint: "axis", help: "Fig. 5 axis: shared/per user", views: [.heatmap]),
        KeyBinding(keys: [.char("s")], action: .histogramScale, hint: "scale", help: "Fig. 6: softmax / × window", views: [.histogram]),
        KeyBinding(keys: [.char("e")], action: .export, hint: "export", help: "Export snapshot: JSON, MD, SVG", views: [.beam, .gsu, .heatmap, .histogram, .caseStudy, .targets]),
        KeyBinding(keys: [.ctrlL], action: .redraw, hint: nil, help: "Redraw the screen", views: nil),
    ]

    public static func action(for key: Key, in view: View) -> Action? {
        bindings.first { $0.keys.contains(key) && $0.applies(in: view) }?.action
    }

    /// The bottom line's hints for a view: "1-7 views" then every hinted binding that works there.
    public static func hints(for view: View) -> [(keys: String, label: String)] {
        var out: [(String, String)] = [("1-\(View.allCases.count)", "views")]
        for b in bindings where b.applies(in: view) {
            guard let hint = b.hint else { continue }
            // Pair movement keys with their opposite for a compact hint.
            switch b.action {
            case .up: out.append(("↑↓/jk", hint))
            case .levelBack: out.append(("←→/hl", hint))
            case .nextUser: out.append(("[]", hint))
            default: out.append((b.keyNames, hint))
            }
        }
        return out
    }
}
