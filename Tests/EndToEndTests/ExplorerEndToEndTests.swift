import Foundation
import Testing
import MISSTestSupport

/// The explorer as a user meets it: the real binary under tmux (send-keys, capture-pane), plus `miss export`.
@Suite(.serialized) struct ExplorerEndToEndTests {
    /// A tiny trained bundle made by the CLI itself.
    static let world: (dir: URL, data: String, bundle: String) = {
        let dir = try! temporaryDirectory("explorer-world")
        let data = dir.appendingPathComponent("w.missdata").path, emb = dir.appendingPathComponent("w.missemb").path
        let tree = dir.appendingPathComponent("w.misstree").path, bundle = dir.appendingPathComponent("w.bundle").path
        for args in [["synth", "--seed", "5", "--items", "600", "--users", "60", "--max-length", "300", "--out", data],
                     ["embed", "--data", data, "--out", emb, "--steps", "30", "--eval-pairs", "100"],
                     ["build-tree", "--data", data, "--embeddings", emb, "--out", tree],
                     ["train", "--data", data, "--embeddings", emb, "--tree", tree, "--out", bundle, "--steps", "5",
                      "--co-length", "100", "--mm-length", "200", "--top-k", "10", "--id-dim", "8", "--batch", "4"]] {
            let r = try! MissBinary.run(args)
            precondition(r.status == 0, "\(args[0]) failed: \(r.stderr)")
        }
        return (dir, data, bundle)
    }()

    final class Tmux {
        let socket = "miss-e2e-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let session = "explore"

        @discardableResult
        func run(_ args: [String]) throws -> ProcessResult {
            try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["tmux", "-L", socket] + args)
        }

