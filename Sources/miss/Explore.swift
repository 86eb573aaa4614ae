import ArgumentParser
import Foundation
import MISSCore
import MISSData
import MISSExplorer
import MISSModel

/// Where SampleData and its trained bundle live: the repository's SampleData folder, found from the
/// working directory or from the binary's location (.build/<config>/miss).
enum SampleData {
    static func folder() -> URL? {
        var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 { candidates.append(exe); exe = exe.deletingLastPathComponent() }
        for c in candidates {
            let f = c.appendingPathComponent("SampleData")
            if FileManager.default.fileExists(atPath: f.appendingPathComponent("world.missdata").path) { return f }
        }
        return nil
    }

    /// The SampleData bundle, trained on first use (embed → build-tree → train, each with its progress bar).
    static func ensureBundle(in folder: URL) throws -> (bundle: String, data: String) {
        let data = folder.appendingPathComponent("world.missdata").path
        let trained = folder.appendingPathComponent("trained")
        let bundle = trained.appendingPathComponent("world.bundle").path
        if FileManager.default.fileExists(atPath: URL(fileURLWithPath: bundle).appendingPathComponent("manifest.json").path) {
            return (bundle, data)
        }
        try FileManager.default.createDirectory(at: trained, withIntermediateDirectories: true)
        let emb = trained.appendingPathComponent("world.missemb").path
        let tree = trained.appendingPathComponent("world.misstree").path
        let say = { (s: String) in FileHandle.standardError.write(Data((s + "\n").utf8)) }
        say("No trained SampleData bundle yet: training one now (once; about 3 minutes on 2 cores) into \(trained.path)")
        let t0 = Date()
        say("[1/3] multi-modal item embeddings (item alignment)")
        let e = try Embed.parse(["--data", data, "--out", emb])
        try e.run()
        say("[2/3] index tree (balanced 2-means)")
        let b = try BuildTree.parse(["--data", data, "--embeddings", emb, "--out", tree])
        try b.run()
        say("[3/3] level-wise training of the estimator")
        // `miss train`'s own budget and early stopping (`TrainingDefaults`).
        let t = try Train.parse(["--data", data, "--embeddings", emb, "--tree", tree, "--out", bundle, "--sasrec-steps", "2000"])
        try t.run()
        say(String(format: "SampleData bundle ready in %.0f s: %@", Date().timeIntervalSince(t0), bundle))
        return (bundle, data)
    }
}

/// Resolves --bundle/--data (or a snapshot's, or SampleData's) to an opened model.
struct ModelLocation: ParsableArguments {
    @Option(help: "Bundle folder from `miss train` (default: SampleData's, trained on first use).") var bundle: String?
    @Option(help: "Dataset the bundle was trained on (default: SampleData/world.missdata).") var data: String?

    func open(snapshot: Snapshot? = nil) throws -> ExplorerModel {
        var bundlePath = bundle ?? snapshot?.bundle
        var dataPath = data ?? snapshot?.data
        if bundlePath == nil || dataPath == nil {
            guard let folder = SampleData.folder() else {
                throw InputError(file: "SampleData/world.missdata", problem: "not found from \(FileManager.default.currentDirectoryPath) or next to the binary",
                                 fix: "Run from the repository root, or pass --bundle and --data")
            }
            if bundlePath == nil && dataPath == nil {
                (bundlePath, dataPath) = try SampleData.ensureBundle(in: folder)
            } else if dataPath == nil {
                dataPath = folder.appendingPathComponent("world.missdata").path
            } else {
                throw ValidationError("--data \(dataPath!) needs --bundle: the bundle trained on that dataset")
            }
        }
        FileHandle.standardError.write(Data("loading \(bundlePath!) and \(dataPath!)…\n".utf8))
        return try ExplorerModel.open(bundle: bundlePath!, data: dataPath!)
    }
}

struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open the terminal explorer: step through a user's beam search, Co-GSU vs MM-GSU, Figs. 5–7, exports.",
        discussion: "With no arguments it opens SampleData's bundle (training it first if needed). Press ? inside for the keys.")

    @OptionGroup var location: ModelLocation
    @Option(help: "User id to open first (default: the first test user with targets).") var user: String?
    @Option(help: "Reopen a snapshot.json exported by the explorer or `miss export`.") var snapshot: String?
    @Flag(help: "No colours (also when NO_COLOR is set).") var noColor = false
    @Option(help: "Beam size.") var beam = 100
    @Option(help: "Items retrieved at the leaf level.") var k = 50
    @Option(help: "Folder the export key (e) writes snapshots into.") var exportDir = "miss-exports"

    func validate() throws {
        guard beam >= 1, k >= 1 else { throw ValidationError("--beam and --k must be ≥ 1") }
    }

    func run() throws {
        try runReportingInputErrors {
            // Inputs first (snapshot, bundle, data, user), so that their errors are reported even without a terminal.
            let snap = try snapshot.map { try Snapshot.load(from: URL(fileURLWithPath: $0)) }
            let model = try location.open(snapshot: snap)
            let userID = user ?? snap?.user
            let row = try userID.map { try model.row(ofUser: $0) } ?? model.firstEvaluationUser
            guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
                throw InputError(file: "(terminal)", problem: "standard input and output are not a terminal",
                                 fix: "Run `miss explore` in a terminal, or use `miss export` to write the same views to files")
            }
            let noColorEnv = ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } ?? false
            var state = ExplorerState.initial(catalog: model.catalog, users: model.users, colorMode: .mono, row: row,
                                              view: snap.flatMap { View(rawValue: $0.view) } ?? .beam, beamSize: beam, finalK: k)
            if let snap {
                state.restore = (snap.level, snap.node)
                state.heatmapAxis = snap.heatmapAxis ?? .shared
                state.histogramScale = snap.histogramScale ?? .softmax
            }
            let terminal = CursesTerminal(noColor: noColor || noColorEnv)
            defer { terminal.close() }
            state.colorMode = terminal.colorMode
            ExplorerDriver(model: model, exportDir: exportDir).run(state, terminal: terminal)
        }
    }
}

/// Runs commands off the UI thread and feeds their results back as events.
final class ExplorerDriver: @unchecked Sendable {
    let model: ExplorerModel
    let exportDir: String
    private let lock = NSLock()
    private var inbox: [Event] = []
    private let userQueue = DispatchQueue(label: "miss.explore.user")
    private let aggregateQueue = DispatchQueue(label: "miss.explore.aggregates")

    init(model: ExplorerModel, exportDir: String) {
        self.model = model
        self.exportDir = exportDir
    }

    func post(_ e: Event) { lock.lock(); inbox.append(e); lock.unlock() }

    private func drain() -> [Event] {
        lock.lock(); defer { lock.unlock() }
        let out = inbox
        inbox = []
        return out
    }

    func perform(_ c: Command, state: ExplorerState) {
        switch c {
        case .loadUser(let row):
            let (beam, k) = (state.beamSize, state.finalK)
            userQueue.async { [self] in post(.userLoaded(model.trace(row: row, beamSize: beam, finalK: k))) }
        case .caseQuery(let row, let item):
            userQueue.async { [self] in post(.caseReady(row: row, model.caseQuery(row: row, item: item))) }
        case .computeAggregates:
            aggregateQueue.async { [self] in
                let a = model.aggregates { done, total in self.post(.aggregatesProgress(done: done, total: total)) }
                post(.aggregatesReady(a))
            }
        case .computeRecalls:
            let (beam, k) = (state.beamSize, state.finalK)
            aggregateQueue.async { [self] in
                let r = model.recalls(beamSize: beam, finalK: k) { done, total in self.post(.recallsProgress(done: done, total: total)) }
                post(.recallsReady(r))
            }
        case .export:
            do {
                let t = state.trace!
                let name = "\(t.user.id)-level\(state.level)" + (state.selectedCandidate.map { "-node\($0.node)" } ?? "")
                var dir = URL(fileURLWithPath: exportDir).appendingPathComponent(name)
                var n = 2
                while FileManager.default.fileExists(atPath: dir.path) {
                    dir = URL(fileURLWithPath: exportDir).appendingPathComponent("\(name)-\(n)"); n += 1
                }
                try FileManager.default.createDirectory(at: dir.deletingLastPathComponent(), withIntermediateDirectories: true)
                let files = try Exporter.write(state: state, bundle: model.bundlePath, data: model.dataPath, to: dir)
                post(.exported("\(dir.path)/{\(files.joined(separator: ","))}"))
            } catch {
                post(.failed("export failed: \(error)"))
            }
        }
    }

