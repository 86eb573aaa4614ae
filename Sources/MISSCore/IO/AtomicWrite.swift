import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one way this project writes files: to a temporary sibling, fsync, then rename over the
/// destination. A crash or an error leaves either the old file or the new one, never half of one.
public enum AtomicWrite {
    public struct Failure: Error, CustomStringConvertible {
        public let path: String
        public let operation: String
        public let errno: Int32
        public var description: String {
            "cannot write \(path): \(operation) failed: \(String(cString: strerror(errno))). "
                + "Check that the folder exists and is writable, and that the disk has space."
        }
    }

    /// Writes `data` to `url` atomically (temporary file in the same folder, fsync, rename, fsync folder).
    public static func write(_ data: Data, to url: URL) throws {
        let dest = url.standardizedFileURL.path
        let dir = (dest as NSString).deletingLastPathComponent
        let tmp = temporarySibling(of: dest, kind: "tmp")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(path: dest, operation: "creating \(tmp)", errno: errno) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw Failure(path: dest, operation: "write", errno: errno)
                    }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw Failure(path: dest, operation: "fsync", errno: errno) }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw Failure(path: dest, operation: "close", errno: errno) }
        guard rename(tmp, dest) == 0 else { throw Failure(path: dest, operation: "rename", errno: errno) }
        ok = true
        syncDirectory(dir)
    }

    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }

    /// Builds a directory atomically: `fill` writes into a fresh temporary sibling directory,
    /// which then replaces `url` (an existing directory there is moved aside and removed only
    /// after the new one is in place). If `fill` throws, nothing at `url` changes.
    public static func writeDirectory(at url: URL, _ fill: (URL) throws -> Void) throws {
        let dest = url.standardizedFileURL.path
        let parent = (dest as NSString).deletingLastPathComponent
        let fm = FileManager.default
        if !parent.isEmpty, !fm.fileExists(atPath: parent) {
            try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        let tmp = temporarySibling(of: dest, kind: "tmpdir")
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        do {
            try fill(URL(fileURLWithPath: tmp, isDirectory: true))
            syncDirectory(tmp)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        var old: String?
        if fm.fileExists(atPath: dest) {
            let aside = temporarySibling(of: dest, kind: "old")
            guard rename(dest, aside) == 0 else {
                let e = errno
                try? fm.removeItem(atPath: tmp)
                throw Failure(path: dest, operation: "moving the previous version aside", errno: e)
            }
            old = aside
        }
        guard rename(tmp, dest) == 0 else {
            let e = errno
            if let old { rename(old, dest) }
            try? fm.removeItem(atPath: tmp)
            throw Failure(path: dest, operation: "rename", errno: e)
        }
        syncDirectory(parent.isEmpty ? "." : parent)
        if let old { try? fm.removeItem(atPath: old) }
    }

    private static func temporarySibling(of path: String, kind: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        var rng = SystemRandomNumberGenerator()
        let tag = String(UInt32.random(in: .min ... .max, using: &rng), radix: 36)
        return (dir.isEmpty ? "" : dir + "/") + ".\(name).\(kind).\(getpid()).\(tag)"
    }

    private static func syncDirectory(_ dir: String) {
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
