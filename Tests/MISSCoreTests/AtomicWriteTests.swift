import Foundation
import Testing
import MISSCore
import MISSTestSupport

@Suite struct AtomicWriteTests {
    struct Boom: Error {}

    @Test func writesAndReplacesFilesLeavingNoTemporaries() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("a.txt")
        try AtomicWrite.write("first", to: url)
        try AtomicWrite.write("second", to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "second")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.txt"])
    }

    @Test func failingToWriteNamesTheFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent-dir-\(getpid())/x.bin")
        do {
            try AtomicWrite.write("x", to: url)
            Issue.record("write into a missing folder succeeded")
        } catch let e as AtomicWrite.Failure {
            #expect(e.description.contains(url.path))
        }
    }

    @Test func directoryIsReplacedWholeOrNotAtAll() throws {
        let dir = try temporaryDirectory()
        let bundle = dir.appendingPathComponent("bundle")
        try AtomicWrite.writeDirectory(at: bundle) { tmp in
            try AtomicWrite.write("v1", to: tmp.appendingPathComponent("manifest.json"))
        }
        #expect(try String(contentsOf: bundle.appendingPathComponent("manifest.json"), encoding: .utf8) == "v1")
        // A failure halfway leaves the old version untouched and no temporary folder behind.
        #expect(throws: Boom.self) {
            try AtomicWrite.writeDirectory(at: bundle) { tmp in
                try AtomicWrite.write("v2", to: tmp.appendingPathComponent("manifest.json"))
                throw Boom()
            }
        }
        #expect(try String(contentsOf: bundle.appendingPathComponent("manifest.json"), encoding: .utf8) == "v1")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["bundle"])
        try AtomicWrite.writeDirectory(at: bundle) { tmp in
            try AtomicWrite.write("v3", to: tmp.appendingPathComponent("other.json"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: bundle.path) == ["other.json"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["bundle"])
    }
}
