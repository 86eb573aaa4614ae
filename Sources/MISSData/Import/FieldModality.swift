import Foundation
import MISSCore

/// The content modality made of chosen `.item` fields (`miss import recbole --modality-fields`),
/// the RecBole counterpart of MovieLens's genre/year modality: one block of columns per field, in
/// the order the fields are named.
///
/// - token / token_seq: multi-hot over the field's vocabulary (every token any item has, sorted);
///   an item without a value has no 1 in the block. A token_seq is split on spaces.
/// - float / float_seq: each value standardised over the items that have one, (v − mean) / std with
///   the population std, so that numbers of any scale weigh like the multi-hot columns. A missing
///   value (an empty field) is 0, the mean: it says nothing either way. A column whose values are
///   all equal is 0 everywhere: it tells the items apart in nothing.
enum FieldModality {
    static let name = "fields"

    /// One field's text for every item, in `.item` order, with the line it came from (for errors).
    struct Column {
        let field: RecBoleImporter.Field
        var values: [(line: Int, text: String)] = []
    }

    static func build(_ columns: [Column], path: String) throws -> Matrix {
        let values = Matrix.hstack(try columns.map { try encode($0, path: path) })
        guard values.cols > 0 else {
            throw InputError(file: path, location: "fields \(columns.map { "'\($0.field.name)'" }.joined(separator: ", "))",
                             problem: "have no value for any item, so the modality would have no columns",
                             fix: "Name fields that hold values in --modality-fields")
        }
        return values
    }

    static func encode(_ c: Column, path: String) throws -> Matrix {
        switch c.field.type {
        case "token":
            return multiHot(c.values.map { v in
                let t = v.text.trimmingCharacters(in: .whitespaces)
                return t.isEmpty ? [] : [t]
            })
        case "token_seq":
            return multiHot(c.values.map { $0.text.split(separator: " ").map(String.init) })
        default:
            let (numbers, width) = try parseNumbers(c, path: path)
            return standardized(numbers, width: width)
        }
    }

    /// Column j (of the sorted vocabulary) is 1 when the item has token j.
    static func multiHot(_ tokens: [[String]]) -> Matrix {
        let vocabulary = Array(Set(tokens.joined())).sorted()
        let column = Dictionary(uniqueKeysWithValues: vocabulary.enumerated().map { ($1, $0) })
        var m = Matrix(rows: tokens.count, cols: vocabulary.count)
        for (i, item) in tokens.enumerated() {
            for t in item { m[i, column[t]!] = 1 }
        }
        return m
    }

    /// The numbers of every item (nil when the field is empty) and how many each has: one for a
    /// float field, the count of the first non-empty value for a float_seq, which every other
    /// non-empty value must match.
    static func parseNumbers(_ c: Column, path: String) throws -> (values: [[Double]?], width: Int) {
        var width: Int? = c.field.type == "float" ? 1 : nil
        let values: [[Double]?] = try c.values.map { v in
            let tokens = v.text.split(separator: " ")
            if tokens.isEmpty { return nil }
            let location = "line \(v.line), field '\(c.field.name)'"
            let numbers = try tokens.map { tok -> Double in
                guard let x = Double(tok), x.isFinite else {
                    throw InputError(file: path, location: location, problem: "'\(tok)' is not a number",
                                     fix: "Fix the value or remove that line")
                }
                return x
            }
            let expected = width ?? numbers.count
            guard numbers.count == expected else {
                throw InputError(file: path, location: location,
                                 problem: "has \(numbers.count) numbers where \(c.field.type == "float" ? "a float field holds one" : "earlier items have \(expected)")",
                                 fix: c.field.type == "float" ? "Write one number, or declare the field float_seq"
                                                              : "Give every item the same number of values, or leave the field empty")
            }
            width = expected
            return numbers
        }
        return (values, width ?? 0)
    }

    /// Column-wise (v − mean) / std over the items that have values; 0 where missing or std is 0.
    static func standardized(_ values: [[Double]?], width: Int) -> Matrix {
        var m = Matrix(rows: values.count, cols: width)
        let present = values.enumerated().compactMap { i, v in v.map { (i, $0) } }
        guard !present.isEmpty else { return m }
        for c in 0..<width {
            let column = present.map { $0.1[c] }
            let mean = column.reduce(0, +) / Double(column.count)
            let std = (column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.count)).squareRoot()
            guard std > 0 else { continue }
            for (i, v) in present { m[i, c] = Float((v[c] - mean) / std) }
        }
        return m
    }
}
