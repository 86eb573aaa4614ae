import Foundation
import Testing
import MISSTestSupport
import MISSCore

/// Runs the real `miss` binary, built by the same `swift test` invocation.
enum MissBinary {
    static var url: URL {
        // The test bundle lives in the build products folder next to the executable.
        let bundle = Bundle.main.bundleURL
        var dir = bundle
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("miss")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return bundle.deletingLastPathComponent().appendingPathComponent("miss")
    }

    static func run(_ args: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        try runProcess(url, args, environment: environment)
    }
}

@Suite struct CLITests {
    @Test func versionPrintsTheVersion() throws {
        let r = try MissBinary.run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
    }

    @Test func helpListsTheSubcommands() throws {
        let r = try MissBinary.run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("bench"))
        #expect(r.stdout.contains("USAGE: miss"))
    }

    @Test func unknownSubcommandFailsWithAMessage() throws {
        let r = try MissBinary.run(["frobnicate"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("frobnicate"))
    }

    @Test func benchBeamPrintsEveryRequestAndTheMachinesJitter() throws {
        let r = try MissBinary.run(["bench", "beam", "--items", "4096", "--beam", "20", "--final-k", "20", "--co-length", "100",
                                    "--mm-length", "200", "--dim", "16", "--top-k", "10", "--requests", "3", "--series"])
        #expect(r.status == 0, "\(r.stderr)")
        let requests = r.stdout.split(separator: "\n").filter { $0.hasPrefix("request ") && $0.contains("reference SGEMM after it") }
        #expect(requests.count == 3, "\(r.stdout)")
        #expect(r.stdout.contains("the machine's jitter in the same run"))
        #expect(r.stdout.contains("p99/p50"))
    }

    @Test func benchTopKRejectsADistinctFractionOutsideZeroToOne() throws {
        for bad in ["0", "1.5"] {
            let r = try MissBinary.run(["bench", "topk", "--distinct", bad, "--rows", "10"])
            #expect(r.status != 0)
            #expect(r.stderr.contains("--distinct must be in (0, 1]"))
        }
        let ok = try MissBinary.run(["bench", "topk", "--distinct", "0.1", "--rows", "100", "--length", "400"])
        #expect(ok.status == 0 && ok.stdout.contains("top-50 of 400 (10% distinct)"), "\(ok.stdout)\(ok.stderr)")
    }

    /// `bench topk --data`: the rows training computes on a dataset, per GSU; a missing file is named.
    @Test func benchTopKTimesTheRowsTrainingSees() throws {
        let dir = try temporaryDirectory()
        let data = dir.appendingPathComponent("w.missdata").path
        let s = try MissBinary.run(["synth", "--seed", "3", "--items", "400", "--users", "40", "--max-length", "300", "--out", data])
        #expect(s.status == 0, "\(s.stderr)")
        let r = try MissBinary.run(["bench", "topk", "--data", data, "--instances", "3", "--k", "10"])
        #expect(r.status == 0, "\(r.stderr)")
        for gsu in ["Co-GSU", "MM-GSU"] {
            #expect(r.stdout.contains("\(gsu) rows of synthetic-s3 training: top-10 of"), "\(r.stdout)")
        }
        #expect(r.stdout.contains("µs per row"))
        let missing = try MissBinary.run(["bench", "topk", "--data", dir.appendingPathComponent("none.missdata").path])
        #expect(missing.status == 2 && missing.stderr.contains("none.missdata"), "\(missing.stderr)")
    }

    @Test func benchGemmRejectsANonPositiveDuration() throws {
        let r = try MissBinary.run(["bench", "gemm", "--seconds", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--seconds must be a positive number"))
    }
}

@Suite struct DataPipelineCLITests {
    @Test func badInputExitsNonZeroNamesTheLineAndWritesNothing() throws {
        let dir = try temporaryDirectory()
        let base = dir.appendingPathComponent("toy").path
        try Data("user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t10\nu1\ti2\tlater\n".utf8).write(to: URL(fileURLWithPath: base + ".inter"))
        let out = dir.appendingPathComponent("toy.missdata").path
        let r = try MissBinary.run(["import", "recbole", base, "--out", out])
        #expect(r.status == 2)
        #expect(r.stderr.contains("toy.inter, line 3, field 'timestamp': 'later' is not a number"))
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["toy.inter"])

        let missing = try MissBinary.run(["build-tree", "--data", dir.appendingPathComponent("none.missdata").path,
                                          "--embeddings", "x", "--out", dir.appendingPathComponent("t").path])
        #expect(missing.status == 2 && missing.stderr.contains("none.missdata: no such file"))
    }

    /// A MovieLens folder in which every one of 20 users tags movie 1: `miss embed` encodes the tags of
    /// the split's 16 training users only (2 validation and 2 test users), and says so.
    @Test func embedEncodesOnlyTheTrainingUsersTags() throws {
        let dir = try temporaryDirectory()
        let movies = (1...8).map { "\($0),Movie \($0) (199\($0)),Drama" }
        let ratings = (1...20).flatMap { u in (0..<5).map { j in "\(u),\((u + 2 * j) % 8 + 1),4.0,\(1000 + 10 * u + j)" } }
        let tags = (1...20).map { "\($0),1,tag\($0),5000" }
        for (name, lines) in [("movies", ["movieId,title,genres"] + movies), ("ratings", ["userId,movieId,rating,timestamp"] + ratings),
                              ("tags", ["userId,movieId,tag,timestamp"] + tags)] {
            try Data(lines.joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("\(name).csv"))
        }
        let data = dir.appendingPathComponent("ml.missdata").path, emb = dir.appendingPathComponent("ml.missemb").path
        let i = try MissBinary.run(["import", "movielens", dir.path, "--out", data])
        #expect(i.status == 0 && i.stdout.contains("20 tags by 20 users, kept apart from the item text"), "\(i.stdout)\(i.stderr)")
        let e = try MissBinary.run(["embed", "--data", data, "--out", emb, "--steps", "3", "--batch", "8", "--eval-pairs", "20",
                                    "--text-encoder", "hashed", "--split-seed", "1"])
        let text = "each item's own text (title, genres …) + the tags of 16 training users of split seed 1"
            + " (16 of 20 tags; 4 by 4 validation and test users left out)"
        #expect(e.status == 0 && e.stdout.contains("text: " + text), "\(e.stdout)\(e.stderr)")
        let meta = try SafetensorsFile(path: emb).metadata
        #expect(meta["text"] == text && meta["split_seed"] == "1")
    }

    @Test func importRecBoleModalityFields() throws {
        let dir = try temporaryDirectory()
        let base = dir.appendingPathComponent("toy").path
        try Data("user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t10\nu1\ti2\t20\n".utf8).write(to: URL(fileURLWithPath: base + ".inter"))
        try Data("item_id:token\tgenre:token_seq\tyear:float\ni1\tcomedy drama\t1990\ni2\tdrama\t\n".utf8).write(to: URL(fileURLWithPath: base + ".item"))
        let out = dir.appendingPathComponent("toy.missdata").path
        let bad = try MissBinary.run(["import", "recbole", base, "--modality-fields", "genre,colour", "--out", out])
        #expect(bad.status == 2 && bad.stderr.contains("toy.item, line 1 (header): has no field 'colour'"), "\(bad.stderr)")
        #expect(bad.stderr.contains("--modality-fields") && !FileManager.default.fileExists(atPath: out))
        let empty = try MissBinary.run(["import", "recbole", base, "--modality-fields", "genre,,year", "--out", out])
        #expect(empty.status != 0 && empty.stderr.contains("--modality-fields 'genre,,year'"), "\(empty.stderr)")
        let good = try MissBinary.run(["import", "recbole", base, "--modality-fields", "genre,year", "--out", out])
        #expect(good.status == 0 && good.stdout.contains("modalities: fields (3)"), "\(good.stdout)\(good.stderr)")
    }

    /// synth → embed → build-tree → tree stats on a small world, through the real binary.
    @Test func pipelineRunsEndToEnd() throws {
        let dir = try temporaryDirectory()
        let data = dir.appendingPathComponent("w.missdata").path
        let emb = dir.appendingPathComponent("w.missemb").path
        let tree = dir.appendingPathComponent("w.misstree").path
        let s = try MissBinary.run(["synth", "--seed", "3", "--items", "800", "--users", "80", "--max-length", "400", "--out", data])
        #expect(s.status == 0 && s.stdout.contains("800 items, 80 users"))
        let e = try MissBinary.run(["embed", "--data", data, "--out", emb, "--steps", "50", "--eval-pairs", "200"])
        #expect(e.status == 0 && e.stdout.contains("item2item Recall@K") && e.stdout.contains("wrote"))
        let t = try MissBinary.run(["build-tree", "--data", data, "--embeddings", emb, "--out", tree])
        #expect(t.status == 0 && t.stdout.contains("800 leaves, 11 levels"))
        let st = try MissBinary.run(["tree", "stats", "--tree", tree, "--data", data])
        #expect(st.status == 0 && st.stdout.contains("purity"))
        // Train a tiny bundle and retrieve with it.
        let bundle = dir.appendingPathComponent("bundle").path
        let tr = try MissBinary.run(["train", "--data", data, "--embeddings", emb, "--tree", tree, "--out", bundle, "--steps", "5",
                                     "--co-length", "100", "--mm-length", "100", "--top-k", "10", "--id-dim", "8", "--batch", "4"])
        #expect(tr.status == 0 && tr.stdout.contains("wrote bundle"), "\(tr.stderr)")
        // Validation every 2 steps with patience 1: it validates, keeps the best weights and may stop early;
        // the checkpoint folder is gone once the bundle is written.
        let validated = dir.appendingPathComponent("validated").path
        let tv = try MissBinary.run(["train", "--data", data, "--embeddings", emb, "--tree", tree, "--out", validated, "--steps", "8",
                                     "--co-length", "100", "--mm-length", "100", "--top-k", "10", "--id-dim", "8", "--batch", "4",
                                     "--eval-every", "2", "--patience", "1", "--validation-users", "5", "--validation-k", "10"])
        #expect(tv.status == 0 && tv.stdout.contains("validation (5 users, Recall@10, beam 10) by step: 2:"), "\(tv.stdout)\(tv.stderr)")
        #expect(!FileManager.default.fileExists(atPath: validated + ".checkpoint"))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: validated + "/manifest.json"))) as! [String: Any]
        #expect((manifest["training"] as! [String: Double])["best_step"] != nil)
        // TDM-style: a tree shaped by the bundle's learned item ID embeddings, one GSU, one objective.
        let idTree = dir.appendingPathComponent("id.misstree").path
        let it = try MissBinary.run(["build-tree", "--data", data, "--embeddings", emb, "--source", "id", "--bundle", bundle, "--out", idTree])
        #expect(it.status == 0 && it.stdout.contains("structure from 8-d id embeddings"), "\(it.stdout)\(it.stderr)")
        let tdm = try MissBinary.run(["train", "--data", data, "--embeddings", emb, "--tree", idTree, "--out", dir.appendingPathComponent("tdm").path,
                                      "--steps", "3", "--co-length", "100", "--mm-length", "100", "--top-k", "10", "--id-dim", "8", "--batch", "4",
                                      "--no-mm-gsu", "--objectives", "1", "--eval-every", "0"])
        #expect(tdm.status == 0, "\(tdm.stderr)")
        let tdmManifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.appendingPathComponent("tdm/manifest.json").path))) as! [String: Any]
        let tdmConfig = tdmManifest["config"] as! [String: Any]
        #expect(tdmConfig["useMMGSU"] as? Bool == false && tdmConfig["objectives"] as? Int == 1)
        #expect((tdmManifest["tree"] as! [String: Any])["kind"] as? String == "id-embedding")
        let badObjectives = try MissBinary.run(["train", "--data", data, "--embeddings", emb, "--tree", tree, "--out", dir.appendingPathComponent("x").path,
                                                "--objectives", "7"])
        #expect(badObjectives.status == 2 && badObjectives.stderr.contains("--objectives 7"))
        let tooDeep = try MissBinary.run(["train", "--data", data, "--embeddings", emb, "--tree", tree, "--out", dir.appendingPathComponent("y").path,
                                          "--near-negatives", "1", "--near-from-level", "11"])
        #expect(tooDeep.status == 2 && tooDeep.stderr.contains("--near-from-level 11") && tooDeep.stderr.contains("deepest level is 10"), "\(tooDeep.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("y").path))
        let re = try MissBinary.run(["retrieve", "--bundle", bundle, "--data", data, "--user", "u1", "--k", "5", "--beam", "20"])
        #expect(re.status == 0 && re.stdout.contains("user u1"), "\(re.stderr)")
        let unknown = try MissBinary.run(["retrieve", "--bundle", bundle, "--data", data, "--user", "nobody"])
        #expect(unknown.status == 2 && unknown.stderr.contains("user 'nobody': no such user"))
        let kTooBig = try MissBinary.run(["train", "--data", data, "--embeddings", emb, "--tree", tree, "--out", bundle + "2",
                                          "--co-length", "100", "--top-k", "500"])
        #expect(kTooBig.status != 0 && kTooBig.stderr.contains("--top-k (500) must be between 1 and both"))
        #expect(!FileManager.default.fileExists(atPath: bundle + "2"))
        // The same commands again give the same bytes.
        let tree2 = dir.appendingPathComponent("again.misstree").path
        _ = try MissBinary.run(["build-tree", "--data", data, "--embeddings", emb, "--out", tree2])
        #expect(FileManager.default.contents(atPath: tree) == FileManager.default.contents(atPath: tree2))
    }
}
