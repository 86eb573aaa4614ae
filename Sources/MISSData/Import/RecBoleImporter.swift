import Foundation
import MISSCore

/// Imports RecBole atomic files: `<name>.inter` (required), `<name>.item` and `<name>.user`
/// (optional); tab-separated with a `field:type` header (types token, token_seq, float, float_seq).
///
/// Objectives come from a label field and thresholds (`rating ≥ 4` → "liked"); without a label field
/// every interaction counts for the single objective "interaction".
///
/// Content: the text from `.item` token fields; the float and float_seq fields as they are
/// ("features"); and, from the fields named in `modalityFields`, the modality "fields" (multi-hot
/// tokens and standardised numbers: `FieldModality`). A field named there leaves "features".
public enum RecBoleImporter {
    public struct Options: Sendable {
        public var userField = "user_id"
        public var itemField = "item_id"
        public var timeField: String? = "timestamp"
        public var labelField: String? = nil
        /// (objective name, minimum label value); used only with `labelField`.
        public var objectives: [(name: String, threshold: Double)] = [("interaction", -Double.infinity)]
        /// `.item` fields whose tokens form the item text; nil = every token / token_seq field.
        public var textFields: [String]? = nil
        /// `.item` field whose (first) token is the item's category.
        public var categoryField: String? = nil
        /// `.item` fields that form the modality "fields"; empty = no such modality.
        public var modalityFields: [String] = []
        /// Users listed in `.user` without any interaction are an error unless this is set.
        public var dropInactiveUsers = false
        public init() {}
    }

    struct Field { let name: String; let type: String; let column: Int }

    static func fields(_ file: DelimitedFile) throws -> [Field] {
        try file.header.enumerated().map { i, h in
            let parts = h.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["token", "token_seq", "float", "float_seq"].contains(parts[1]) else {
                throw InputError(file: file.path, location: "line 1 (header), column \(i + 1)",
                                 problem: "'\(h)' is not 'name:type' with type token, token_seq, float or float_seq",
                                 fix: "Write the header as RecBole atomic files do, e.g. 'user_id:token'")
            }
            return Field(name: parts[0], type: parts[1], column: i)
        }
    }

    static func find(_ name: String, in fields: [Field], file: DelimitedFile, flag: String) throws -> Field {
        guard let f = fields.first(where: { $0.name == name }) else {
            throw InputError(file: file.path, location: "line 1 (header)",
                             problem: "has no field '\(name)' (fields: \(fields.map(\.name).joined(separator: ", ")))",
                             fix: "Name the right field with \(flag)")
        }
        return f
    }

    /// The `.item` fields named by `--modality-fields`, each once, none of them the item id.
    static func modalityFields(_ names: [String], in fields: [Field], file: DelimitedFile, idField: Field) throws -> [Field] {
        var seen = Set<String>()
        return try names.map { name in
            let f = try find(name, in: fields, file: file, flag: "--modality-fields")
            guard f.name != idField.name else {
                throw InputError(file: file.path, location: "line 1 (header), field '\(name)'",
                                 problem: "is the item id: one column per item tells nothing about an item's content",
                                 fix: "Leave '\(name)' out of --modality-fields")
            }
            guard seen.insert(name).inserted else {
                throw InputError(file: file.path, location: "line 1 (header), field '\(name)'",
                                 problem: "is named twice in --modality-fields", fix: "Name each field once")
            }
            return f
        }
    }

