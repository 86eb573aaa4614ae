import ArgumentParser
import MISSCore

@main
struct Miss: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "miss",
        abstract: "MISS Explorer: multi-modal tree indexing and searching with lifelong sequences.",
        discussion: """
            Implements the MISS retrieval model (multi-modal index tree, Co-GSU and MM-GSU, ESU, MMoE, \
            level-wise training, beam search) and tools to inspect it.
            """,
        version: MISSVersion.string,
        subcommands: [Synth.self, Import.self, Embed.self, BuildTree.self, TreeCommand.self, Train.self, Retrieve.self, Bench.self]
    )
}
