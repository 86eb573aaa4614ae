import Foundation
import MISSCore

/// BERT's uncased tokenizer: the BertNormalizer (clean text, space around CJK ideographs, strip
/// accents, lowercase), the BertPreTokenizer (split on whitespace and punctuation), then WordPiece
/// (greedy longest match, continuation pieces prefixed "##"), wrapped in [CLS] … [SEP].
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let unknown: Int32
    public let cls: Int32
    public let sep: Int32
    public let maxLength: Int
    static let maxCharactersPerWord = 100

    public init(vocabularyFile path: String, maxLength: Int = 256) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError(file: path, problem: "cannot read the WordPiece vocabulary", fix: "Run `bash scripts/fetch-minilm.sh`")
        }
        let tokens = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        var vocab: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where !t.isEmpty && vocab[t] == nil { vocab[t] = Int32(i) }
        func id(_ t: String) throws -> Int32 {
            guard let v = vocab[t] else {
                throw InputError(file: path, problem: "the vocabulary has no \(t) token", fix: "Use the vocab.txt of a BERT uncased model")
            }
            return v
        }
        self.vocabulary = vocab
        self.unknown = try id("[UNK]")
        self.cls = try id("[CLS]")
        self.sep = try id("[SEP]")
        self.maxLength = maxLength
    }

    /// Token ids with [CLS] and [SEP], truncated to `maxLength`.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [cls]
        for word in Self.preTokenize(Self.normalize(text)) {
            ids.append(contentsOf: wordPiece(word))
            if ids.count >= maxLength - 1 { break }
        }
        if ids.count > maxLength - 1 { ids.removeLast(ids.count - (maxLength - 1)) }
        ids.append(sep)
        return ids
    }

    func wordPiece(_ word: [Unicode.Scalar]) -> [Int32] {
        if word.count > Self.maxCharactersPerWord { return [unknown] }
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var s = String(String.UnicodeScalarView(word[start..<end]))
                if start > 0 { s = "##" + s }
                if let id = vocabulary[s] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unknown] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    static func normalize(_ text: String) -> [Unicode.Scalar] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) { cleaned.append(" "); continue }
            if isCJK(s) { cleaned.append(" "); cleaned.append(s); cleaned.append(" "); continue }
            cleaned.append(s)
        }
        // Strip accents: canonical decomposition, then drop non-spacing marks; then lowercase.
        let decomposed = String(cleaned).decomposedStringWithCanonicalMapping
        var out: [Unicode.Scalar] = []
        for s in decomposed.unicodeScalars where s.properties.generalCategory != .nonspacingMark {
            out.append(contentsOf: String(s).lowercased().unicodeScalars)
        }
        return out
    }

    static func preTokenize(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for s in scalars {
            if isWhitespace(s) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if isPunctuation(s) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([s])
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
