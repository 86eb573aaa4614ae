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

    /// A fixed reference workload for a machine's jitter: `count` products (m×m)·(m×m) on `threads` cores, timed
    /// as one (seconds). Timed again and again between the requests of a latency benchmark, its spread shows how
    /// much of the benchmark's spread the machine itself makes.
    ///
    /// Each core computes whole products with single-threaded OpenBLAS on its own thread, as the estimator uses
    /// the machine. Not OpenBLAS's own threads: after a multi-threaded call they keep spinning for about 2^28
    /// cycles (≈ 0.1 s, OPENBLAS_THREAD_TIMEOUT), i.e. through most of the next request, and took ≈ 20 ms of
    /// CPU from it (measured: `bench beam` p50 154 ms with the pool's reference, 131–137 ms with the spin
    /// shortened to 2^4 cycles).
    public final class Reference: @unchecked Sendable {
        let a: Matrix, b: Matrix
        /// One output per product.
        let c: UnsafeMutablePointer<Float>
        /// Products per timing, and their size m.
        public let count: Int, m: Int
        let threads: Int
        public let flops: Double

        public init(m: Int = 1024, count: Int = 4, threads: Int = Cores.count) {
            var rng = Xoshiro256StarStar(seed: 43)
            a = .randomUniform(m, m, using: &rng)
            b = .randomUniform(m, m, using: &rng)
            self.threads = max(1, min(threads, count))
            c = .allocate(capacity: count * m * m)
            c.initialize(repeating: 0, count: count * m * m)
            self.count = count
            self.m = m
            flops = 2 * Double(m) * Double(m) * Double(m) * Double(count)
        }

        deinit { c.deallocate() }

        public func time() -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let m = self.m, out = RowSink(c)
            a.storage.withUnsafeBufferPointer { ab in
                b.storage.withUnsafeBufferPointer { bb in
                    parallelBlocks(count, block: 1, workers: threads) { products in
                        for p in products {
                            BLAS.Unsafe.gemm(m: m, n: m, k: m, ab.baseAddress!, lda: m, bb.baseAddress!, ldb: m, out.base + p * m * m, ldc: m)
                        }
                    }
                }
            }
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
    }

    /// The machine's peak as used by every benchmark: 2048³ on all threads.
    public static func peak(threads: Int = Cores.count, minSeconds: Double = 1) -> Measurement {
        measure(m: 2048, n: 2048, k: 2048, threads: threads, minSeconds: minSeconds)
    }
}
