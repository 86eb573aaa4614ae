import ArgumentParser
import Foundation
import MISSCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine's speed (benchmarks, not tests).",
        subcommands: [Gemm.self]
    )

    struct Gemm: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "SGEMM GFLOP/s for a few shapes on 1 and 2 threads: the peak every other figure is reported against."
        )

        @Option(help: "Seconds to repeat each shape (the best run is kept).")
        var seconds: Double = 0.5

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func validate() throws {
            guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be a positive number, got \(seconds)") }
        }

        func run() throws {
            // Square shapes for the peak; the rest are the shapes MISS runs: a beam level
            // (800 candidate nodes × L_mm 4000 × d 64) and a training minibatch layer.
            let shapes: [(Int, Int, Int, String)] = [
                (256, 256, 256, "square"), (1024, 1024, 1024, "square"), (2048, 2048, 2048, "square (peak)"),
                (800, 4000, 64, "MM-GSU level: nodes×L_mm×d"), (800, 2000, 64, "Co-GSU level: nodes×L_co×d"),
                (1024, 256, 256, "MLP minibatch"),
            ]
            let threadCounts = Array(Set([1, max(1, ProcessInfo.processInfo.activeProcessorCount)])).sorted()
            var results: [GemmPeak.Measurement] = []
            let widths = [30, 6, 6, 6, 8, 10, 10]
            func line(_ cells: [String]) -> String {
                zip(cells, widths).enumerated().map { i, cw in
                    let pad = String(repeating: " ", count: max(0, cw.1 - cw.0.count))
                    return i == 0 ? cw.0 + pad : pad + cw.0
                }.joined(separator: " ")
            }
            if !json { print(line(["shape", "m", "n", "k", "threads", "ms", "GFLOP/s"])) }
            for (m, n, k, label) in shapes {
                for t in threadCounts {
                    let r = GemmPeak.measure(m: m, n: n, k: k, threads: t, minSeconds: seconds)
                    results.append(r)
                    if !json {
                        print(line([label, "\(m)", "\(n)", "\(k)", "\(t)",
                                    String(format: "%.3f", r.seconds * 1000), String(format: "%.1f", r.gflops)]))
                    }
                }
            }
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(results), as: UTF8.self))
            } else {
                let peak = results.filter { $0.m == 2048 }.map(\.gflops).max() ?? 0
                print(String(format: "peak SGEMM: %.1f GFLOP/s (2048³, best over thread counts)", peak))
            }
        }
    }
}
