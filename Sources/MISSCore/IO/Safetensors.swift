import Foundation

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N,
/// N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`,
/// then the data buffer; offsets are relative to the buffer's start.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }
}

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case truncated(path: String, detail: String)
    case invalidHeader(path: String, detail: String)
    case invalidTensor(path: String, tensor: String, detail: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case overlapping(path: String, tensor: String, other: String)
    case sizeMismatch(path: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    case missingTensor(path: String, tensor: String)
    case wrongDType(path: String, tensor: String, expected: String, actual: String)
    case wrongShape(path: String, tensor: String, expected: [Int], actual: [Int])

    /// The tensor the problem is in, if it is in one.
    public var tensor: String? {
        switch self {
        case .truncated, .invalidHeader: return nil
        case let .invalidTensor(_, t, _), let .unknownDType(_, t, _), let .overlapping(_, t, _),
             let .sizeMismatch(_, t, _, _), let .missingTensor(_, t), let .wrongDType(_, t, _, _), let .wrongShape(_, t, _, _):
            return t
        }
    }

    /// What is wrong, without the file, the tensor or what to do (`InputError(file:safetensors:fix:)` adds those).
    public var problem: String {
        switch self {
        case let .truncated(_, d): return "truncated safetensors file: \(d)"
        case let .invalidHeader(_, d): return "invalid safetensors header: \(d)"
        case let .invalidTensor(_, _, d): return d
        case let .unknownDType(_, _, d): return "unknown dtype '\(d)' (known: \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .overlapping(_, _, o): return "overlaps tensor '\(o)' in the data buffer"
        case let .sizeMismatch(_, _, x, a): return "dtype and shape need \(x) bytes but data_offsets span \(a)"
        case .missingTensor: return "no such tensor (is this the right file for this version of miss?)"
        case let .wrongDType(_, _, x, a): return "has dtype \(a), expected \(x)"
        case let .wrongShape(_, _, x, a): return "has shape \(a), expected \(x)"
        }
    }

    public var path: String {
        switch self {
        case let .truncated(p, _), let .invalidHeader(p, _), let .invalidTensor(p, _, _), let .unknownDType(p, _, _),
             let .overlapping(p, _, _), let .sizeMismatch(p, _, _, _), let .missingTensor(p, _),
             let .wrongDType(p, _, _, _), let .wrongShape(p, _, _, _):
            return p
        }
    }

    public var description: String {
        let fix: String
        switch self {
        case .missingTensor, .wrongDType, .wrongShape, .unknownDType: fix = "Write it again with the command that made it."
        default: fix = "The file is damaged or was not written as safetensors; write it again with the command that made it."
        }
        return "\(path)\(tensor.map { ", tensor '\($0)'" } ?? ""): \(problem). \(fix)"
    }
}

public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range within the data buffer.
    public let begin: Int
    public let end: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A validated, memory-mapped safetensors file. Tensors are converted to Swift arrays on access.
public struct SafetensorsFile: Sendable {
    public let path: String
    public let metadata: [String: String]
    public let tensors: [String: SafetensorsTensorInfo]
    private let file: MappedFile
    private let dataStart: Int

    /// Header larger than this is treated as corrupt (the reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        file = try MappedFile(path: path)
        self.path = path
        guard file.size >= 8 else {
            throw SafetensorsError.truncated(path: path, detail: "\(file.size) bytes, the 8-byte header length is missing")
        }
        let headerLength = file.withBytes(0..<8) { raw in
            (0..<8).reduce(UInt64(0)) { $0 | (UInt64(raw[$1]) << (8 * UInt64($1))) }
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw SafetensorsError.invalidHeader(path: path, detail: "header length \(headerLength) exceeds \(Self.maxHeaderBytes) bytes")
        }
        guard 8 + Int(headerLength) <= file.size else {
            throw SafetensorsError.truncated(path: path, detail: "header claims \(headerLength) bytes but the file has \(file.size - 8) after the length")
        }
        dataStart = 8 + Int(headerLength)
        let headerData = file.withBytes(8..<dataStart) { Data($0) }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw SafetensorsError.invalidHeader(path: path, detail: "header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw SafetensorsError.invalidHeader(path: path, detail: "header JSON is not an object")
        }
        var metadata: [String: String] = [:]
        var tensors: [String: SafetensorsTensorInfo] = [:]
        let bufferSize = file.size - dataStart
        // In name order, so that a file with several faults always reports the same one.
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw SafetensorsError.invalidHeader(path: path, detail: "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw SafetensorsError.invalidHeader(path: path, detail: "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            tensors[name] = try Self.parseTensor(name: name, value, path: path)
        }
        // Data that runs past the end of the file: a file cut short (the usual way) or an offset damaged.
        if let last = tensors.values.max(by: { ($0.end, $1.name) < ($1.end, $0.name) }), last.end > bufferSize {
            throw SafetensorsError.truncated(path: path, detail: "its header places tensor '\(last.name)' at data bytes \(last.begin)..<\(last.end), "
                                             + "but the file holds \(bufferSize) bytes of data (\(last.end - bufferSize) missing)")
        }
        // Non-overlapping: sort by begin and compare neighbours (empty tensors cannot overlap).
        let ordered = tensors.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.begin < a.end {
            throw SafetensorsError.overlapping(path: path, tensor: a.name, other: b.name)
        }
        self.metadata = metadata
        self.tensors = tensors
    }

    private static func parseTensor(name: String, _ value: Any, path: String) throws -> SafetensorsTensorInfo {
        guard let entry = value as? [String: Any] else {
            throw SafetensorsError.invalidTensor(path: path, tensor: name, detail: "entry is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw SafetensorsError.invalidTensor(path: path, tensor: name, detail: "missing string field 'dtype'")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let shapeAny = entry["shape"] as? [Any], let shape = integers(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
            throw SafetensorsError.invalidTensor(path: path, tensor: name, detail: "field 'shape' is not a list of non-negative integers")
        }
        guard let offAny = entry["data_offsets"] as? [Any], let offsets = integers(offAny), offsets.count == 2 else {
            throw SafetensorsError.invalidTensor(path: path, tensor: name, detail: "field 'data_offsets' is not [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, end >= begin else {
            throw SafetensorsError.invalidTensor(path: path, tensor: name, detail: "data_offsets [\(begin), \(end)] are not 0 ≤ begin ≤ end")
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        let expected = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, !expected.overflow, expected.partialValue == end - begin else {
            throw SafetensorsError.sizeMismatch(path: path, tensor: name,
                                                expectedBytes: overflow ? Int.max : expected.partialValue, actualBytes: end - begin)
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// JSON numbers arrive as NSNumber; accept only exact non-fractional values. (Foundation on
    /// Linux bridges 0 and 1 to Bool as well, so booleans cannot be told apart here; a stray
    /// `true` in a shape still fails the byte-size check.)
    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    public var names: [String] { tensors.keys.sorted() }

    public func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let t = tensors[name] else { throw SafetensorsError.missingTensor(path: path, tensor: name) }
        return t
    }

    private func bytes<R>(_ t: SafetensorsTensorInfo, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        file.withBytes((dataStart + t.begin)..<(dataStart + t.end), body)
    }

    /// Float values of a F32 or F16 tensor (F16 widened to Float).
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        switch t.dtype {
        case .f32:
            return bytes(t) { raw in copyLittleEndian(raw, count: t.elementCount, as: Float.self) }
        case .f16:
            return bytes(t) { raw in (0..<t.elementCount).map { Half.toFloat(raw.loadLE(UInt16.self, at: $0 * 2)) } }
        default:
            throw SafetensorsError.wrongDType(path: path, tensor: name, expected: "F32 or F16", actual: t.dtype.rawValue)
        }
    }

    public func int32s(_ name: String) throws -> [Int32] {
        let t = try info(name)
        guard t.dtype == .i32 else { throw SafetensorsError.wrongDType(path: path, tensor: name, expected: "I32", actual: t.dtype.rawValue) }
        return bytes(t) { raw in copyLittleEndian(raw, count: t.elementCount, as: Int32.self) }
    }

    public func uint8s(_ name: String) throws -> [UInt8] {
        let t = try info(name)
        guard t.dtype == .u8 else { throw SafetensorsError.wrongDType(path: path, tensor: name, expected: "U8", actual: t.dtype.rawValue) }
        return bytes(t) { Array($0) }
    }

    /// A list of strings stored by `SafetensorsWriter.add(_:strings:)`.
    public func strings(_ name: String) throws -> [String] {
        let bytes = try uint8s("\(name).utf8")
        let offsets = try int64s("\(name).offsets")
        guard let last = offsets.last, last == Int64(bytes.count), offsets.first == 0,
              zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw SafetensorsError.invalidTensor(path: path, tensor: "\(name).offsets", detail: "string offsets are not increasing from 0 to \(bytes.count)")
        }
        return (0..<(offsets.count - 1)).map { i in
            String(decoding: bytes[Int(offsets[i])..<Int(offsets[i + 1])], as: UTF8.self)
        }
    }

    public func int64s(_ name: String) throws -> [Int64] {
        let t = try info(name)
        guard t.dtype == .i64 else { throw SafetensorsError.wrongDType(path: path, tensor: name, expected: "I64", actual: t.dtype.rawValue) }
        return bytes(t) { raw in copyLittleEndian(raw, count: t.elementCount, as: Int64.self) }
    }

    /// A 2-D float tensor as a Matrix (a 1-D tensor becomes one row). `shape`, if given, is checked.
    public func matrix(_ name: String, shape expected: [Int]? = nil) throws -> Matrix {
        let t = try info(name)
        if let expected, expected != t.shape {
            throw SafetensorsError.wrongShape(path: path, tensor: name, expected: expected, actual: t.shape)
        }
        let values = try floats(name)
        switch t.shape.count {
        case 0: return Matrix(rows: 1, cols: 1, storage: values)
        case 1: return Matrix(rows: 1, cols: t.shape[0], storage: values)
        case 2: return Matrix(rows: t.shape[0], cols: t.shape[1], storage: values)
        default:
            throw SafetensorsError.wrongShape(path: path, tensor: name, expected: [-1, -1], actual: t.shape)
        }
    }
}

#if _endian(big)
#error("safetensors data is little-endian; this reader copies it as is and supports little-endian hosts only")
#endif

/// Copies `count` little-endian values out of the (possibly unaligned) mapped bytes.
private func copyLittleEndian<T>(_ raw: UnsafeRawBufferPointer, count: Int, as: T.Type) -> [T] {
    precondition(raw.count == count * MemoryLayout<T>.stride, "byte count does not match element count")
    return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw) }
        initialized = count
    }
}

