/// An error in something a user gave us (a file, an id, a flag): it names the file, the place in
/// it (line, field or tensor), what is wrong, and what to do about it.
public struct InputError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var location: String?
    public var problem: String
    public var fix: String

    public init(file: String, location: String? = nil, problem: String, fix: String) {
        self.file = file
        self.location = location
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        "\(file)\(location.map { ", \($0)" } ?? ""): \(problem). \(fix)"
    }
}

extension InputError {
    /// A safetensors file's problem as an input error of `file` (the file, and the tensor as the location).
    public init(file: String, safetensors e: SafetensorsError, fix: String) {
        self.init(file: file, location: e.tensor.map { "tensor '\($0)'" }, problem: e.problem, fix: fix)
    }
}
