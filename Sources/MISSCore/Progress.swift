import Foundation

/// A progress line for long work: done/total, items/s, ETA and an optional status (e.g. the loss).
/// On a terminal it redraws one line; otherwise (CI, pipes) it prints a line every few seconds.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let interactive: Bool
    private let interval: TimeInterval
    private let lock = NSLock()
    private var finished = false

    public init(_ label: String, total: Int, unit: String = "items") {
        self.label = label
        self.total = max(total, 0)
        self.unit = unit
        self.interactive = isatty(STDERR_FILENO) == 1
        self.interval = interactive ? 0.1 : 5
    }

    /// Reports progress; cheap to call often (draws at most every 0.1 s on a terminal).
    public func update(_ done: Int, status: String = "") {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard !finished, now.timeIntervalSince(lastDraw) >= interval else { return }
        lastDraw = now
        draw(done, status: status, final: false)
    }

    /// Final line with the elapsed time.
    public func finish(status: String = "") {
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        draw(total, status: status, final: true)
    }

    private func draw(_ done: Int, status: String, final: Bool) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        var line = "\(label) \(bar) \(done)/\(total) \(unit) \(Self.rate(rate))/s"
        line += final ? " in \(Self.duration(elapsed))" : " ETA \(Self.duration(eta))"
        if !status.isEmpty { line += " \(status)" }
        let text = interactive ? "\r\u{1B}[2K" + line + (final ? "\n" : "") : line + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func rate(_ r: Double) -> String {
        r >= 1e6 ? String(format: "%.1fM", r / 1e6) : r >= 1e4 ? String(format: "%.1fk", r / 1e3) : String(format: "%.1f", r)
    }

    public static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        if s < 60 { return String(format: "%.1fs", s) }
        if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
        return String(format: "%dh%02dm", Int(s) / 3600, (Int(s) % 3600) / 60)
    }
}
