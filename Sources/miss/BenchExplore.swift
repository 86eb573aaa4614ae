import ArgumentParser
import Foundation
import MISSCore
import MISSData
import MISSExplorer
import MISSModel

extension Bench {
    struct Explore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explorer latency: loading a user (the traced beam search), one level step (reduce + render), the GSU view, the aggregates.")

        @OptionGroup var location: ModelLocation
        @Option(help: "Users to time (those with the longest histories, so that the MM-GSU window is full).") var users = 8
        @Option(help: "Beam size.") var beam = 100
        @Option(help: "Screen width.") var width = 160
        @Option(help: "Screen height.") var height = 48

        func run() throws {
            try runReportingInputErrors {
                let (_, peakLine) = Bench.peakLine()
                print(peakLine)
                let model = try location.open()
                let cfg = model.catalog.config
                let rows = model.users.indices.sorted { model.history(of: model.users[$0].index).count > model.history(of: model.users[$1].index).count }
                    .prefix(users)
                var load: [Double] = [], step: [Double] = [], gsu: [Double] = []
                var window = 0
                for row in rows {
                    var s = ExplorerState.initial(catalog: model.catalog, users: model.users, colorMode: .c256, row: row, beamSize: beam)
                    s = reduce(s, .resized(width: width, height: height))
                    let t0 = Date()
                    let trace = model.trace(row: row, beamSize: beam, finalK: 50)
                    load.append(Date().timeIntervalSince(t0))
                    window = max(window, trace.mmItems.count)
                    s = reduce(s, .userLoaded(trace))
                    s.level = 1
                    // One level step as the user sees it: the key's reduce and the next frame's render.
                    for _ in 1..<trace.levels.count {
                        let t = Date()
                        s = reduce(s, .key(.right))
                        _ = render(s)
                        step.append(Date().timeIntervalSince(t))
                    }
                    s.view = .gsu
                    let t = Date()
                    _ = render(s)
                    gsu.append(Date().timeIntervalSince(t))
                }
                let t1 = Date()
                let a = model.aggregates()
                let aggregateSeconds = Date().timeIntervalSince(t1)
                func pct(_ v: [Double], _ p: Double) -> Double { Bench.percentile(v, p) * 1000 }
                print("bundle \(model.bundlePath): L_co \(cfg.coLength), L_mm \(cfg.mmLength) (longest MM window timed: \(window)), d \(cfg.idDim), K \(cfg.topK), beam \(beam), \(model.catalog.leafLevel) levels, screen \(width)×\(height)")
                print(String(format: "load a user (traced beam search): p50 %.1f ms, p99 %.1f ms over %d users", pct(load, 0.5), pct(load, 0.99), load.count))
                print(String(format: "one level step (reduce + render): p50 %.2f ms, p99 %.2f ms over %d steps", pct(step, 0.5), pct(step, 0.99), step.count))
                print(String(format: "GSU view render (both top-K, overlaps): p50 %.2f ms, p99 %.2f ms", pct(gsu, 0.5), pct(gsu, 0.99)))
                print(String(format: "aggregates (Figs. 5–6, overlap) over %d evaluation users: %.2f s", a.users, aggregateSeconds))
            }
        }
    }
}

