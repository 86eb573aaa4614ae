import ArgumentParser
import Foundation
import MISSCore

@main
enum Entry {
    static func main() {
        OpenBLASEnvironment.reexecIfNeeded()
        Miss.main()
    }
}

/// OpenBLAS reads its environment once, when the library loads, before any Swift code runs. Its
/// idle worker threads spin (sched_yield) for about 2^28 cycles after each call by default, which
/// starves the Swift work that runs between BLAS calls on a 2-core machine (measured: beam search
/// 655 → 398 ms per request with the timeout at its minimum). So `miss` sets
/// OPENBLAS_THREAD_TIMEOUT=4 and, if it was not set already, re-executes itself once with it.
enum OpenBLASEnvironment {
    static func reexecIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_THREAD_TIMEOUT"] == nil, env["MISS_NO_REEXEC"] == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        setenv("MISS_NO_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cArgs = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        // exec failed (no /proc?): carry on with OpenBLAS's defaults.
        for p in cArgs { free(p) }
    }
}

struct Miss: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "miss",
        abstract: "MISS Explorer: multi-modal tree indexing and searching with lifelong sequences.",
        discussion: """
            Implements the MISS retrieval model (multi-modal index tree, Co-GSU and MM-GSU, ESU, MMoE, \
            level-wise training, beam search) and tools to inspect it.
            """,
        version: MISSVersion.string,
        subcommands: [Synth.self, Import.self, Embed.self, BuildTree.self, TreeCommand.self, Train.self, Retrieve.self, Eval.self, Explore.self, Export.self, Bench.self]
    )
}
