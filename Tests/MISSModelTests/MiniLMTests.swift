import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSModel

/// MiniLM against the independent numpy reference (Tests/Reference/minilm_reference.py). The weights
/// come from `scripts/fetch-minilm.sh`, which `scripts/setup.sh` (and so CI) runs.
@Suite struct MiniLMTests {
    static let texts = [
        "Toy Story (1995). Adventure Animation Children Comedy Fantasy. pixar, fun",
        "Héllo, World! unaffable café 東京 x-ray",
        "A quiet cooking show about bread",
        "Heat, The (1995)",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
    ]

    func reference() throws -> (ids: [[Int]], embeddings: [[Double]]) {
        let script = Paths.repository.appendingPathComponent("Tests/Reference/minilm_reference.py").path
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, MiniLM.defaultDirectory.path],
                               input: try JSONSerialization.data(withJSONObject: Self.texts))
        guard r.status == 0 else {
            Issue.record("reference failed: \(r.stderr) — run `bash scripts/setup.sh` (numpy, safetensors, tokenizers, MiniLM weights)")
            return ([], [])
        }
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        return (json["ids"] as! [[Int]], json["embeddings"] as! [[Double]])
    }

    @Test func tokensAndEmbeddingsAgreeWithTheNumpyReference() throws {
        guard MiniLM.isInstalled else {
            Issue.record("MiniLM weights are missing at \(MiniLM.defaultDirectory.path): run `bash scripts/fetch-minilm.sh`")
            return
        }
        let model = try MiniLM()
        let ref = try reference()
        guard ref.ids.count == Self.texts.count else { return }
        for (i, text) in Self.texts.enumerated() {
            #expect(model.tokenizer.encode(text).map(Int.init) == ref.ids[i], "tokens of \(text)")
        }
        let e = model.encode(Self.texts, batchSize: 3)  // batches of 3 and 2 texts: batching must not matter
        for i in 0..<Self.texts.count {
            let cos = zip(e.row(i), ref.embeddings[i]).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            #expect(cos > 0.999, "cosine \(cos) for \(Self.texts[i])")
        }
        // Semantics survive: the cooking show is further from Toy Story than Toy Story's own title is.
        let toy = model.encode(["Toy Story"])
        let dots = matmul(toy, e, transposeB: true)
        #expect(dots[0, 0] > dots[0, 2])
    }

    @Test func tokenizerBasics() throws {
        guard MiniLM.isInstalled else { return }  // the test above reports the missing weights
        let t = try WordPieceTokenizer(vocabularyFile: MiniLM.defaultDirectory.appendingPathComponent("vocab.txt").path, maxLength: 8)
        let ids = t.encode("one two three four five six seven eight nine")
        #expect(ids.count == 8 && ids.first == t.cls && ids.last == t.sep)
        #expect(t.encode(String(repeating: "a", count: 101)) == [t.cls, t.unknown, t.sep])
    }
}

enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
