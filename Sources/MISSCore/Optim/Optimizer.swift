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
                    p.updateElementsWithGradient { value, i, g in
                        m[i] = b1 * m[i] + (1 - b1) * g
                        v[i] = b2 * v[i] + (1 - b2) * g * g
                        value[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                    }
                }
            }
            m[p.name] = mp
            v[p.name] = vp
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
                p.updateElementsWithGradient { value, i, g in
                    a[i] += g * g
                    value[i] -= lr * g / (a[i].squareRoot() + eps)
                }
            }
            accumulator[p.name] = acc
        }
    }
}

extension Parameter {
    /// Calls `update(values, i, g)` for every element i (flat index) that has a gradient g:
    /// all elements for a dense parameter, only the touched rows for a sparse one.
    @inline(__always)
    func updateElementsWithGradient(_ update: (UnsafeMutableBufferPointer<Float>, Int, Float) -> Void) {
        let cols = value.cols
        if isSparse {
            let sparse = sparseGrad
            value.storage.withUnsafeMutableBufferPointer { values in
                sparse.flat.withUnsafeBufferPointer { flat in
                    for (k, row) in sparse.rowIndices.enumerated() {
                        for j in 0..<cols { update(values, row * cols + j, flat[k * cols + j]) }
                    }
                }
            }
        } else {
            grad.storage.withUnsafeBufferPointer { g in
                value.storage.withUnsafeMutableBufferPointer { values in
                    for i in 0..<values.count { update(values, i, g[i]) }
                }
            }
        }
    }
}