    func run(_ initial: ExplorerState, terminal: CursesTerminal) {
        var state = initial
        var last: Screen?
        var lastTick = Date()
        while true {
            let size = terminal.size
            if size.width != state.width || size.height != state.height {
                state = reduce(state, .resized(width: size.width, height: size.height))
            }
            let commands = state.pending
            state.pending = []
            for c in commands { perform(c, state: state) }
            if state.quit { return }
            if state.redrawRequested { terminal.clearAll(); last = nil }
            let screen = render(state)
            if screen != last { terminal.draw(screen); last = screen }
            if let key = terminal.readKey() {
                state = reduce(state, .key(key))
            }
            for e in drain() { state = reduce(state, e) }
            let busy: Bool = {
                if state.loadingUser != nil { return true }
                if case .running = state.aggregates { return true }
                return false
            }()
            if busy && Date().timeIntervalSince(lastTick) > 0.1 {
                state = reduce(state, .tick)
                lastTick = Date()
            }
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the explorer's case-study snapshot (JSON, Markdown, SVG) for a user and level without a terminal.")

    @OptionGroup var location: ModelLocation
    @Option(help: "User id.") var user: String
    @Option(help: "Tree level (1 = the root's children; default: the leaf level).") var level: Int?
    @Option(help: "Node to select at that level (default: the best-scored candidate).") var node: Int?
    @Option(help: "Output folder (must not exist).") var out: String
    @Option(help: "Beam size.") var beam = 100
    @Option(help: "Items retrieved at the leaf level.") var k = 50
    @Option(help: "Fig. 5's position axis in heatmap.svg: shared (the longest window, most recent at the right) or own-window (each user's own window stretched to the width).")
    var heatmapAxis: HeatmapAxis = .shared
    @Option(help: "Fig. 6's scores in histogram.svg: softmax (the paper's) or times-window (each softmax score times its window's length, 1 = uniform attention).")
    var histogramScale: HistogramScale = .softmax

    func run() throws {
        try runReportingInputErrors {
            let model = try location.open()
            let row = try model.row(ofUser: user)
            let outURL = URL(fileURLWithPath: out)
            if FileManager.default.fileExists(atPath: outURL.path) {
                throw InputError(file: out, problem: "already exists", fix: "Pass a new folder to --out (nothing was overwritten)")
            }
            var state = ExplorerState.initial(catalog: model.catalog, users: model.users, colorMode: .mono, row: row, beamSize: beam, finalK: k)
            state.pending = []
            let trace = model.trace(row: row, beamSize: beam, finalK: k)
            let levels = trace.levels.count
            let lv = level ?? levels
            guard lv >= 1 && lv <= levels else {
                throw InputError(file: out, location: "--level \(lv)", problem: "the tree has levels 1…\(levels)", fix: "Pass a level in 1…\(levels)")
            }
            if let node, !trace.levels[lv - 1].candidates.contains(where: { $0.node == node }) {
                throw InputError(file: model.bundlePath, location: "--node \(node)", problem: "is not a candidate of user \(user)'s beam search at level \(lv)",
                                 fix: "Pick one of the level's candidates (miss explore shows them), or leave --node out")
            }
            state.restore = (lv, node)
            state.heatmapAxis = heatmapAxis
            state.histogramScale = histogramScale
            state = reduce(state, .userLoaded(trace))
            let bar = ProgressBar("aggregates", total: model.aggregateUsers.prefix(500).count, unit: "users")
            let a = model.aggregates { done, _ in bar.update(done) }
            bar.finish()
            state = reduce(state, .aggregatesReady(a))
            let files = try Exporter.write(state: state, bundle: model.bundlePath, data: model.dataPath, to: outURL)
            let targets = trace.fates.isEmpty ? "no held-out targets" : "\(trace.fates.count) targets, \(trace.fates.filter(\.retrieved).count) retrieved"
            print("wrote \(out): \(files.joined(separator: ", ")) (user \(user), level \(lv) of \(levels), node \(state.selectedCandidate?.node ?? -1), "
                  + "\(targets), beam search \(String(format: "%.0f", trace.seconds * 1000)) ms)")
        }
    }
}

extension HeatmapAxis: ExpressibleByArgument {}
extension HistogramScale: ExpressibleByArgument {}
