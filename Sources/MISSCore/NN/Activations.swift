import Foundation

/// ReLU. forward: x (N, C) -> y (N, C); backward uses the output y: dx = dy · [y > 0].
public enum ReLU {
    /// max(x, 0) element by element — Swift's `max(x, 0)` is `0 >= x ? 0 : x` (NaN stays NaN, −0 becomes +0),
    /// done here 8 lanes at a time with the same comparison.
    public static func forward(_ x: Matrix) -> Matrix {
        let n = x.storage.count
        let out = [Float](unsafeUninitializedCapacity: n) { o, count in
            x.storage.withUnsafeBufferPointer { p in
                let zero = SIMD8<Float>()
                var i = 0
                while i + 8 <= n {
                    let v = UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(o.baseAddress! + i).storeBytes(of: v.replacing(with: zero, where: zero .>= v), as: SIMD8<Float>.self)
                    i += 8
                }
                while i < n { o[i] = max(p[i], 0); i += 1 }
            }
            count = n
        }
        return Matrix(rows: x.rows, cols: x.cols, storage: out)
    }
    public static func backward(y: Matrix, dy: Matrix) -> Matrix { dy.zipMap(y) { g, v in v > 0 ? g : 0 } }
}

/// Row-wise softmax, stable (subtracts the row maximum). Entries equal to -infinity act as a mask
/// (probability 0); a row that is entirely masked yields all zeros rather than NaN.
/// forward: x (N, C) -> p (N, C); backward: dx = p ⊙ (dy − Σ_c dy·p).
public enum Softmax {
    public static func forward(_ x: Matrix) -> Matrix {
        var p = x
        let c = x.cols
        p.storage.withUnsafeMutableBufferPointer { buf in
            for r in 0..<x.rows {
                let row = UnsafeMutableBufferPointer(rebasing: buf[(r * c)..<((r + 1) * c)])
                softmaxInPlace(row)
            }
        }
        return p
    }

    /// Softmax of one vector in place.
    public static func softmaxInPlace(_ row: UnsafeMutableBufferPointer<Float>) {
        var m = -Float.infinity
        for v in row where v > m { m = v }
        if m == -Float.infinity { row.update(repeating: 0); return }
        var s: Float = 0
        for j in 0..<row.count { let e = expf(row[j] - m); row[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<row.count { row[j] *= inv }
    }

    public static func forward(vector: [Float]) -> [Float] {
        var v = vector
        v.withUnsafeMutableBufferPointer { softmaxInPlace($0) }
        return v
    }

    public static func backward(p: Matrix, dy: Matrix) -> Matrix {
        let dots = p.rowDots(dy)
        var dx = dy
        let c = p.cols
        for r in 0..<p.rows {
            for j in 0..<c { dx.storage[r * c + j] = p.storage[r * c + j] * (dy.storage[r * c + j] - dots[r]) }
        }
        return dx
    }
}

/// The logistic function, evaluated without overflow for any finite input.
@inlinable
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}

/// Binary cross-entropy on logits (Eq. 6 with ŷ = σ(x)), stable for large |x|:
/// ℓ = max(x, 0) − x·y + log(1 + e^{−|x|}); dℓ/dx = σ(x) − y.
public enum BCEWithLogits {
    /// Sum of per-element losses (accumulated in Double) and the gradient of that sum.
    /// `weights` (same shape, optional) scales each term, e.g. to mask missing objectives.
    public static func loss(logits: Matrix, labels: Matrix, weights: Matrix? = nil) -> (loss: Double, dLogits: Matrix) {
        precondition(logits.rows == labels.rows && logits.cols == labels.cols, "BCE: logits and labels differ in shape")
        if let w = weights { precondition(w.rows == logits.rows && w.cols == logits.cols, "BCE: weights differ in shape") }
        var total = 0.0
        var grad = Matrix(rows: logits.rows, cols: logits.cols)
        for i in 0..<logits.count {
            let x = logits.storage[i], y = labels.storage[i]
            let w = weights?.storage[i] ?? 1
            let l = Double(max(x, 0)) - Double(x) * Double(y) + Foundation.log1p(Foundation.exp(-Double(abs(x))))
            total += Double(w) * l
            grad.storage[i] = w * (sigmoid(x) - y)
        }
        return (total, grad)
    }
}
