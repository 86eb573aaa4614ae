import Foundation
import MISSCore
import MISSData

/// Text features without a neural model: signed feature hashing of word unigrams, word bigrams and
/// character trigrams, TF-weighted, L2-normalised. It is the documented fallback when the MiniLM
/// weights are not installed (`scripts/fetch-minilm.sh`), and it is deterministic.
public enum HashedTextEncoder {
    public static func encode(_ texts: [String], dim: Int = 256) -> Matrix {
        var out = Matrix(rows: texts.count, cols: dim)
        for (r, text) in texts.enumerated() {
            let words = text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
            var features: [String] = words.map { "w:" + $0 }
            for (a, b) in zip(words, words.dropFirst()) { features.append("b:\(a) \(b)") }
            for w in words {
                let chars = Array("<" + w + ">")
                if chars.count >= 3 { for i in 0...(chars.count - 3) { features.append("c:" + String(chars[i..<(i + 3)])) } }
            }
            for f in features {
                let h = fnv1a(f)
                let col = Int(h % UInt64(dim))
                out[r, col] += (h >> 63) == 0 ? 1 : -1
            }
        }
        return out.l2NormalizedRows()
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}

/// A named text encoder: texts → one embedding row each.
public struct TextEncoder {
    public var name: String
    public var encode: ([String]) throws -> Matrix
    public init(name: String, encode: @escaping ([String]) throws -> Matrix) {
        self.name = name
        self.encode = encode
    }
}

/// The raw content features of every item: one block per modality, each centred and L2-normalised
/// per row and scaled by 1/√M so that the concatenation has unit norm.
public struct ContentFeatures: Sendable {
    public var matrix: Matrix
    public var blocks: [(name: String, columns: Range<Int>)]
    /// How the text block was made ("dataset", "minilm", "hashed-ngram").
    public var textSource: String

    /// Uses the dataset's modalities; when there is no "text" modality, `texts` (one per item; default
    /// the items' own `itemTexts`, without user annotations; for a split,
    /// `dataset.contentTexts(trainingUsers:)`) are encoded by `textEncoder` (MiniLM when its weights
    /// are installed, otherwise hashed n-grams).
    public static func build(dataset: Dataset, texts: [String]? = nil, textEncoder: TextEncoder? = nil) throws -> ContentFeatures {
        var parts: [(String, Matrix)] = dataset.modalities.map { ($0.name, $0.values) }
        var source = "dataset"
        if !parts.contains(where: { $0.0 == "text" }) {
            let texts = texts ?? dataset.itemTexts
            precondition(texts.count == dataset.itemCount, "one text per item")
            if let textEncoder {
                parts.insert(("text", try textEncoder.encode(texts)), at: 0)
                source = textEncoder.name
            } else {
                parts.insert(("text", HashedTextEncoder.encode(texts)), at: 0)
                source = "hashed-ngram"
            }
        }
        let scale = 1 / Float(parts.count).squareRoot()
        var blocks: [(String, Range<Int>)] = []
        var normalized: [Matrix] = []
        var offset = 0
        for (name, values) in parts {
            let means = values.columnSums().map { $0 / Float(max(1, values.rows)) }
            var centred = values
            for r in 0..<values.rows { for c in 0..<values.cols { centred[r, c] -= means[c] } }
            var block = centred.l2NormalizedRows()
            block.scale(scale)
            normalized.append(block)
            blocks.append((name, offset..<(offset + values.cols)))
            offset += values.cols
        }
        return ContentFeatures(matrix: Matrix.hstack(normalized), blocks: blocks, textSource: source)
    }
}
