import Foundation
import Testing
import MISSCore

/// Naive triple loop in Double: the independent reference for BLAS products.
public func naiveMatmul(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false) -> [[Double]] {
    let m = transposeA ? a.cols : a.rows, k = transposeA ? a.rows : a.cols
    let n = transposeB ? b.rows : b.cols
    return (0..<m).map { i in
        (0..<n).map { j in
            (0..<k).reduce(0.0) { s, p in
                s + Double(transposeA ? a[p, i] : a[i, p]) * Double(transposeB ? b[j, p] : b[p, j])
            }
        }
    }
}

public func expectClose(_ a: Matrix, _ b: [[Double]], tol: Double = 1e-4, _ comment: Comment? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.rows == b.count, comment, sourceLocation: sourceLocation)
    for i in 0..<min(a.rows, b.count) {
        #expect(a.cols == b[i].count, sourceLocation: sourceLocation)
        for j in 0..<min(a.cols, b[i].count) where abs(Double(a[i, j]) - b[i][j]) > tol * max(1, abs(b[i][j])) {
            Issue.record("\(comment?.rawValue ?? "") (\(i),\(j)): \(a[i, j]) vs \(b[i][j])", sourceLocation: sourceLocation)
            return
        }
    }
}

/// Shared by the test targets: finite-difference gradient checks and naive references.

/// Finite-difference gradient check.
///
/// `loss` must recompute the scalar loss from the current values (accumulated in Double);
/// `values` points at the float32 storage being perturbed; `analytic` is the gradient the
/// backward pass produced for it. Central differences with step h = 1e-3.
///
/// Tolerance, justified: the forward pass runs in float32 (relative rounding ≈ 6e-8 per value),
/// so the loss difference carries an absolute error of roughly 1e-6 for the O(1)-sized, O(100)-term
/// losses used here; divided by 2h that is ≈ 5e-4 in the derivative. The truncation error of the
/// central difference is O(h²·f‴) ≈ 1e-6. We therefore accept |analytic − numeric| ≤ 3e-3 + 2e-2·|numeric|
/// per element, and require the whole gradient to agree to a relative error below 1e-2.
public func checkGradient(_ label: String, count: Int,
                   perturb: (Int, Float) -> Void, analytic: [Float], loss: () -> Double,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    let h: Float = 1e-3
    var diff2 = 0.0, norm2 = 0.0
    var worst = (index: -1, analytic: Float(0), numeric: 0.0)
    #expect(analytic.count == count, "\(label): analytic gradient has \(analytic.count) values for \(count)", sourceLocation: sourceLocation)
    for i in 0..<count {
        perturb(i, h)
        let up = loss()
        perturb(i, -2 * h)
        let down = loss()
        perturb(i, h)
        let numeric = (up - down) / (2 * Double(h))
        let a = Double(analytic[i])
        diff2 += (a - numeric) * (a - numeric)
        norm2 += a * a + numeric * numeric
        if abs(a - numeric) > 3e-3 + 2e-2 * abs(numeric), worst.index < 0 { worst = (i, analytic[i], numeric) }
    }
    if worst.index >= 0 {
        Issue.record("\(label): element \(worst.index): analytic \(worst.analytic) vs numeric \(worst.numeric)", sourceLocation: sourceLocation)
    }
    let rel = norm2 > 0 ? (diff2 / norm2).squareRoot() : 0
    #expect(rel < 1e-2, "\(label): relative gradient error \(rel)", sourceLocation: sourceLocation)
    #expect(norm2 > 0 || count == 0, "\(label): gradient is identically zero, the check would prove nothing", sourceLocation: sourceLocation)
}

/// Gradient check of a parameter's value.
public func checkGradient(_ p: Parameter, loss: () -> Double, sourceLocation: SourceLocation = #_sourceLocation) {
    checkGradient(p.name, count: p.value.count, perturb: { i, d in p.value.storage[i] += d },
                  analytic: p.denseGradient.storage, loss: loss, sourceLocation: sourceLocation)
}

/// Gradient check of an input matrix held in a box.
public final class Box<T> { public var value: T; public init(_ v: T) { value = v } }

public func checkGradient(_ label: String, input: Box<Matrix>, analytic: Matrix, loss: () -> Double,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    checkGradient(label, count: input.value.count, perturb: { i, d in input.value.storage[i] += d },
                  analytic: analytic.storage, loss: loss, sourceLocation: sourceLocation)
}

/// A scalar loss from a matrix output: Σ w ⊙ y with fixed random weights, so that every
/// output element's gradient is exercised with a different coefficient.
public func weightedSum(_ y: Matrix, _ w: Matrix) -> Double {
    zip(y.storage, w.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

/// Every test's files go under one folder per test process, removed when the process exits (set
/// MISS_KEEP_TEST_FILES=1 to keep it for a look).
private func testFilesRoot() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("miss-tests-\(getpid())")
}

private let registerTestFilesCleanup: Void = {
    if ProcessInfo.processInfo.environment["MISS_KEEP_TEST_FILES"] == nil {
        atexit { try? FileManager.default.removeItem(at: testFilesRoot()) }
    }
}()

public func temporaryDirectory(_ label: String = #function) throws -> URL {
    registerTestFilesCleanup
    let base = testFilesRoot()
        .appendingPathComponent("\(label.filter { $0.isLetter || $0.isNumber })-\(UInt32.random(in: 0 ... .max))")
    try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
    return base
}

/// The InputError a throwing call produced (nil if it did not throw one).
public func inputError(_ body: () throws -> Void) -> InputError? {
    do { try body(); return nil } catch let e as InputError { return e } catch { return nil }
}
