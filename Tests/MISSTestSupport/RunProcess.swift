import Foundation

public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program to completion, feeding `input` on standard input, and collects its output.
public func runProcess(_ executable: URL, _ arguments: [String], input: Data? = nil,
                       environment: [String: String]? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let environment { p.environment = environment }
    let stdin = Pipe(), out = Pipe(), err = Pipe()
    p.standardInput = stdin
    p.standardOutput = out
    p.standardError = err
    try p.run()
    if let input { stdin.fileHandleForWriting.write(input) }
    try stdin.fileHandleForWriting.close()
    // Read both pipes concurrently so that a chatty stderr cannot block the child.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let errHandle = err.fileHandleForReading
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { errBox.data = errHandle.readDataToEndOfFile() }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: errBox.data, as: UTF8.self))
}

/// `python3 -c script args…` through /usr/bin/env.
public func runPython(_ script: String, _ arguments: [String] = [], input: Data? = nil) throws -> ProcessResult {
    try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script] + arguments, input: input)
}