extension UnsafeRawBufferPointer {
    /// Little-endian load at any alignment (safetensors does not promise aligned offsets).
    @inline(__always)
    func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// Builds a safetensors file. Tensors are laid out in name order and the header is written with
/// sorted keys, so the same tensors give the same bytes.
public struct SafetensorsWriter {
    private struct Entry { let dtype: SafetensorsDType; let shape: [Int]; let data: Data }
    private var entries: [String: Entry] = [:]
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        precondition(shape.reduce(1, *) == floats.count, "tensor \(name): shape \(shape) does not hold \(floats.count) values")
        var d = Data(capacity: floats.count * 4)
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        add(name, dtype: .f32, shape: shape, data: d)
    }

    public mutating func add(_ name: String, matrix: Matrix) {
        add(name, floats: matrix.storage, shape: [matrix.rows, matrix.cols])
    }

    public mutating func add(_ name: String, int32s: [Int32], shape: [Int]) {
        precondition(shape.reduce(1, *) == int32s.count, "tensor \(name): shape \(shape) does not hold \(int32s.count) values")
        var d = Data(capacity: int32s.count * 4)
        for v in int32s { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        add(name, dtype: .i32, shape: shape, data: d)
    }

    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) {
        precondition(shape.reduce(1, *) == int64s.count, "tensor \(name): shape \(shape) does not hold \(int64s.count) values")
        var d = Data(capacity: int64s.count * 8)
        for v in int64s { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        add(name, dtype: .i64, shape: shape, data: d)
    }

    public mutating func add(_ name: String, uint8s: [UInt8], shape: [Int]) {
        precondition(shape.reduce(1, *) == uint8s.count, "tensor \(name): shape \(shape) does not hold \(uint8s.count) values")
        add(name, dtype: .u8, shape: shape, data: Data(uint8s))
    }

    /// Strings as two tensors: `<name>.utf8` (U8, concatenated) and `<name>.offsets` (I64, count + 1).
    public mutating func add(_ name: String, strings: [String]) {
        var bytes: [UInt8] = []
        var offsets: [Int64] = [0]
        offsets.reserveCapacity(strings.count + 1)
        for s in strings {
            bytes.append(contentsOf: s.utf8)
            offsets.append(Int64(bytes.count))
        }
        add("\(name).utf8", uint8s: bytes, shape: [bytes.count])
        add("\(name).offsets", int64s: offsets, shape: [offsets.count])
    }

    private mutating func add(_ name: String, dtype: SafetensorsDType, shape: [Int], data: Data) {
        precondition(name != "__metadata__", "'__metadata__' is reserved")
        precondition(entries[name] == nil, "tensor \(name) added twice")
        entries[name] = Entry(dtype: dtype, shape: shape, data: data)
    }

    /// The complete file contents.
    public func serialized() -> Data {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
        }
        var offset = 0
        let names = entries.keys.sorted()
        for name in names {
            let e = entries[name]!
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.data.count)]}")
            offset += e.data.count
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Data(header.utf8)
        // Pad with spaces so that the data buffer starts 8-byte aligned, as the reference writer does.
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var out = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(headerBytes)
        for name in names { out.append(entries[name]!.data) }
        return out
    }

    /// Writes the file atomically.
    public func write(to url: URL) throws {
        try AtomicWrite.write(serialized(), to: url)
    }
}

