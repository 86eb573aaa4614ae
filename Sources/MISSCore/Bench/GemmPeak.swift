import Foundation

/// Measures SGEMM throughput on this machine: the reference every benchmark reports against,
/// because these machines are shared and their speed varies from run to run.
public enum GemmPeak {
    public struct Measurement: Sendable, Codable {
        public let m: Int, n: Int, k: Int
        public let threads: Int
        public let seconds: Double      // best time of one product
        public let gflops: Double       // 2·m·n·k / seconds / 1e9
        public let repetitions: Int
    }

    /// Times C = A·B for (m×k)·(k×n), repeating for at least `minSeconds`, and keeps the best run.
    public static func measure(m: Int, n: Int, k: Int, threads: Int, minSeconds: Double = 0.5) -> Measurement {
        let previous = BLAS.threads
        BLAS.setThreads(threads)
        defer { BLAS.setThreads(previous) }
        var rng = Xoshiro256StarStar(seed: 42)
        let a = Matrix.randomUniform(m, k, using: &rng)
        let b = Matrix.randomUniform(k, n, using: &rng)
        var c = Matrix(rows: m, cols: n)
        BLAS.gemm(a.view(), b.view(), into: &c)  // warm-up: thread pool, page faults
        var best = Double.infinity
        var reps = 0
        let start = Date()
        repeat {
            let t0 = DispatchTime.now().uptimeNanoseconds
            BLAS.gemm(a.view(), b.view(), into: &c)
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            best = min(best, dt)
            reps += 1
        } while Date().timeIntervalSince(start) < minSeconds || reps < 3
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        return Measurement(m: m, n: n, k: k, threads: threads, seconds: best, gflops: flops / best / 1e9, repetitions: reps)
    }

    /// A fixed reference workload for a machine's jitter: `count` products (m×m)·(m×m) on `threads`, timed as
    /// one (seconds). Timed again and again between the requests of a latency benchmark, its spread shows how
    /// much of the benchmark's spread the machine itself makes.
    public final class Reference {
        let a: Matrix, b: Matrix
        var c: Matrix
        /// Products per timing, and their size m.
        public let count: Int, m: Int
        let threads: Int
        public let flops: Double

        public init(m: Int = 1024, count: Int = 4, threads: Int = Cores.count) {
            var rng = Xoshiro256StarStar(seed: 43)
            a = .randomUniform(m, m, using: &rng)
            b = .randomUniform(m, m, using: &rng)
            c = Matrix(rows: m, cols: m)
            self.count = count
            self.m = m
            self.threads = threads
            flops = 2 * Double(m) * Double(m) * Double(m) * Double(count)
        }

        public func time() -> Double {
            let previous = BLAS.threads
            BLAS.setThreads(threads)
            defer { BLAS.setThreads(previous) }
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<count { BLAS.gemm(a.view(), b.view(), into: &c) }
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
    }

    /// The machine's peak as used by every benchmark: 2048³ on all threads.
    public static func peak(threads: Int = Cores.count, minSeconds: Double = 1) -> Measurement {
        measure(m: 2048, n: 2048, k: 2048, threads: threads, minSeconds: minSeconds)
    }
}
