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

    /// Softmax of one vector in place: e^(x − max) 8 lanes at a time (`exp`; the last < 8 entries in a padded
    /// vector, so every entry gets the same value wherever it sits), summed in 8 lanes and then across them.
    public static func softmaxInPlace(_ row: UnsafeMutableBufferPointer<Float>) {
        let n = row.count
        var m = -Float.infinity
        for v in row where v > m { m = v }
        if m == -Float.infinity { row.update(repeating: 0); return }
        guard let p = row.baseAddress else { return }
        typealias V = SIMD8<Float>
        let mv = V(repeating: m)
        var sum = V(), j = 0
        while j + 8 <= n {
            let e = exp(UnsafeRawPointer(p + j).loadUnaligned(as: V.self) - mv)
            UnsafeMutableRawPointer(p + j).storeBytes(of: e, as: V.self)
            sum += e
            j += 8
        }
        if j < n {
            var x = V(repeating: -.infinity)   // padding: e^-∞ = 0, nothing added
            for l in 0..<(n - j) { x[l] = p[j + l] }
            let e = exp(x - mv)
            for l in 0..<(n - j) { p[j + l] = e[l] }
            sum += e
        }
        let inv = 1 / sum.sum()
        for j in 0..<n { p[j] *= inv }
    }

    /// e^x in 8 lanes for x ≤ 0 (softmax's shifted scores), within a few ulp of expf (about 10× cheaper than 8
    /// calls of it): x = n·ln 2 + r with |r| ≤ ln 2 / 2 (n rounded to nearest, ln 2 in two parts so that r is
    /// nearly exact), e^r by the polynomial 1 + r + r²·P(r) of Cephes' expf (P of degree 5), then 2^n put into
    /// the exponent bits. Below −87.3 (where 2^n would leave the normal range) the result is 0, as it is for
    /// −∞; NaN gives NaN. The same operations in every lane: the same value for the same input wherever it is.
    @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        let lowest: Float = -87.33654
        let tiny = x .< V(repeating: lowest), nan = x .!= x
        let xc = x.replacing(with: 0, where: tiny .| nan)   // in range for the conversion to integers below
        // n = round(x·log₂e) by the 1.5·2²³ trick (the sum's last bits are n, rounded to nearest even).
        let shifted = xc * V(repeating: 1.442_695_04) + V(repeating: 12_582_912)
        let n = shifted - V(repeating: 12_582_912)
        var r = xc
        r.addProduct(n, V(repeating: -0.693_359_375))
        r.addProduct(n, V(repeating: 2.121_944_4e-4))
        var q = V(repeating: 1.987_569_15e-4)
        q = q * r + V(repeating: 1.398_199_950_7e-3)
        q = q * r + V(repeating: 8.333_451_907_3e-3)
        q = q * r + V(repeating: 4.166_579_589_4e-2)
        q = q * r + V(repeating: 1.666_666_545_9e-1)
        q = q * r + V(repeating: 5.000_000_120_1e-1)
        let e = q * (r * r) + r + V(repeating: 1)
        let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: V.self)   // 2^n, n in −126…0
        return (e * scale).replacing(with: 0, where: tiny).replacing(with: .nan, where: nan)
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