/// A JSON string literal with the escapes JSON requires.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

/// IEEE 754 binary16 → binary32, written out so that it does not depend on Float16 support.
public enum Half {
    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let frac = UInt32(h & 0x3FF)
        if exp == 0 {
            if frac == 0 { return Float(bitPattern: sign) }
            // Subnormal: value = frac · 2^-24.
            let v = Float(frac) * 0x1p-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
        return Float(bitPattern: sign | (UInt32(exp - 15 + 127) << 23) | (frac << 13))
    }

    /// binary32 → binary16 with round-to-nearest-even (used by tests to make F16 files).
    public static func fromFloat(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        if f.isNaN { return sign | 0x7E00 }
        let a = abs(f)
        if a >= 65520 { return sign | 0x7C00 }
        if a < 0x1p-24 * 0.5 { return sign }
        if a < 0x1p-14 {
            // Subnormal half: round a / 2^-24 to the nearest even integer.
            return sign | UInt16((a * 0x1p24).rounded(.toNearestOrEven))
        }
        let e = Int((bits >> 23) & 0xFF) - 127 + 15
        var m = (bits & 0x7F_FFFF) >> 13
        let rest = bits & 0x1FFF
        var ee = UInt32(e)
        if rest > 0x1000 || (rest == 0x1000 && (m & 1) == 1) {
            m += 1
            if m == 0x400 { m = 0; ee += 1 }
        }
        return sign | UInt16(ee << 10) | UInt16(m)
    }
}
