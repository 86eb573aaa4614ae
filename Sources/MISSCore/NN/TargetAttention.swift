import Foundation

/// Scaled dot-product target attention: one query per row attends over its own set of keys.
///
/// forward:  q (B, d), keys (B·T, d), values (B·T, dv), mask (B·T, true = attend)
///           s[b,t] = q_b·k_{b,t}/√d (masked → −∞), a = softmax_t(s), out_b = Σ_t a[b,t]·v_{b,t}
///           -> out (B, dv), weights a (B, T)
/// backward: dOut (B, dv) -> dq (B, d), dKeys (B·T, d), dValues (B·T, dv)
///
/// Per-query products run as one `batchedMatmul` over views of the stacked keys/values.
public enum TargetAttention {
    public struct Output {
        public var out: Matrix      // (B, dv)
        public var weights: Matrix  // (B, T)
    }

    public static func forward(query q: Matrix, keys: Matrix, values: Matrix, mask: [Bool]? = nil) -> Output {
        let b = q.rows, d = q.cols
        precondition(b > 0 && keys.rows % b == 0, "attention: \(keys.rows) key rows do not split into \(b) queries")
        precondition(keys.cols == d, "attention: keys have \(keys.cols) dims, query has \(d)")
        precondition(values.rows == keys.rows, "attention: \(values.rows) value rows vs \(keys.rows) key rows")
        let t = keys.rows / b
        if let mask { precondition(mask.count == keys.rows, "attention: mask has \(mask.count) entries, needs \(keys.rows)") }
        // scores (B, T): block b is q_b (1, d) · K_bᵀ (d, T).
        var scores = batchedMatmul(q, keys, batch: b, transposeB: true).reshaped(b, t)
        scores.scale(1 / Float(d).squareRoot())
        if let mask {
            for i in 0..<mask.count where !mask[i] { scores.storage[i] = -.infinity }
        }
        let weights = Softmax.forward(scores)
        // out (B, dv): block b is a_b (1, T) · V_b (T, dv).
        let out = batchedMatmul(weights.reshaped(b, t), values, batch: b)
        return Output(out: out, weights: weights)
    }

    public struct Gradients {
        public var dQuery: Matrix
        public var dKeys: Matrix
        public var dValues: Matrix
    }

    public static func backward(query q: Matrix, keys: Matrix, values: Matrix, weights: Matrix, dOut: Matrix) -> Gradients {
        let b = q.rows, d = q.cols, t = weights.cols
        let dv = values.cols
        // dA (B, T): block b is dOut_b (1, dv) · V_bᵀ.
        let dA = batchedMatmul(dOut, values, batch: b, transposeB: true).reshaped(b, t)
        var dS = Softmax.backward(p: weights, dy: dA)   // masked entries have p = 0, so dS = 0 there
        dS.scale(1 / Float(d).squareRoot())
        // dq_b = dS_b (1, T) · K_b (T, d)
        let dQuery = batchedMatmul(dS, keys, batch: b)
        // dK_{b,t} = dS[b,t] · q_b ; dV_{b,t} = a[b,t] · dOut_b  (outer products, one per query)
        var dKeys = Matrix(rows: b * t, cols: d)
        var dValues = Matrix(rows: b * t, cols: dv)
        for i in 0..<b {
            BLAS.gemm(dS.view(rows: i..<(i + 1)), transposeA: true, q.view(rows: i..<(i + 1)),
                      into: &dKeys, cRow: i * t)
            BLAS.gemm(weights.view(rows: i..<(i + 1)), transposeA: true, dOut.view(rows: i..<(i + 1)),
                      into: &dValues, cRow: i * t)
        }
        return Gradients(dQuery: dQuery, dKeys: dKeys, dValues: dValues)
    }
}
