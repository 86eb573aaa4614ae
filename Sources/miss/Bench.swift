import ArgumentParser
import Foundation
import MISSCore
import MISSData
import MISSModel

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine's speed (benchmarks, not tests).",
        subcommands: [Gemm.self, Tree.self, Beam.self, TrainBench.self, Explore.self, TopKBench.self, RelevanceBench.self]
    )

    /// The p-quantile (0…1) of `values`: the element at index ⌊count·p⌋ (at most the last) of the sorted
    /// values, so 0.5 is the median and 0 the best; 0 for no values.
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let s = values.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))]
    }

    /// The machine's SGEMM peak, measured in the same run as the figure it accompanies.
    static func peakLine() -> (Double, String) {
        let p = GemmPeak.peak(minSeconds: 0.5)
        return (p.gflops, String(format: "SGEMM peak this run: %.1f GFLOP/s (2048³, %d threads)", p.gflops, p.threads))
    }

    struct Beam: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Beam-search latency per request (untrained weights: the cost does not depend on their values).")

        @Option(help: "Items (2^21 gives the paper's 22 levels, root included).") var items = 2_097_152
        @Option(help: "Beam size k.") var beam = 400
        @Option(help: "Items returned.") var finalK = 400
        @Option(help: "Co-GSU length L_co.") var coLength = 2000
        @Option(help: "MM-GSU length L_mm.") var mmLength = 4000
        @Option(help: "ID embedding dimension d (also the MM dimension).") var dim = 64
        @Option(help: "GSU top-K.") var topK = 50
        @Option(help: "Requests to time.") var requests = 20
        @Flag(help: "Print every request's latency and the reference SGEMM's time after it (slow phases of a shared host show as runs of both).") var series = false
        @Flag(inversion: .prefixedNo, help: "Time the reference SGEMM workload after each request (--no-reference: only the requests, e.g. under a profiler).") var reference = true

        func run() throws {
            let (peak, peakLine) = Bench.peakLine()
            print(peakLine)
            var rng = Xoshiro256StarStar(seed: 1)
            let itemMM = Matrix.randomNormal(items, dim, using: &rng).l2NormalizedRows()
            let t0 = Date()
            let tree = IndexTree.build(embeddings: itemMM, kind: .multimodal)
            print(String(format: "tree: %d items, %d levels, built in %.1f s", items, tree.leafLevel + 1, Date().timeIntervalSince(t0)))
            var c = EstimatorConfig()
            c.idDim = dim; c.coLength = coLength; c.mmLength = mmLength; c.topK = topK
            let est = NodeEstimator(config: c, tree: tree, itemMM: itemMM, seed: 1)
            var times: [Double] = [], referenceTimes: [Double] = []
            let referenceWork = GemmPeak.Reference()
            var flops = 0.0
            for r in 0..<(requests + 2) {
                let history = (0..<max(coLength, mmLength)).map { _ in Int32(rng.nextInt(below: items)) }
                let s = Date()
                let ctx = est.context(history: history[...])
                let result = BeamSearch.run(estimator: est, tree: tree, context: ctx, config: .init(beamSize: beam, finalK: finalK))
                let dt = Date().timeIntervalSince(s)
                if r >= 2 { times.append(dt) }  // two warm-up requests
                // The machine's own jitter, measured between the requests: a fixed SGEMM workload.
                let rt = reference ? referenceWork.time() : 0
                if r >= 2 && reference { referenceTimes.append(rt) }
                if series && r >= 2 { print(String(format: "request %d: %.1f ms; reference SGEMM after it: %.1f ms", r - 1, dt * 1000, rt * 1000)) }
                if r == 0 {
                    // GSU GEMM FLOPs: Σ over levels of candidates × (L_co + L_mm) × d × 2.
                    let candidates = result.beams.dropFirst().enumerated().reduce(0) { acc, e in
                        acc + min(2 * (e.offset == 0 ? 1 : result.beams[e.offset].count), tree.nodes(atLevel: e.offset + 1).count)
                    }
                    flops = Double(candidates) * Double(coLength + mmLength) * Double(dim) * 2
                }
            }
            let p50 = Bench.percentile(times, 0.5), p99 = Bench.percentile(times, 0.99)
            print(String(format: "beam search: %d levels, beam %d, L_co %d, L_mm %d, d %d, K %d: p50 %.1f ms, p99 %.1f ms (p99/p50 %.2f), min %.1f ms, %.1f queries/s",
                         tree.leafLevel + 1, beam, coLength, mmLength, dim, topK, p50 * 1000, p99 * 1000, p99 / p50, Bench.percentile(times, 0) * 1000, 1 / p50))
            print(String(format: "GSU GEMM work ≈ %.1f GFLOP per request: %.1f GFLOP/s effective = %.0f%% of the SGEMM peak (target: 150 ms)",
                         flops / 1e9, flops / 1e9 / p50, 100 * flops / 1e9 / p50 / peak))
            guard reference else { return }
            let r50 = Bench.percentile(referenceTimes, 0.5), r99 = Bench.percentile(referenceTimes, 0.99)
            print(String(format: "the machine's jitter in the same run (%d × %d³ SGEMM after each request): p50 %.1f ms (%.0f GFLOP/s), p99 %.1f ms (p99/p50 %.2f)",
                         referenceWork.count, referenceWork.m, r50 * 1000, referenceWork.flops / r50 / 1e9, r99 * 1000, r99 / r50))
        }
    }

    struct Tree: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Index-tree build time over synthetic items (recursive balanced 2-means).")

        @Option(help: "Comma-separated item counts.") var items = "100000,300000,1000000"
        @Option(help: "Embedding dimension (synthetic content modalities, concatenated).") var dim = 64
        @Option(help: "Seed of the synthetic world.") var seed: UInt64 = 1

        func run() throws {
            let counts = items.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !counts.isEmpty, counts.allSatisfy({ $0 >= 2 }), dim >= 2 else {
                throw ValidationError("--items needs comma-separated counts ≥ 2 and --dim ≥ 2")
            }
            let (_, peak) = Bench.peakLine()
            print(peak)
            var previous: (n: Int, seconds: Double)?
            for n in counts {
                var c = SyntheticWorld.Config()
                c.seed = seed; c.items = n; c.users = 1; c.minLength = 2; c.maxLength = 2
                c.textDim = dim / 2; c.visualDim = dim - dim / 2
                let g0 = Date()
                let world = SyntheticWorld.generate(c).dataset
                let genSeconds = Date().timeIntervalSince(g0)
                let x = Matrix.hstack(world.modalities.map(\.values)).l2NormalizedRows()
                let t0 = Date()
                var lastLevel = Date()
                var levelTimes: [String] = []
                let tree = IndexTree.build(embeddings: x, kind: .multimodal) { h, _ in
                    if h > 0 { levelTimes.append(String(format: "%.2f", Date().timeIntervalSince(lastLevel))) }
                    lastLevel = Date()
                }
                let finish = Date().timeIntervalSince(lastLevel)
                let seconds = Date().timeIntervalSince(t0)
                let rss = residentMemoryMiB()
                var line = String(format: "tree: %8d items × %d dims: %7.2f s (%d levels, %d nodes; synth %.1f s; RSS %.0f MiB)",
                                  n, dim, seconds, tree.leafLevel + 1, tree.nodeCount, genSeconds, rss)
                if let p = previous {
                    // N log N predicts t₂/t₁ = (n₂ log n₂)/(n₁ log n₁).
                    let predicted = Double(n) * log(Double(n)) / (Double(p.n) * log(Double(p.n)))
                    line += String(format: "; ×%.2f vs %d (N log N predicts ×%.2f)", seconds / p.seconds, p.n, predicted)
                }
                print(line)
                print("  per level (s): \(levelTimes.joined(separator: " ")); node embeddings \(String(format: "%.2f", finish)) s")
                previous = (n, seconds)
            }
        }
    }

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
            let threadCounts = Array(Set([1, max(1, Cores.count)])).sorted()
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

