import Foundation
import Testing

/// Runs the real `miss` binary, built by the same `swift test` invocation.
enum MissBinary {
    static var url: URL {
        // The test bundle lives in the build products folder next to the executable.
        let bundle = Bundle.main.bundleURL
        var dir = bundle
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("miss")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return bundle.deletingLastPathComponent().appendingPathComponent("miss")
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String], environment: [String: String]? = nil) throws -> Result {
        let p = Process()
        p.executableURL = url
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite struct CLITests {
    @Test func versionPrintsTheVersion() throws {
        let r = try MissBinary.run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
    }

    @Test func helpListsTheSubcommands() throws {
        let r = try MissBinary.run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("bench"))
        #expect(r.stdout.contains("USAGE: miss"))
    }

    @Test func unknownSubcommandFailsWithAMessage() throws {
        let r = try MissBinary.run(["frobnicate"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("frobnicate"))
    }

    @Test func benchGemmRejectsANonPositiveDuration() throws {
        let r = try MissBinary.run(["bench", "gemm", "--seconds", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--seconds must be a positive number"))
    }
}
