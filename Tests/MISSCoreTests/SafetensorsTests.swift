import Foundation
import Testing
import MISSCore
import MISSTestSupport

@Suite struct SafetensorsTests {
    func sampleWriter() -> SafetensorsWriter {
        var w = SafetensorsWriter(metadata: ["format": "miss-test", "quote\"d": "line\nbreak"])
        w.add("weights", matrix: Matrix([[1.5, -2, 3], [4, 5.25, -6]]))
        w.add("ids", int32s: [7, -3, 2_000_000_000], shape: [3])
        w.add("offsets", int64s: [0, 1 << 40, -5], shape: [3, 1])
        w.add("empty", floats: [], shape: [0, 4])
        return w
    }

    @Test func roundTrip() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("t.safetensors")
        try sampleWriter().write(to: url)
        let f = try SafetensorsFile(path: url.path)
        #expect(f.metadata == ["format": "miss-test", "quote\"d": "line\nbreak"])
        #expect(f.names == ["empty", "ids", "offsets", "weights"])
        #expect(try f.matrix("weights") == Matrix([[1.5, -2, 3], [4, 5.25, -6]]))
        #expect(try f.int32s("ids") == [7, -3, 2_000_000_000])
        #expect(try f.int64s("offsets") == [0, 1 << 40, -5])
        #expect(try f.info("offsets").shape == [3, 1])
        #expect(try f.floats("empty").isEmpty)
        // Deterministic bytes and an 8-byte aligned data buffer.
        let data = try Data(contentsOf: url)
        #expect(data == sampleWriter().serialized())
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        #expect((8 + n) % 8 == 0)
    }

    @Test func typedAccessorsNameTheProblem() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("t.safetensors")
        try sampleWriter().write(to: url)
        let f = try SafetensorsFile(path: url.path)
        #expect(throws: SafetensorsError.wrongDType(path: url.path, tensor: "ids", expected: "F32 or F16", actual: "I32")) {
            try f.floats("ids")
        }
        #expect(throws: SafetensorsError.missingTensor(path: url.path, tensor: "nope")) { try f.floats("nope") }
        #expect(throws: SafetensorsError.wrongShape(path: url.path, tensor: "weights", expected: [3, 2], actual: [2, 3])) {
            try f.matrix("weights", shape: [3, 2])
        }
    }

    /// Writes a file with a hand-made header and a data buffer of `dataBytes` zero bytes.
    func handMade(_ header: String, dataBytes: Int, in dir: URL, name: String = "bad.safetensors") throws -> String {
        var d = Data()
        let h = Data(header.utf8)
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(h)
        d.append(Data(count: dataBytes))
        let url = dir.appendingPathComponent(name)
        try d.write(to: url)
        return url.path
    }

    func error(opening path: String) -> SafetensorsError? {
        do { _ = try SafetensorsFile(path: path); return nil } catch let e as SafetensorsError { return e } catch { return nil }
    }

    @Test func truncatedFiles() throws {
        let dir = try temporaryDirectory()
        let full = sampleWriter().serialized()
        let cut = dir.appendingPathComponent("cut.safetensors")
        try full.prefix(5).write(to: cut)
        guard case .truncated(let p, _) = error(opening: cut.path) else { Issue.record("5-byte file accepted"); return }
        #expect(p == cut.path)
        // Header length intact, header itself cut.
        try full.prefix(20).write(to: cut)
        guard case .truncated = error(opening: cut.path) else { Issue.record("cut header accepted"); return }
        // Header intact, data cut: the last tensor's offsets now exceed the buffer, and the error says by how much.
        try full.prefix(full.count - 4).write(to: cut)
        guard case .truncated(_, let detail) = error(opening: cut.path), detail.contains("tensor 'weights'"), detail.hasSuffix("(4 missing)") else {
            Issue.record("cut data accepted: \(String(describing: error(opening: cut.path)))"); return
        }
        let empty = dir.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        guard case .truncated = error(opening: empty.path) else { Issue.record("empty file accepted"); return }
        #expect(throws: MappedFile.Failure.self) { try SafetensorsFile(path: dir.appendingPathComponent("missing").path) }
    }

    @Test func badHeaderJSON() throws {
        let dir = try temporaryDirectory()
        let p1 = try handMade("{\"a\": {\"dtype\": \"F32\", ", dataBytes: 0, in: dir)
        guard case .invalidHeader(_, let detail) = error(opening: p1) else { Issue.record("broken JSON accepted"); return }
        #expect(detail.contains("not valid JSON"))
        let p2 = try handMade("[1, 2]", dataBytes: 0, in: dir, name: "array.safetensors")
        guard case .invalidHeader = error(opening: p2) else { Issue.record("array header accepted"); return }
        let p3 = try handMade("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", dataBytes: 8, in: dir, name: "offs.safetensors")
        guard case .invalidTensor(_, "a", _) = error(opening: p3) else { Issue.record("one offset accepted"); return }
    }

    @Test func dataPastTheEndAndOverlap() throws {
        let dir = try temporaryDirectory()
        let p1 = try handMade("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", dataBytes: 8, in: dir)
        #expect(error(opening: p1) == .truncated(path: p1, detail: "its header places tensor 'a' at data bytes 0..<16, but the file holds 8 bytes of data (8 missing)"))
        // Several tensors past the end: the one that ends last is named, whatever the header's order.
        let p3 = try handMade("""
            {"b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "c": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}}
            """, dataBytes: 12, in: dir, name: "cut.safetensors")
        #expect(error(opening: p3) == .truncated(path: p3, detail: "its header places tensor 'c' at data bytes 24..<32, but the file holds 12 bytes of data (20 missing)"))
        let p4 = try handMade("{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", dataBytes: 8, in: dir, name: "inverted.safetensors")
        #expect(error(opening: p4) == .invalidTensor(path: p4, tensor: "a", detail: "data_offsets [8, 4] are not 0 ≤ begin ≤ end"))
        let p2 = try handMade("""
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
            """, dataBytes: 12, in: dir, name: "overlap.safetensors")
        #expect(error(opening: p2) == .overlapping(path: p2, tensor: "a", other: "b"))
    }

    @Test func wrongAndUnknownDTypes() throws {
        let dir = try temporaryDirectory()
        // 4 F32 values need 16 bytes, the offsets span 8.
        let p1 = try handMade("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 8]}}", dataBytes: 8, in: dir)
        #expect(error(opening: p1) == .sizeMismatch(path: p1, tensor: "a", expectedBytes: 16, actualBytes: 8))
        let p2 = try handMade("{\"a\": {\"dtype\": \"Q7\", \"shape\": [2], \"data_offsets\": [0, 8]}}", dataBytes: 8, in: dir, name: "q7.safetensors")
        #expect(error(opening: p2) == .unknownDType(path: p2, tensor: "a", dtype: "Q7"))
        #expect(error(opening: p2)!.description.contains("'a'"))
        // A valid F64 tensor is read fine but refused as floats, naming the dtype.
        let p3 = try handMade("{\"a\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", dataBytes: 8, in: dir, name: "f64.safetensors")
        let f = try SafetensorsFile(path: p3)
        #expect(throws: SafetensorsError.wrongDType(path: p3, tensor: "a", expected: "F32 or F16", actual: "F64")) { try f.floats("a") }
    }

    @Test func halfPrecisionConversions() {
        let cases: [(UInt16, Float)] = [(0x3C00, 1), (0xC000, -2), (0x7BFF, 65504), (0x0001, 0x1p-24),
                                        (0x0400, 0x1p-14), (0x3555, 0.333251953125), (0x8000, -0.0), (0x7C00, .infinity)]
        for (h, f) in cases {
            #expect(Half.toFloat(h) == f, "0x\(String(h, radix: 16))")
            #expect(Half.fromFloat(f) == h, "\(f)")
        }
        #expect(Half.toFloat(0x7E00).isNaN)
    }

    // MARK: Python interop (numpy + safetensors, installed by .ci/run)

    @Test func swiftWrittenFileLoadsInPython() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("swift.safetensors")
        try sampleWriter().write(to: url)
        let out = try Python.run("""
            import json, sys
            from safetensors import safe_open
            from safetensors.numpy import load_file
            t = load_file(sys.argv[1])
            with safe_open(sys.argv[1], framework="np") as f:
                meta = f.metadata()
            print(json.dumps({k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.ravel().tolist()} for k, v in t.items()} | {"__metadata__": meta}, sort_keys=True))
            """, arguments: [url.path])
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let w = json["weights"] as! [String: Any]
        #expect(w["dtype"] as? String == "float32")
        #expect(w["shape"] as? [Int] == [2, 3])
        #expect(w["values"] as? [Double] == [1.5, -2, 3, 4, 5.25, -6])
        let ids = json["ids"] as! [String: Any]
        #expect(ids["dtype"] as? String == "int32" && ids["values"] as? [Int] == [7, -3, 2_000_000_000])
        let offs = json["offsets"] as! [String: Any]
        #expect(offs["dtype"] as? String == "int64" && offs["values"] as? [Int] == [0, 1 << 40, -5])
        #expect(json["__metadata__"] as? [String: String] == ["format": "miss-test", "quote\"d": "line\nbreak"])
    }

    @Test func pythonWrittenFileLoadsInSwift() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("py.safetensors").path
        _ = try Python.run("""
            import sys, numpy as np
            from safetensors.numpy import save_file
            save_file({
                "f32": np.arange(12, dtype=np.float32).reshape(3, 4) / 4 - 1,
                "f16": np.array([1.0, -2.5, 65504.0, 1e-3], dtype=np.float16),
                "i32": np.array([[1, -2], [3, 2147483647]], dtype=np.int32),
                "i64": np.array([-(2**40), 5], dtype=np.int64),
            }, sys.argv[1], metadata={"made_by": "numpy"})
            """, arguments: [path])
        let f = try SafetensorsFile(path: path)
        #expect(f.metadata == ["made_by": "numpy"])
        #expect(try f.matrix("f32") == Matrix(rows: 3, cols: 4, storage: (0..<12).map { Float($0) / 4 - 1 }))
        let h = try f.floats("f16")
        #expect(h[0] == 1 && h[1] == -2.5 && h[2] == 65504)
        #expect(abs(h[3] - 1e-3) < 1e-6)  // 1e-3 is not exact in binary16
        #expect(try f.int32s("i32") == [1, -2, 3, 2_147_483_647])
        #expect(try f.info("i32").shape == [2, 2])
        #expect(try f.int64s("i64") == [-(1 << 40), 5])
    }
}

/// Runs a Python snippet; a missing interpreter or package is a failure that says how to fix it.
enum Python {
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static func run(_ script: String, arguments: [String] = []) throws -> String {
        let r = try runPython(script, arguments)
        guard r.status == 0 else {
            throw Failure(message: "python3 failed (\(r.status)): \(r.stderr)\n"
                + "The reference checks need numpy and safetensors: run `bash scripts/setup.sh` or `pip install numpy safetensors`.")
        }
        return r.stdout
    }
}