        /// Starts the server and the session with posix_spawn + waitpid and /dev/null for stdio: the tmux server
        /// daemon inherits the client's descriptors, and Foundation's Process then never sees the client end.
        func start(_ command: String, width: Int, height: Int) throws {
            #expect(spawn(["-u", "new-session", "-d", "-s", session, "-x", "\(width)", "-y", "\(height)", command]) == 0,
                    "tmux new-session failed (is tmux installed? `bash scripts/setup.sh`)")
        }

        @discardableResult
        func spawn(_ args: [String]) -> Int32 {
            let argv = (["tmux", "-L", socket] + args).map { strdup($0) } + [nil]
            defer { for a in argv { free(a) } }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
            var pid: pid_t = 0
            guard posix_spawnp(&pid, "tmux", &actions, nil, argv, environ) == 0 else { return -1 }
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            return (status >> 8) & 0xFF
        }

        func keys(_ k: String...) throws { spawn(["send-keys", "-t", session] + k) }

        func screen() throws -> String { try run(["capture-pane", "-p", "-t", session]).stdout }

        /// The pane with its colour escapes (capture-pane -e).
        func styledScreen() throws -> String { try run(["capture-pane", "-p", "-e", "-t", session]).stdout }

        /// Polls the pane until it shows `text` (the explorer works in the background), up to `seconds`.
        func waitFor(_ text: String, seconds: Double = 60) throws -> String {
            let end = Date().addingTimeInterval(seconds)
            var last = ""
            while Date() < end {
                last = try screen()
                if last.contains(text) { return last }
                usleep(100_000)
            }
            Issue.record("the pane never showed '\(text)'; it shows:\n\(last)")
            return last
        }

        deinit { spawn(["kill-server"]) }
    }

    @Test func aUserStepsThroughTheViewsUnderARealTerminal() throws {
        let w = Self.world
        let tmux = Tmux()
        let exit = w.dir.appendingPathComponent("exit-\(tmux.socket)").path
        let exportDir = w.dir.appendingPathComponent("exports-\(tmux.socket)").path
        // swift test runs with NO_COLOR=1 (inherited by tmux): unset it here, the other test sets it on purpose.
        let cmd = "cd \(w.dir.path) && env -u NO_COLOR TERM=xterm-256color \(MissBinary.url.path) explore --bundle \(w.bundle) --data \(w.data) --export-dir \(exportDir); echo $? > \(exit); sleep 30"
        try tmux.start(cmd, width: 100, height: 30)
        var s = try tmux.waitFor("Level 1 of")
        #expect(s.contains("MISS Explorer"))
        let styled = try tmux.styledScreen()
        #expect(styled.contains("38;5;"), "256 colours under TERM=xterm-256color: \(styled.prefix(300).debugDescription)")
        #expect(s.contains("1-7 views"), "the bottom line lists the keys")
        try tmux.keys("l")
        s = try tmux.waitFor("Level 2 of")
        try tmux.keys("Enter")
        s = try tmux.waitFor("Co-GSU (ID)")
        #expect(s.contains("MM-GSU (frozen MM)") && s.contains("Overlap of the two top-K"))
        try tmux.keys("4")
        s = try tmux.waitFor("Fig. 5")
        try tmux.keys("5")
        s = try tmux.waitFor("Fig. 6")
        try tmux.keys("6")
        s = try tmux.waitFor("Fig. 7")
        // Targets: Enter on the first one opens the Beam view at the level where it left the beam (or its leaf).
        try tmux.keys("7")
        s = try tmux.waitFor("Left the beam at:")
        #expect(s.contains("held-out targets") && s.contains("cut-off"))
        try tmux.keys("Enter")
        s = try tmux.waitFor("kept (beam")   // the Beam view's header, in each of its forms
        try tmux.keys("?")
        s = try tmux.waitFor("Keys (this table")
        try tmux.keys("Escape")
        try tmux.keys("1")
        // Each evaluation user's Recall@50, computed in the background; o orders the users by it.
        s = try tmux.waitFor("order: id (o)")
        #expect(s.contains("R@50"))
        try tmux.keys("o")
        s = try tmux.waitFor("order: worst recall (o)")
        try tmux.keys("o", "o")
        s = try tmux.waitFor("order: id (o)")
        try tmux.keys("/", "u", "3", "Enter")
        s = try tmux.waitFor("▸")
        try tmux.keys("Enter")
        s = try tmux.waitFor("user u3 (")
        try tmux.keys("e")
        s = try tmux.waitFor("exported")
        #expect(try FileManager.default.contentsOfDirectory(atPath: exportDir).count == 1)
        // Resizing below the minimum says what is needed; growing back restores the view.
        tmux.spawn(["resize-window", "-t", tmux.session, "-x", "60", "-y", "20"])
        s = try tmux.waitFor("Terminal too small")
        #expect(s.contains("needs at least 80×24"))
        tmux.spawn(["resize-window", "-t", tmux.session, "-x", "100", "-y", "30"])
        s = try tmux.waitFor("1-7 views")
        try tmux.keys("q")
        let end = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: exit) && Date() < end { usleep(100_000) }
        #expect((try? String(contentsOfFile: exit, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    @Test func sigtermRestoresTheTerminalAndExits() throws {
        let w = Self.world
        let tmux = Tmux()
        let exit = w.dir.appendingPathComponent("exit-\(tmux.socket)").path
        try tmux.start("env NO_COLOR=1 TERM=xterm-256color \(MissBinary.url.path) explore --bundle \(w.bundle) --data \(w.data) --beam 99; echo $? > \(exit); sleep 30",
                       width: 90, height: 26)
        _ = try tmux.waitFor("Level 1 of")
        let styled = try tmux.styledScreen()
        #expect(!styled.contains("38;5;") && !styled.contains("48;5;"), "NO_COLOR: no colours, only attributes")
        _ = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["pkill", "-TERM", "-f", "explore --bundle \(w.bundle) --data \(w.data) --beam 99"])
        let end = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: exit) && Date() < end { usleep(100_000) }
        usleep(300_000)
        let text = (try? String(contentsOfFile: exit, encoding: .utf8)) ?? ""
        #expect(text.hasPrefix("143"), "exit status after SIGTERM: \(text)")
    }

    @Test func withoutATerminalOrWithBadInputItSaysWhatToDo() throws {
        let w = Self.world
        let r = try MissBinary.run(["explore", "--bundle", w.bundle, "--data", w.data])
        #expect(r.status == 2 && r.stderr.contains("not a terminal") && r.stderr.contains("miss export"))
        let badBundle = try MissBinary.run(["export", "--bundle", w.dir.appendingPathComponent("nope").path, "--data", w.data, "--user", "u1",
                                            "--out", w.dir.appendingPathComponent("x").path])
        #expect(badBundle.status == 2 && badBundle.stderr.contains("no such bundle folder"))
        let unknown = try MissBinary.run(["export", "--bundle", w.bundle, "--data", w.data, "--user", "nobody", "--out", w.dir.appendingPathComponent("y").path])
        #expect(unknown.status == 2 && unknown.stderr.contains("user 'nobody'"))
        #expect(!FileManager.default.fileExists(atPath: w.dir.appendingPathComponent("y").path))
        let snapshot = w.dir.appendingPathComponent("old.json").path
        try Data(#"{"format":"miss-explorer-snapshot","version":0}"#.utf8).write(to: URL(fileURLWithPath: snapshot))
        let old = try MissBinary.run(["explore", "--snapshot", snapshot])
        #expect(old.status == 2 && old.stderr.contains("old.json, version: snapshot version 0 is not the supported version 1"), "\(old.stderr)")
        let nobody = try MissBinary.run(["explore", "--bundle", w.bundle, "--data", w.data, "--user", "nobody"])
        #expect(nobody.status == 2 && nobody.stderr.contains("user 'nobody': no such user"), "\(nobody.stderr)")
        let noColorEnv = try MissBinary.run(["explore", "--bundle", w.bundle, "--data", w.data], environment: ["NO_COLOR": "1", "PATH": "/usr/bin:/bin"])
        #expect(noColorEnv.status == 2 && noColorEnv.stderr.contains("not a terminal"))
    }

    /// The explorer's export on a bundle trained (briefly) on the real ml-latest-small, read in place.
    @Test func exportWorksOnABundleTrainedOnMovieLens() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let ml = repo.deletingLastPathComponent().appendingPathComponent("shared/datasets/ml-latest-small").path
        let dir = Self.world.dir.appendingPathComponent("ml")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let data = dir.appendingPathComponent("ml.missdata").path, emb = dir.appendingPathComponent("ml.missemb").path
        let tree = dir.appendingPathComponent("ml.misstree").path, bundle = dir.appendingPathComponent("ml.bundle").path
        for args in [["import", "movielens", ml, "--out", data],
                     ["embed", "--data", data, "--out", emb, "--steps", "30", "--eval-pairs", "100", "--text-encoder", "hashed"],
                     ["build-tree", "--data", data, "--embeddings", emb, "--out", tree],
                     ["train", "--data", data, "--embeddings", emb, "--tree", tree, "--out", bundle, "--steps", "5",
                      "--co-length", "200", "--mm-length", "400", "--top-k", "10", "--id-dim", "8", "--batch", "4", "--eval-every", "0"]] {
            let r = try MissBinary.run(args)
            #expect(r.status == 0, "\(args[0]): \(r.stderr)")
        }
        let out = dir.appendingPathComponent("case").path
        let r = try MissBinary.run(["export", "--bundle", bundle, "--data", data, "--user", "1", "--level", "4", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let snap = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/snapshot.json"))) as! [String: Any]
        #expect(snap["dataset"] as? String == "ml-latest-small" && snap["user"] as? String == "1")
        let titles = ((snap["gsu"] as! [String: Any])["mm"] as! [[String: Any]]).compactMap { $0["title"] as? String }
        #expect(titles.count == 10 && titles.allSatisfy { $0.contains("(") }, "MovieLens titles carry the year: \(titles)")
        let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(md.contains("## Co-GSU vs MM-GSU") && md.contains("## Case study (Fig. 7)"))
    }

    @Test func exportWritesTheSnapshotWithoutATerminal() throws {
        let w = Self.world
        let out = w.dir.appendingPathComponent("export-\(UInt32.random(in: 0 ... .max))").path
        let r = try MissBinary.run(["export", "--bundle", w.bundle, "--data", w.data, "--user", "u2", "--level", "3", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("heatmap.svg, histogram.svg, report.md, snapshot.json"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/snapshot.json"))) as! [String: Any]
        #expect(json["format"] as? String == "miss-explorer-snapshot" && json["level"] as? Int == 3 && json["user"] as? String == "u2")
        let again = try MissBinary.run(["export", "--bundle", w.bundle, "--data", w.data, "--user", "u2", "--out", out])
        #expect(again.status == 2 && again.stderr.contains("already exists"))
        let badLevel = try MissBinary.run(["export", "--bundle", w.bundle, "--data", w.data, "--user", "u2", "--level", "99",
                                           "--out", out + "-b"])
        #expect(badLevel.status == 2 && badLevel.stderr.contains("--level 99"))
    }
}