/// Resident set size of this process (Linux /proc), in MiB.
func residentMemoryMiB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}

extension Bench {
    /// What the training benchmarks train on: a dataset, its first modality (L2-normalised) standing in
    /// for the MM embeddings, and the multi-modal tree over those.
    static func trainingWorld(_ path: String) throws -> (Dataset, Matrix, IndexTree) {
        let dataset = try loadDataset(path)
        guard let modality = dataset.modalities.first else {
            throw InputError(file: path, problem: "the dataset has no modality to stand in for MM embeddings", fix: "Use SampleData/world.missdata")
        }
        let itemMM = modality.values.l2NormalizedRows()
        return (dataset, itemMM, IndexTree.build(embeddings: itemMM, kind: .multimodal))
    }

    struct TrainBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train",
            abstract: "Training throughput against its FLOP bound (the products' FLOPs at the SGEMM peak).")

        @Option(help: "Dataset (.missdata); its first modality, L2-normalised, stands in for the MM embeddings.") var data = "SampleData/world.missdata"
        @Option(help: "Steps to time (after 5 warm-up steps).") var steps = 60
        @Option(help: "User instances per step.") var batch = 16
        @Option(help: "ID embedding dimension d.") var idDim = 32
        @Option(help: "Timed runs (each from the same initial model: the same work, each after a peak measurement); the best and the median are reported against the highest peak.") var repeats = 3

        func run() throws {
            try runReportingInputErrors {
                let (firstPeak, peakLine) = Bench.peakLine()
                print(peakLine)
                let (dataset, itemMM, tree) = try Bench.trainingWorld(data)
                let split = EvaluationSplit(dataset: dataset, seed: 1)
                var config = EstimatorConfig()
                config.idDim = idDim
                config.objectives = dataset.objectives.count
                var tc = LevelwiseTrainer.Config()
                tc.instancesPerBatch = batch
                let trainer = LevelwiseTrainer(dataset: dataset, tree: tree, users: split.train)
                // The FLOPs of exactly the instances the timed run sees (same seed → same samples).
                var rng = Xoshiro256StarStar(seed: tc.seed).derived("levelwise-samples")
                var timedFlops = 0.0, skippedFlops = 0.0
                for step in 1...(5 + steps) {
                    for _ in 0..<batch {
                        guard let inst = trainer.instance(&rng, config: tc) else { continue }
                        // Each distinct node is scored once (see `LevelwiseTrainer.distinctNodes`).
                        let samples = trainer.samples(inst, negatives: tc.negativesPerLevel, objectives: config.objectives, &rng).nodes
                        let nodes = LevelwiseTrainer.distinctNodes(samples).nodes.count
                        let start = dataset.behaviours(of: inst.user).lowerBound, history = inst.cut - start
                        let f = NodeEstimator.trainingFLOPs(config: config, mmDim: itemMM.cols, coLength: history, mmLength: history, nodes: nodes)
                        if step > 5 {
                            timedFlops += f
                            // Not computed per node: x_user's share of the head, once per request (`headUserBias`).
                            skippedFlops += NodeEstimator.foldedUserFLOPs(config: config, nodes: nodes)
                            // Not computed for a window's repeated items, each computed once: the GSU products
                            // (`SequenceKeys`) and the backward of the K and V projections, dE and dW (`ItemGroups`).
                            let items = Array(dataset.behaviourItems[start..<inst.cut])
                            for (length, dim) in [(config.coLength, config.idDim), (config.mmLength, itemMM.cols)] {
                                let window = Array(items.suffix(length))
                                skippedFlops += NodeEstimator.repeatedItemFLOPs(config: config, keyDim: dim, positions: window.count,
                                                                                distinct: distinctPositions(window).distinct.count, nodes: nodes)
                            }
                        }
                    }
                }
                tc.steps = 5 + steps
                // A peak is measured before every run as well (after it, a pause: OpenBLAS's pool threads spin
                // for ≈ 0.1 s after a multi-threaded call), and every run is set against the highest of all
                // of them: a peak measured low in a slow moment would flatter the ratio.
                var times: [Double] = [], peaks = [firstPeak]
                for run in 1...max(1, repeats) {
                    peaks.append(GemmPeak.peak(minSeconds: 0.5).gflops)
                    Thread.sleep(forTimeInterval: 0.3)
                    let estimator = NodeEstimator(config: config, tree: tree, itemMM: itemMM, seed: 1)
                    var t0 = Date(), samples = 0
                    try trainer.train(estimator, config: tc, progress: { r in
                        if r.step == 5 { t0 = Date() } else if r.step > 5 { samples += r.samples }
                    })
                    let dt = Date().timeIntervalSince(t0)
                    times.append(dt)
                    print(String(format: "run %d: %d steps of %d instances, d %d, L_co %d, L_mm %d, K %d: %.2f s, %.0f samples/s, %.1f steps/s, %.1f GFLOP/s (peak before it %.1f)",
                                 run, steps, batch, idDim, config.coLength, config.mmLength, config.topK, dt, Double(samples) / dt,
                                 Double(steps) / dt, timedFlops / dt / 1e9, peaks.last!))
                }
                let peak = peaks.max()!, bound = timedFlops / (peak * 1e9)
                let best = Bench.percentile(times, 0), median = Bench.percentile(times, 0.5)
                print(String(format: "FLOPs: %.2f GFLOP per step, FLOP bound %.2f s at the highest peak measured, %.1f GFLOP/s (lowest %.1f); best run %.1f GFLOP/s = %.0f%% of it → %.2f× the bound, median %.2f× (target ≤ 3×)",
                             timedFlops / Double(steps) / 1e9, bound, peak, peaks.min()!, timedFlops / best / 1e9, 100 * timedFlops / best / 1e9 / peak,
                             best / bound, median / bound))
                // The bound counts every position of the windows and x_user's head products for every node (the
                // paper's computation); a window that repeats items has each item's relevances and projection
                // gradients computed once, and x_user's products are computed once per request, so fewer FLOPs
                // are executed than counted.
                let executed = timedFlops - skippedFlops, executedBound = executed / (peak * 1e9)
                print(String(format: "of which not executed: %.2f GFLOP per step (%.0f%%), x_user's head products per node (once per request) and the GSU products and K/V projections' backward of repeated items (once per distinct item); against the FLOPs executed, %.2f GFLOP per step: best %.2f×, median %.2f×",
                             skippedFlops / Double(steps) / 1e9, 100 * skippedFlops / timedFlops, executed / Double(steps) / 1e9,
                             best / executedBound, median / executedBound))
            }
        }
    }
}
