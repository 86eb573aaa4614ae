import Foundation
import MISSCore

/// A text table (CSV with RFC 4180 quoting, or tab-separated) read whole, with its header, and rows
/// that remember their line numbers so that every error can name the line.
public struct DelimitedFile {
    public let path: String
    public let header: [String]
    public let rows: [(line: Int, fields: [String])]

    public enum Dialect { case csv, tsv }

    public init(path: String, dialect: Dialect) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw InputError(file: path, problem: "no such file", fix: "Check the path (and the dataset folder or name you passed)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError(file: path, problem: "cannot be read", fix: "Check its permissions")
        }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first, !first.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw InputError(file: path, location: "line 1", problem: "the file is empty (no header line)",
                             fix: "Pass a file with a header line and at least one row")
        }
        var parsed: [(line: Int, fields: [String])] = []
        var i = 0
        while i < lines.count {
            let lineNumber = i + 1
            switch dialect {
            case .tsv:
                parsed.append((lineNumber, lines[i].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)))
                i += 1
            case .csv:
                // A quoted field may span lines: keep joining until the quotes balance.
                var record = String(lines[i])
                i += 1
                while record.reduce(0, { $0 + ($1 == "\"" ? 1 : 0) }) % 2 == 1 {
                    guard i < lines.count else {
                        throw InputError(file: path, location: "line \(lineNumber)", problem: "a quoted field is never closed",
                                         fix: "Close the quote or remove the stray '\"'")
                    }
                    record += "\n" + lines[i]
                    i += 1
                }
                parsed.append((lineNumber, Self.splitCSV(record)))
            }
        }
        header = parsed[0].1.map { $0.trimmingCharacters(in: .whitespaces) }
        rows = Array(parsed.dropFirst()).filter { !($0.1.count == 1 && $0.1[0].trimmingCharacters(in: .whitespaces).isEmpty) }
    }

    static func splitCSV(_ s: String) -> [String] {
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var it = s.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? it.next() {
            pending = nil
            if inQuotes {
                if c == "\"" {
                    if let n = it.next() {
                        if n == "\"" { field.append("\"") } else { inQuotes = false; pending = n }
                    } else { inQuotes = false }
                } else { field.append(c) }
            } else if c == "\"" {
                inQuotes = true
            } else if c == "," {
                fields.append(field); field = ""
            } else {
                field.append(c)
            }
        }
        fields.append(field)
        return fields
    }

    /// Column index of a header field; a missing one is an error that lists what is there.
    public func column(_ name: String, flag: String? = nil) throws -> Int {
        guard let i = header.firstIndex(of: name) else {
            throw InputError(file: path, location: "line 1 (header)",
                             problem: "has no column '\(name)' (columns: \(header.joined(separator: ", ")))",
                             fix: flag.map { "Name the right column with \($0)" } ?? "Check that this is the right file")
        }
        return i
    }

    /// The field at `column` of a row, or an error naming the line when the row is short.
    public func field(_ row: (line: Int, fields: [String]), _ column: Int) throws -> String {
        guard column < row.fields.count else {
            throw InputError(file: path, location: "line \(row.line)",
                             problem: "has \(row.fields.count) fields, expected \(header.count) ('\(header[column])' is missing)",
                             fix: "Fix or remove that line")
        }
        return row.fields[column]
    }

    /// `name` is how errors call the column (default: its header text).
    public func number(_ row: (line: Int, fields: [String]), _ column: Int, name: String? = nil) throws -> Double {
        let s = try field(row, column).trimmingCharacters(in: .whitespaces)
        guard let v = Double(s), v.isFinite else {
            throw InputError(file: path, location: "line \(row.line), field '\(name ?? header[column])'",
                             problem: "'\(s)' is not a number", fix: "Fix the value or remove that line")
        }
        return v
    }
}
