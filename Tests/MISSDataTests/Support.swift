import Foundation
import MISSCore
import MISSData
import MISSTestSupport

/// The repository root (for SampleData) and the shared folder beside it (for real datasets).
enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let movieLens = repository.deletingLastPathComponent().appendingPathComponent("shared/datasets/ml-latest-small")
    static let sampleData = repository.appendingPathComponent("SampleData")
}

func write(_ text: String, to url: URL) throws {
    try Data(text.utf8).write(to: url)
}

/// A small synthetic world for fast tests.
func tinyWorld(seed: UInt64 = 3, items: Int = 600, users: Int = 60) -> Dataset {
    var c = SyntheticWorld.Config()
    c.seed = seed; c.items = items; c.users = users; c.maxLength = 600
    return SyntheticWorld.generate(c).dataset
}