    /// `base` is the path without extension, e.g. `data/ml-100k/ml-100k`.
    public static func load(base: URL, options: Options = Options()) throws -> Dataset {
        let interPath = base.path + ".inter", itemPath = base.path + ".item", userPath = base.path + ".user"
        let inter = try DelimitedFile(path: interPath, dialect: .tsv)
        guard !inter.rows.isEmpty else {
            throw InputError(file: interPath, location: "line 2", problem: "has a header but no interactions",
                             fix: "Pass a .inter file with at least one interaction")
        }
        let interFields = try fields(inter)
        let userF = try find(options.userField, in: interFields, file: inter, flag: "--user-field")
        let itemF = try find(options.itemField, in: interFields, file: inter, flag: "--item-field")
        let timeF = try options.timeField.map { try find($0, in: interFields, file: inter, flag: "--time-field") }
        let labelF = try options.labelField.map { try find($0, in: interFields, file: inter, flag: "--label-field") }
        let objectives = labelF == nil ? [("interaction", -Double.infinity)] : options.objectives
        guard !objectives.isEmpty, objectives.count <= 8 else {
            throw InputError(file: interPath, problem: "\(objectives.count) objectives requested, 1 to 8 are supported",
                             fix: "Pass between one and eight --objective name:threshold flags")
        }

        // Items: from .item when present (then every interaction must name a known item).
        var itemIDs: [String] = [], titles: [String] = [], texts: [String] = [], categories: [Int32] = []
        var categoryNames: [String] = [], categoryIndex: [String: Int32] = [:]
        var modalities: [Modality] = []
        var index: [String: Int] = [:]
        let hasItemFile = FileManager.default.fileExists(atPath: itemPath)
        if !hasItemFile && !options.modalityFields.isEmpty {
            throw InputError(file: itemPath, problem: "no such file, and --modality-fields reads its fields",
                             fix: "Add the .item file, or leave out --modality-fields")
        }
        if hasItemFile {
            let items = try DelimitedFile(path: itemPath, dialect: .tsv)
            let itemFields = try fields(items)
            let idF = try find(options.itemField, in: itemFields, file: items, flag: "--item-field")
            let textFs = try (options.textFields?.map { try find($0, in: itemFields, file: items, flag: "--text-fields") })
                ?? itemFields.filter { ($0.type == "token" || $0.type == "token_seq") && $0.name != idF.name }
            let catF = try options.categoryField.map { try find($0, in: itemFields, file: items, flag: "--category-field") }
            var modalityColumns = try modalityFields(options.modalityFields, in: itemFields, file: items, idField: idF)
                .map { FieldModality.Column(field: $0) }
            let floatFs = itemFields.filter { f in
                (f.type == "float_seq" || f.type == "float") && !modalityColumns.contains { $0.field.name == f.name }
            }
            var floatRows: [[Float]] = []
            for row in items.rows {
                let id = try items.field(row, idF.column)
                guard index[id] == nil else {
                    throw InputError(file: itemPath, location: "line \(row.line)", problem: "item '\(id)' appears twice",
                                     fix: "Remove the duplicate line")
                }
                index[id] = itemIDs.count
                itemIDs.append(id)
                let parts = try textFs.map { try items.field(row, $0.column) }.filter { !$0.isEmpty }
                titles.append(parts.first ?? id)
                texts.append(parts.joined(separator: ". "))
                if let catF {
                    let c = try items.field(row, catF.column).split(separator: " ").first.map(String.init) ?? ""
                    if c.isEmpty { categories.append(-1) } else {
                        if categoryIndex[c] == nil { categoryIndex[c] = Int32(categoryNames.count); categoryNames.append(c) }
                        categories.append(categoryIndex[c]!)
                    }
                } else { categories.append(-1) }
                for c in modalityColumns.indices {
                    modalityColumns[c].values.append((row.line, try items.field(row, modalityColumns[c].field.column)))
                }
                var values: [Float] = []
                for f in floatFs {
                    let s = try items.field(row, f.column)
                    for tok in s.split(separator: " ") {
                        guard let v = Float(tok), v.isFinite else {
                            throw InputError(file: itemPath, location: "line \(row.line), field '\(f.name)'",
                                             problem: "'\(tok)' is not a number", fix: "Fix the value or remove that line")
                        }
                        values.append(v)
                    }
                }
                if let first = floatRows.first, first.count != values.count {
                    throw InputError(file: itemPath, location: "line \(row.line)",
                                     problem: "has \(values.count) float values, earlier rows have \(first.count)",
                                     fix: "Give every item the same number of float_seq values")
                }
                floatRows.append(values)
            }
            guard !itemIDs.isEmpty else {
                throw InputError(file: itemPath, location: "line 2", problem: "has a header but no items", fix: "Add items or remove the .item file")
            }
            if let dim = floatRows.first?.count, dim > 0 {
                modalities.append(Modality(name: "features", values: Matrix(rows: itemIDs.count, cols: dim, storage: floatRows.flatMap { $0 })))
            }
            if !modalityColumns.isEmpty {
                modalities.append(Modality(name: FieldModality.name, values: try FieldModality.build(modalityColumns, path: itemPath)))
            }
        }

        var builder = BehaviourTableBuilder()
        for row in inter.rows {
            let user = try inter.field(row, userF.column)
            let id = try inter.field(row, itemF.column)
            let item: Int
            if let known = index[id] {
                item = known
            } else if hasItemFile {
                throw InputError(file: interPath, location: "line \(row.line), field '\(itemF.name)'",
                                 problem: "item '\(id)' is not in \(itemPath)", fix: "Add it to the .item file or remove the line")
            } else {
                item = itemIDs.count
                index[id] = item
                itemIDs.append(id); titles.append(id); texts.append(id); categories.append(-1)
            }
            let time = try timeF.map { Int64(try inter.number(row, $0.column, name: $0.name)) } ?? Int64(row.line)
            var labels: UInt8 = 0
            if let labelF {
                let v = try inter.number(row, labelF.column, name: labelF.name)
                for (t, o) in objectives.enumerated() where v >= o.1 { labels |= 1 << UInt8(t) }
            } else {
                labels = 1
            }
            builder.add(user: user, item: item, time: time, labels: labels)
        }
        let table = builder.build()  // users without behaviours never enter the table

        if FileManager.default.fileExists(atPath: userPath) {
            let users = try DelimitedFile(path: userPath, dialect: .tsv)
            let uF = try find(options.userField, in: try fields(users), file: users, flag: "--user-field")
            let active = Set(table.userIDs)
            for row in users.rows {
                let id = try users.field(row, uF.column)
                if !active.contains(id) && !options.dropInactiveUsers {
                    throw InputError(file: userPath, location: "line \(row.line)",
                                     problem: "user '\(id)' has no behaviours in \(interPath)",
                                     fix: "Remove the user, or pass --drop-inactive-users to skip such users")
                }
            }
        }
        return Dataset(
            name: base.lastPathComponent, objectives: objectives.map(\.0),
            itemIDs: itemIDs, itemTitles: titles, itemTexts: texts, itemCategories: categories,
            categoryNames: categoryNames, modalities: modalities,
            userIDs: table.userIDs, userOffsets: table.offsets, behaviourItems: table.items,
            behaviourTimes: table.times, behaviourLabels: table.labels)
    }
}
