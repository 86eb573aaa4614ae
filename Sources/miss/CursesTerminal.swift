import CNCurses
import Foundation
import MISSExplorer

/// The thin curses backend: draws a `Screen`, decodes keys, and always restores the terminal.
final class CursesTerminal {
    let colorMode: ColorMode
    private var pairs: [Style: Int32] = [:]
    private var nextPair: Int16 = 1
    private var closed = false

    /// Terminal restored by SIGINT/SIGTERM too (the handler cannot capture, so it only calls endwin).
    static func installSignalHandlers() {
        // A parent may have started us with these blocked (the mask is inherited across exec; test runners and
        // thread pools block signals): unblock them, or resizing and SIGTERM would go unnoticed.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGWINCH, SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in endwin(); _exit(130) }
        signal(SIGTERM) { _ in endwin(); _exit(143) }
        signal(SIGHUP) { _ in endwin(); _exit(129) }
    }

    init(noColor: Bool) {
        setlocale(LC_ALL, "")
        if String(cString: nl_langinfo(nl_item(CODESET))) != "UTF-8" { setlocale(LC_CTYPE, "C.UTF-8") }
        Self.installSignalHandlers()
        initscr()
        cbreak()
        noecho()
        nonl()
        keypad(miss_stdscr(), true)
        set_escdelay(25)
        curs_set(0)
        timeout(80)
        if noColor || !has_colors() {
            colorMode = .mono
        } else {
            start_color()
            use_default_colors()
            colorMode = miss_colors() >= 256 ? .c256 : .c16
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        endwin()
    }

    deinit { close() }

    var size: (width: Int, height: Int) { (Int(miss_cols()), Int(miss_lines())) }

    func clearAll() { clear() }

    func draw(_ screen: Screen) {
        erase()
        for y in 0..<screen.height {
            var x = 0
            while x < screen.width {
                let style = screen[x, y].style
                var run = ""
                let start = x
                while x < screen.width && screen[x, y].style == style {
                    let c = screen[x, y].char
                    if c != Cell.continuation { run.append(c) }
                    x += 1
                }
                attrset(attributes(style))
                // The bottom-right cell makes addstr report an error after drawing it: harmless.
                _ = mvaddstr(Int32(y), Int32(start), run)
            }
        }
        attrset(0)
        refresh()
    }

    func readKey() -> Key? {
        var ch: wint_t = 0
        let r = wget_wch(miss_stdscr(), &ch)
        if r == ERR { return nil }
        if r == miss_key_code_yes() {
            switch Int32(ch) {
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_PPAGE: return .pageUp
            case KEY_NPAGE: return .pageDown
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_BTAB: return .backTab
            case KEY_ENTER: return .enter
            case KEY_BACKSPACE: return .backspace
            case KEY_RESIZE: return .resize
            default: return nil
            }
        }
        switch ch {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        case 12: return .ctrlL
        default:
            guard ch >= 32, let scalar = Unicode.Scalar(UInt32(ch)) else { return nil }
            return .char(Character(scalar))
        }
    }

    private func attributes(_ style: Style) -> Int32 {
        let bold = miss_attr_bold(), rev = miss_attr_reverse(), dim = miss_attr_dim(), under = miss_attr_underline()
        if colorMode == .mono {
            switch style {
            case .normal, .co, .mm, .kept, .status: return 0
            case .dim, .pruned: return dim
            case .bold, .hit, .warning, .key, .both: return bold
            case .title, .selected: return rev
            case .activeTab: return rev | bold
            case .tab: return 0
            case .header: return bold | under
            case .heat: return 0
            }
        }
        let (fg, bg, attr) = colors(style)
        if let p = pairs[style] { return miss_color_pair(p) | attr }
        guard Int32(nextPair) < miss_color_pairs() else { return attr }
        init_pair(nextPair, fg, bg)
        pairs[style] = Int32(nextPair)
        nextPair += 1
        return miss_color_pair(Int32(nextPair - 1)) | attr
    }

    /// (foreground, background, attributes); -1 = the terminal's default.
    private func colors(_ style: Style) -> (Int16, Int16, Int32) {
        let bold = miss_attr_bold(), rev = miss_attr_reverse()
        let rich = colorMode == .c256
        switch style {
        case .normal: return (-1, -1, 0)
        case .dim: return (rich ? 245 : 7, -1, rich ? 0 : miss_attr_dim())
        case .bold: return (-1, -1, bold)
        case .title: return (rich ? 231 : 7, rich ? 24 : 4, bold)
        case .tab: return (rich ? 250 : 7, rich ? 236 : -1, 0)
        case .activeTab: return (rich ? 16 : 0, rich ? 214 : 3, bold)
        case .header: return (rich ? 110 : 6, -1, bold)
        case .selected: return (-1, -1, rev)
        case .kept: return (rich ? 114 : 2, -1, 0)
        case .pruned: return (rich ? 244 : 7, -1, rich ? 0 : miss_attr_dim())
        case .hit: return (rich ? 220 : 3, -1, bold)
        case .co: return (rich ? 81 : 6, -1, 0)
        case .mm: return (rich ? 213 : 5, -1, 0)
        case .both: return (rich ? 220 : 3, -1, bold)
        case .warning: return (rich ? 203 : 1, -1, bold)
        case .status: return (rich ? 252 : 7, rich ? 236 : -1, 0)
        case .key: return (rich ? 214 : 3, rich ? 236 : -1, bold)
        case .heat(let l): return rich ? (-1, Int16(232) + Int16(min(23, l)), 0) : (7, -1, 0)
        }
    }
}
