import Foundation
import MISSCore

/// The binary dataset file (`.missdata`): a safetensors file, so Python can read it too.
/// Strings are UTF-8 tensors with offsets; names and lists of names live in `__metadata__`.
///
/// Version 2 adds the item annotations (`annotation.users`, `annotation.items`, `annotation.texts`).
/// A dataset without annotations is written as version 1, whose layout has no place for them: the
/// same bytes as before they existed (SampleData stays as committed) and readable by older `miss`.
/// Loading a version-1 file gives a dataset without annotations.
extension Dataset {
    public static let cacheFormat = "miss-dataset"
    /// The newest version this code reads and writes.
    public static let cacheVersion = 2
    /// The version a dataset is written as: the oldest whose layout holds all of it.
    public var cacheVersionNeeded: Int { itemAnnotations.isEmpty ? 1 : 2 }

    public func cacheData() -> Data {
        var w = SafetensorsWriter(metadata: [
            "format": Self.cacheFormat,
            "version": String(cacheVersionNeeded),
            "name": name,
            "objectives": jsonArray(objectives),
            "modalities": jsonArray(modalities.map(\.name)),
        ])
        w.add("item.ids", strings: itemIDs)
        w.add("item.titles", strings: itemTitles)
        w.add("item.texts", strings: itemTexts)
        w.add("item.categories", int32s: itemCategories, shape: [itemCount])
        w.add("category.names", strings: categoryNames)
        for m in modalities { w.add("modality.\(m.name)", matrix: m.values) }
        w.add("user.ids", strings: userIDs)
        w.add("user.offsets", int64s: userOffsets.map(Int64.init), shape: [userOffsets.count])
        w.add("behaviour.items", int32s: behaviourItems, shape: [behaviourCount])
        // Times are stored as 32-bit offsets from the earliest when they fit (halves the file).
        let t0 = behaviourTimes.min() ?? 0
        if let t1 = behaviourTimes.max(), t1 - t0 < Int64(Int32.max) {
            w.metadata["time_base"] = String(t0)
            w.add("behaviour.time_offsets", int32s: behaviourTimes.map { Int32($0 - t0) }, shape: [behaviourCount])
        } else {
            w.add("behaviour.times", int64s: behaviourTimes, shape: [behaviourCount])
        }
        w.add("behaviour.labels", uint8s: behaviourLabels, shape: [behaviourCount])
        if !itemAnnotations.isEmpty {
            w.add("annotation.users", int32s: itemAnnotations.users, shape: [itemAnnotations.count])
            w.add("annotation.items", int32s: itemAnnotations.items, shape: [itemAnnotations.count])
            w.add("annotation.texts", strings: itemAnnotations.texts)
        }
        return w.serialized()
    }

    /// Writes the dataset atomically.
    public func write(to url: URL) throws {
        try AtomicWrite.write(cacheData(), to: url)
    }

    /// Loads and validates a dataset file; every problem names the file and the field.
    public static func load(from url: URL) throws -> Dataset {
        let path = url.path
        let f: SafetensorsFile
        do {
            f = try SafetensorsFile(path: path)
        } catch let e as MappedFile.Failure {
            throw InputError(file: path, problem: e.reason, fix: "Create it with `miss synth` or `miss import`")
        } catch let e as SafetensorsError {
            throw InputError(file: path, safetensors: e, fix: "Re-create the file with `miss synth` or `miss import`")
        }
        guard f.metadata["format"] == cacheFormat else {
            throw InputError(file: path, location: "__metadata__.format",
                             problem: "is '\(f.metadata["format"] ?? "missing")', not a MISS dataset",
                             fix: "Pass a file written by `miss synth` or `miss import`")
        }
        guard let version = f.metadata["version"].flatMap(Int.init), (1...cacheVersion).contains(version) else {
            throw InputError(file: path, location: "__metadata__.version",
                             problem: "dataset format version \(f.metadata["version"] ?? "missing") is not a supported version (1 to \(cacheVersion))",
                             fix: "Re-create the file with this version of `miss` (synth or import)")
        }
        func meta(_ key: String) throws -> [String] {
            guard let s = f.metadata[key], let a = try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String] else {
                throw InputError(file: path, location: "__metadata__.\(key)", problem: "missing or not a JSON list of strings",
                                 fix: "Re-create the file with `miss synth` or `miss import`")
            }
            return a
        }
        do {
            let items = try f.strings("item.ids")
            let times: [Int64]
            if let base = f.metadata["time_base"].flatMap(Int64.init) {
                times = try f.int32s("behaviour.time_offsets").map { base + Int64($0) }
            } else {
                times = try f.int64s("behaviour.times")
            }
            let modalities = try meta("modalities").map { name in
                Modality(name: name, values: try f.matrix("modality.\(name)"))
            }
            let annotations = version >= 2
                ? ItemAnnotations(users: try f.int32s("annotation.users"), items: try f.int32s("annotation.items"),
                                  texts: try f.strings("annotation.texts"))
                : ItemAnnotations()
            let d = Dataset(
                name: f.metadata["name"] ?? url.deletingPathExtension().lastPathComponent,
                objectives: try meta("objectives"),
                itemIDs: items, itemTitles: try f.strings("item.titles"), itemTexts: try f.strings("item.texts"),
                itemCategories: try f.int32s("item.categories"), categoryNames: try f.strings("category.names"),
                modalities: modalities, itemAnnotations: annotations, userIDs: try f.strings("user.ids"),
                userOffsets: try f.int64s("user.offsets").map { Int($0) },
                behaviourItems: try f.int32s("behaviour.items"), behaviourTimes: times,
                behaviourLabels: try f.uint8s("behaviour.labels"))
            try d.validate(source: path)
            return d
        } catch let e as SafetensorsError {
            throw InputError(file: path, safetensors: e, fix: "Re-create the file with `miss synth` or `miss import`")
        }
    }
}

func jsonArray(_ strings: [String]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: strings, options: [.withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}
