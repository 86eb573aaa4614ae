/// What a cell means; the terminal backend maps roles to colours (256, 16 or none) and attributes.
public enum Style: Hashable, Sendable {
    case normal, dim, bold, title, tab, activeTab, header, selected, kept, pruned, hit, co, mm, both, warning, status, key
    /// A heat cell: 0 (cold) … 23 (hot), greyscale in 256 colours.
    case heat(UInt8)
}

public struct Cell: Equatable, Sendable {
    public var char: Character
    public var style: Style
    /// The right half of a double-width character drawn in the cell to its left.
    public static let continuation: Character = "\u{0}"
}

/// A grid of styled cells: what `render` produces and what the backend (or a golden test) shows.
public struct Screen: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: Cell(char: " ", style: .normal), count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    /// Terminal columns a character takes: 2 for East Asian wide and emoji ranges, else 1.
    public static func columns(_ c: Character) -> Int {
        guard let v = c.unicodeScalars.first?.value else { return 1 }
        switch v {
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
             0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
             0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
            return 2
        default:
            return 1
        }
    }

    /// Display width of a string in terminal columns.
    public static func columns(_ s: String) -> Int { s.reduce(0) { $0 + columns($1) } }

    /// Writes `text` at (x, y), clipped to `maxWidth` columns and to the screen; returns the columns used.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, style: Style = .normal, maxWidth: Int? = nil) -> Int {
        guard y >= 0, y < height, x < width else { return 0 }
        let limit = min(width, x + (maxWidth ?? width))
        var col = x
        for ch in text {
            let c: Character = (ch == "\n" || ch == "\t" || ch.isASCII && ch.asciiValue! < 32) ? " " : ch
            let w = Self.columns(c)
            if col + w > limit { break }
            if col >= 0 {
                self[col, y] = Cell(char: c, style: style)
                if w == 2 { self[col + 1, y] = Cell(char: Cell.continuation, style: style) }
            }
            col += w
        }
        return col - x
    }

    /// Fills a run of cells with one style (e.g. a selection bar), keeping their characters.
    public mutating func paint(x: Int, y: Int, width w: Int, style: Style) {
        guard y >= 0, y < height else { return }
        for col in max(0, x)..<min(width, x + w) { self[col, y].style = style }
    }

    /// Rows as plain text (trailing spaces kept): what golden files hold.
    public var lines: [String] {
        (0..<height).map { y in
            String((0..<width).compactMap { x -> Character? in
                let c = self[x, y].char
                return c == Cell.continuation ? nil : c
            })
        }
    }

    public var text: String { lines.joined(separator: "\n") + "\n" }
}

/// Text helpers shared by the views.
public enum Text {
    /// Pads or truncates to exactly `n` columns (with … when cut).
    public static func fit(_ s: String, _ n: Int) -> String {
        guard n > 0 else { return "" }
        let w = Screen.columns(s)
        if w <= n { return s + String(repeating: " ", count: n - w) }
        var out = "", used = 0
        for c in s {
            let cw = Screen.columns(c)
            if used + cw > n - 1 { break }
            out.append(c); used += cw
        }
        return out + "…" + String(repeating: " ", count: max(0, n - 1 - used))
    }

    /// Right-aligns in `n` columns.
    public static func right(_ s: String, _ n: Int) -> String {
        let w = Screen.columns(s)
        return w >= n ? fit(s, n) : String(repeating: " ", count: n - w) + s
    }

    /// `long` when it fits in `n` columns, else `short` (a line's narrow-terminal form).
    public static func either(_ long: String, or short: String, within n: Int) -> String {
        firstFitting([long, short], within: n)
    }

    /// The first of `forms` (longest first) that fits in `n` columns, else the last.
    public static func firstFitting(_ forms: [String], within n: Int) -> String {
        forms.first { Screen.columns($0) <= n } ?? forms.last ?? ""
    }

    public static func percent(_ x: Double) -> String { x.isFinite ? String(format: "%.1f%%", x * 100) : "–" }
    public static func score(_ x: Float) -> String { x.isFinite ? String(format: "%.3f", x) : "nan" }
}