extension Bench {
    struct RelevanceBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "relevance",
            abstract: "GSU relevances of one level (nodes × L products): RelevanceKernel against one OpenBLAS GEMM of the same product, and with the top-K.")
        @Option(help: "Candidate nodes (query rows).") var rows = 800
        @Option(help: "Sequence length L.") var length = 4000
        @Option(help: "Width d.") var dim = 64
        @Option(help: "K.") var k = 50
        @Option(help: "Repetitions (the median and the best are reported).") var reps = 30

        func run() throws {
            let (peak, peakLine) = Bench.peakLine()
            print(peakLine)
            var rng = Xoshiro256StarStar(seed: 1)
            let q = Matrix.randomNormal(rows, dim, using: &rng), keys = Matrix.randomNormal(length, dim, using: &rng)
            let packed = PackedKeys(keys)
            let flops = 2 * Double(rows) * Double(length) * Double(dim)
            func time(_ label: String, _ body: () -> Int) {
                var times: [Double] = []
                var sink = 0
                for _ in 0..<reps {
                    let t0 = Date()
                    sink &+= body()
                    times.append(Date().timeIntervalSince(t0))
                }
                let median = Bench.percentile(times, 0.5), best = Bench.percentile(times, 0)
                print(String(format: "%@: median %.2f ms (%.1f GFLOP/s = %.0f%% of peak), best %.2f ms (%.1f GFLOP/s) (%d)",
                             label, median * 1e3, flops / median / 1e9, 100 * flops / median / 1e9 / peak, best * 1e3, flops / best / 1e9, sink % 2))
            }
            time("RelevanceKernel, \(rows)×\(length)×\(dim), 2 workers") {
                parallelRowsOfProducts(queries: q, keys: packed) { _, r in r[0] > 0 ? 1 : 0 }.reduce(0, +)
            }
            time("OpenBLAS sgemm of the whole (\(rows), \(length)) matrix   ") {
                matmul(q, keys, transposeB: true)[0, 0] > 0 ? 1 : 0
            }
            time("RelevanceKernel + top-\(k) per row                        ") {
                parallelRowsOfProducts(queries: q, keys: packed) { _, r in TopK.indices(r, k: k)[0] }.reduce(0, +)
            }
        }
    }

    struct TopKBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "topk", abstract: "GSU top-K selection: ns per scanned score.")
        @Option(help: "Row length (L).") var length = 4000
        @Option(help: "K.") var k = 50
        @Option(help: "Rows.") var rows = 20000
        @Option(help: "Distinct scores per row, as a fraction of L (histories that repeat items repeat their scores: SampleData's training rows hold ≈ 98 % distinct values, a world whose users re-watch heavily ≈ 26 %; --data times those rows themselves).") var distinct = 1.0
        @Option(help: "Instead of synthetic rows: the rows training sees on this dataset (.missdata) — both GSUs' relevances of every node of --instances training instances (an untrained estimator, as in `bench train`; its first modality stands in for the MM embeddings), L_co 2000, L_mm 4000, d 32.") var data: String?
        @Option(help: "Training instances to take rows from (with --data).") var instances = 64

        func run() throws {
            guard distinct > 0 && distinct <= 1 else { throw ValidationError("--distinct must be in (0, 1]") }
            if let data {
                let coLength = EstimatorConfig().coLength
                guard instances >= 1, k >= 1, k <= coLength else { throw ValidationError("--instances must be ≥ 1 and --k in 1…\(coLength) (L_co)") }
                try runReportingInputErrors { try trainingRows(data) }
                return
            }
            // Plain locals: an @Option read inside the loops costs a generic-metadata lookup per row.
            let length = self.length, k = self.k, rows = self.rows, distinct = self.distinct
            var rng = Xoshiro256StarStar(seed: 1)
            let pool = max(1, Int((Double(length) * distinct).rounded()))
            let data = (0..<64).flatMap { _ -> [Float] in
                if distinct == 1 { return (0..<length).map { _ in rng.nextFloat() } }
                let values = (0..<pool).map { _ in rng.nextFloat() }
                return (0..<length).map { _ in values[rng.nextInt(below: pool)] }
            }
            var sink = 0
            let t0 = Date()
            data.withUnsafeBufferPointer { p in
                for r in 0..<rows {
                    let start = (r % 64) * length
                    sink &+= TopK.indices(UnsafeBufferPointer(rebasing: p[start..<(start + length)]), k: k)[0]
                }
            }
            let dt = Date().timeIntervalSince(t0)
            let t1 = Date()
            var mx: Float = 0
            data.withUnsafeBufferPointer { p in
                for r in 0..<rows {
                    let start = (r % 64) * length
                    var m = -Float.infinity
                    for j in start..<(start + length) { let x = p[j]; m = x > m ? x : m }
                    mx += m
                }
            }
            print(String(format: "(a plain max over the row: %.2f µs per row; %.0f)", Date().timeIntervalSince(t1) / Double(rows) * 1e6, mx))
            print(String(format: "top-%d of %d (%.0f%% distinct): %.2f µs per row, %.2f ns per score (%d)", k, length, 100 * distinct, dt / Double(rows) * 1e6, dt / Double(rows * length) * 1e9, sink % 2))
        }
    }
}

