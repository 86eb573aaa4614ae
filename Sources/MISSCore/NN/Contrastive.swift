import Foundation

/// Row-wise L2 normalisation, y = x / ‖x‖ (rows of zeros stay zero).
/// forward: x (N, C) -> y (N, C); backward: dx = (dy − y·(y·dy)) / ‖x‖.
public enum L2Normalize {
    public static func forward(_ x: Matrix) -> (y: Matrix, norms: [Float]) {
        let norms = x.rowDots(x).map { $0.squareRoot() }
        return (x.scalingRows(by: norms.map { $0 > 0 ? 1 / $0 : 0 }), norms)
    }

    public static func backward(y: Matrix, norms: [Float], dy: Matrix) -> Matrix {
        let dots = y.rowDots(dy)
        var dx = dy
        let c = y.cols
        for r in 0..<y.rows {
            let inv: Float = norms[r] > 0 ? 1 / norms[r] : 0
            for j in 0..<c { dx.storage[r * c + j] = (dy.storage[r * c + j] - y.storage[r * c + j] * dots[r]) * inv }
        }
        return dx
    }
}

/// InfoNCE with in-batch negatives (Eq. 2), symmetric: row i of `anchors` should match row i of
/// `positives` against every other row of the batch, and vice versa.
/// S = A·Pᵀ/τ (B, B); loss = ½·mean_i[−log softmax_row(S)_ii] + ½·mean_j[−log softmax_col(S)_jj].
/// backward: dA = dS·P/τ, dP = dSᵀ·A/τ with dS = ½(softmax_row(S) − I)/B + ½(softmax_col(S) − I)/B.
public enum InfoNCE {
    public static func loss(anchors a: Matrix, positives p: Matrix, temperature tau: Float) -> (loss: Double, dAnchors: Matrix, dPositives: Matrix) {
        precondition(a.rows == p.rows && a.cols == p.cols, "InfoNCE: anchors and positives differ in shape")
        let b = a.rows
        var s = matmul(a, p, transposeB: true)
        s.scale(1 / tau)
        let rowP = Softmax.forward(s)
        let colP = Softmax.forward(s.transposed).transposed
        var loss = 0.0
        var dS = Matrix(rows: b, cols: b)
        for i in 0..<b {
            loss -= 0.5 * (log(Double(max(rowP[i, i], .leastNormalMagnitude))) + log(Double(max(colP[i, i], .leastNormalMagnitude))))
            for j in 0..<b {
                let target: Float = i == j ? 1 : 0
                dS[i, j] = 0.5 * ((rowP[i, j] - target) + (colP[i, j] - target)) / Float(b)
            }
        }
        loss /= Double(b)
        var dA = matmul(dS, p)
        dA.scale(1 / tau)
        var dP = matmul(dS, a, transposeA: true)
        dP.scale(1 / tau)
        return (loss, dA, dP)
    }
}

/// Mean squared error over the entries where `mask` is 1 (all entries without a mask).
/// loss = Σ mask·(ŷ − y)² / Σ mask; dŷ = 2·mask·(ŷ − y) / Σ mask.
public enum MeanSquaredError {
    public static func loss(prediction: Matrix, target: Matrix, mask: Matrix? = nil) -> (loss: Double, dPrediction: Matrix) {
        precondition(prediction.rows == target.rows && prediction.cols == target.cols, "MSE: shapes differ")
        let count = mask.map { $0.sum() } ?? Double(prediction.count)
        guard count > 0 else { return (0, Matrix(rows: prediction.rows, cols: prediction.cols)) }
        var total = 0.0
        var grad = Matrix(rows: prediction.rows, cols: prediction.cols)
        for i in 0..<prediction.count {
            let m = mask?.storage[i] ?? 1
            let diff = prediction.storage[i] - target.storage[i]
            total += Double(m) * Double(diff) * Double(diff)
            grad.storage[i] = 2 * m * diff / Float(count)
        }
        return (total / count, grad)
    }
}
