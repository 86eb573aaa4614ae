import Foundation

/// An optimizer updates parameters from their gradients. State is keyed by parameter name so
/// that it is deterministic and can be checkpointed; dense and row-sparse gradients are both
/// handled (sparse: only the touched rows are read and written, "lazy" updates).
public protocol Optimizer {
    mutating func step(_ parameters: [Parameter])
}

/// Adam (Kingma & Ba) with bias correction. For row-sparse gradients the moments of untouched
/// rows are left as they are (lazy Adam, as in TensorFlow's LazyAdam / PyTorch's SparseAdam).
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public private(set) var stepCount = 0
    private var m: [String: [Float]] = [:]
    private var v: [String: [Float]] = [:]

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public mutating func step(_ parameters: [Parameter]) {
        stepCount += 1
        let t = Float(stepCount)
        let c1 = 1 - powf(beta1, t), c2 = 1 - powf(beta2, t)
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
        for p in parameters {
            // Taken out of the dictionaries while they are updated: a copy still held there would make
            // the first write copy the whole array (the node embedding table's moments, every step).
            var mp = m.removeValue(forKey: p.name) ?? [Float](repeating: 0, count: p.value.count)
            var vp = v.removeValue(forKey: p.name) ?? [Float](repeating: 0, count: p.value.count)
            mp.withUnsafeMutableBufferPointer { mb in
                vp.withUnsafeMutableBufferPointer { vb in
                    let m = mb.baseAddress!, v = vb.baseAddress!
                    // On all cores: every element's update is its own (the same values however split).
                    p.updateRunsWithGradient(workers: Cores.count) { value, g, offset, n in
                        Self.update(value, m + offset, v + offset, g, n, lr: lr, b1: b1, b2: b2, c1: c1, c2: c2, eps: eps)
                    }
                }
            }
            m[p.name] = mp
            v[p.name] = vp
        }
    }
}

extension Adam {
    /// The Adam update of n consecutive elements (values, moments and gradients at the same offsets), 8 lanes
    /// at a time: each lane the same operations in the same order as the scalar tail, so the same values.
    @inline(__always)
    static func update(_ value: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                       _ g: UnsafePointer<Float>, _ n: Int, lr: Float, b1: Float, b2: Float, c1: Float, c2: Float, eps: Float) {
        typealias V8 = SIMD8<Float>
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
        @inline(__always) func store(_ x: V8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: x, as: V8.self) }
        let b1v = V8(repeating: b1), b2v = V8(repeating: b2), a1 = V8(repeating: 1 - b1), a2 = V8(repeating: 1 - b2)
        let c1v = V8(repeating: c1), c2v = V8(repeating: c2), lrv = V8(repeating: lr), epsv = V8(repeating: eps)
        var i = 0
        while i + 8 <= n {
            let gi = load(g + i)
            let mi = b1v * load(m + i) + a1 * gi
            let vi = b2v * load(v + i) + a2 * gi * gi
            store(mi, m + i)
            store(vi, v + i)
            store(load(value + i) - lrv * (mi / c1v) / ((vi / c2v).squareRoot() + epsv), value + i)
            i += 8
        }
        while i < n {
            let gi = g[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            value[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
            i += 1
        }
    }
}

/// Adagrad: accumulates squared gradients per element; the usual choice for sparse embeddings.
public struct Adagrad: Optimizer {
    public var learningRate: Float
    public var epsilon: Float
    public var initialAccumulator: Float
    private var accumulator: [String: [Float]] = [:]

    public init(learningRate: Float = 1e-2, epsilon: Float = 1e-10, initialAccumulator: Float = 0.1) {
        self.learningRate = learningRate
        self.epsilon = epsilon
        self.initialAccumulator = initialAccumulator
    }

    public mutating func step(_ parameters: [Parameter]) {
        let lr = learningRate, eps = epsilon
        for p in parameters {
            var acc = accumulator.removeValue(forKey: p.name) ?? [Float](repeating: initialAccumulator, count: p.value.count)
            acc.withUnsafeMutableBufferPointer { ab in
                let a = ab.baseAddress!
                p.updateRunsWithGradient { value, g, offset, n in
                    for j in 0..<n {
                        a[offset + j] += g[j] * g[j]
                        value[j] -= lr * g[j] / (a[offset + j].squareRoot() + eps)
                    }
                }
            }
            accumulator[p.name] = acc
        }
    }
}

extension Parameter {
    /// Calls `update(values + offset, gradient, offset, n)` for every run of n consecutive elements that
    /// have a gradient (offset: the run's flat index in `value`): the whole matrix for a dense parameter,
    /// each touched row for a sparse one. With `workers` > 1 the runs (a large dense matrix: pieces of it)
    /// are shared out over that many threads, each run to one of them: `update` must only touch its run.
    @inline(__always)
    func updateRunsWithGradient(workers: Int = 1, _ update: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Int) -> Void) {
        let cols = value.cols
        if isSparse {
            let sparse = sparseGrad
            value.storage.withUnsafeMutableBufferPointer { values in
                sparse.flat.withUnsafeBufferPointer { flat in
                    let v = values.baseAddress!, f = flat.baseAddress!
                    parallelBlocks(sparse.rowIndices.count, block: 1024, workers: workers) { rows in
                        for k in rows {
                            let row = sparse.rowIndices[k]
                            update(v + row * cols, f + k * cols, row * cols, cols)
                        }
                    }
                }
            }
        } else {
            grad.storage.withUnsafeBufferPointer { g in
                value.storage.withUnsafeMutableBufferPointer { values in
                    guard values.count > 0 else { return }
                    let v = values.baseAddress!, gb = g.baseAddress!
                    parallelBlocks(values.count, block: 32_768, workers: workers) { piece in
                        update(v + piece.lowerBound, gb + piece.lowerBound, piece.lowerBound, piece.count)
                    }
                }
            }
        }
    }
}