extension Bench.TopKBench {
    /// The top-K of the rows training computes: every node of `instances` level-wise training instances
    /// (the positives and sampled negatives of 4 targets at every level), both GSUs' relevance rows against
    /// the instance's history. Rows are copied 32 at a time into one buffer (as hot in cache as in training,
    /// where the top-K reads a row just computed) and only the top-K is timed.
    func trainingRows(_ path: String) throws {
        let k = self.k, instances = self.instances
        let (dataset, itemMM, tree) = try Bench.trainingWorld(path)
        var config = EstimatorConfig()
        config.objectives = dataset.objectives.count
        config.topK = k
        let trainerConfig = LevelwiseTrainer.Config()
        let trainer = LevelwiseTrainer(dataset: dataset, tree: tree, users: EvaluationSplit(dataset: dataset, seed: 1).train)
        let estimator = NodeEstimator(config: config, tree: tree, itemMM: itemMM, seed: 1)
        var rng = Xoshiro256StarStar(seed: trainerConfig.seed).derived("levelwise-samples")
        var rows: [[[Float]]] = [[], []]   // Co-GSU, MM-GSU
        for _ in 0..<instances {
            guard let inst = trainer.instance(&rng, config: trainerConfig) else { continue }
            let nodes = trainer.samples(inst, negatives: trainerConfig.negativesPerLevel, objectives: config.objectives, &rng).nodes
            let ctx = estimator.context(history: dataset.behaviourItems[dataset.behaviours(of: inst.user).lowerBound..<inst.cut])
            for node in nodes {
                let (co, mm) = estimator.relevance(ctx, node: node)
                if !co.isEmpty { rows[0].append(co) }
                if !mm.isEmpty { rows[1].append(mm) }
            }
        }
        guard !rows[0].isEmpty else {
            throw InputError(file: path, problem: "no training instance with a history", fix: "Use a dataset whose users have more than 2 behaviours")
        }
        var sink = 0
        for (g, name) in ["Co-GSU", "MM-GSU"].enumerated() {
            let mine = rows[g]
            let longest = mine.map(\.count).max() ?? 0
            var scratch = [Float](repeating: 0, count: 32 * max(1, longest))
            var best = Double.infinity
            for _ in 0..<3 {
                var elapsed: UInt64 = 0
                for c in stride(from: 0, to: mine.count, by: 32) {
                    let chunk = mine[c..<min(mine.count, c + 32)]
                    var offsets: [Int] = [], o = 0
                    scratch.withUnsafeMutableBufferPointer { b in
                        for r in chunk {
                            _ = UnsafeMutableBufferPointer(rebasing: b[o..<(o + r.count)]).initialize(fromContentsOf: r)
                            offsets.append(o)
                            o += r.count
                        }
                    }
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    scratch.withUnsafeBufferPointer { b in
                        for (j, r) in chunk.enumerated() {
                            let top = TopK.indices(UnsafeBufferPointer(rebasing: b[offsets[j]..<(offsets[j] + r.count)]), k: k)
                            sink &+= top.first ?? 0
                        }
                    }
                    elapsed += DispatchTime.now().uptimeNanoseconds - t0
                }
                best = min(best, Double(elapsed) / 1e9)
            }
            let scores = mine.reduce(0) { $0 + $1.count }
            let distinct = mine.reduce(0.0) { $0 + Double(Set($1).count) / Double($1.count) } / Double(mine.count)
            print(String(format: "%@ rows of %@ training: top-%d of %d rows (mean L %.0f, %.0f%% distinct scores, %.0f%% shorter than 2K): %.2f µs per row, %.2f ns per score (best of 3; %d)",
                         name, dataset.name, k, mine.count, Double(scores) / Double(mine.count), 100 * distinct,
                         100 * Double(mine.filter { $0.count < 2 * k }.count) / Double(mine.count),
                         best / Double(mine.count) * 1e6, best / Double(scores) * 1e9, sink % 2))
        }
    }
}
