import Foundation
import MISSCore
import MISSData

func temporaryDirectory(_ label: String = #function) throws -> URL {
    let base = FileManager.default.temporaryDirectory
        .appendingPathComponent("miss-data-tests-\(getpid())-\(label.filter { $0.isLetter || $0.isNumber })-\(UInt32.random(in: 0 ... .max))")
    try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
    return base
}

/// The repository root (for SampleData) and the shared folder beside it (for real datasets).
enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let movieLens = repository.deletingLastPathComponent().appendingPathComponent("shared/datasets/ml-latest-small")
    static let sampleData = repository.appendingPathComponent("SampleData")
}

/// The InputError a throwing call produced (nil if it did not throw one).
func inputError(_ body: () throws -> Void) -> InputError? {
    do { try body(); return nil } catch let e as InputError { return e } catch { return nil }
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
