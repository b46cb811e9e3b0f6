// The one thin wrapper around the C library (libc) for the whole package: files (whole-file reads, and atomic writes:
// a temporary file in the same folder, written, flushed to disk, then renamed over the target), whether a stream is
// a terminal, an environment variable's current value, yielding the processor, and the process's peak memory. Every other file calls these.
//
// C that lives elsewhere, each behind a wrapper of its own named for what it wraps: BLAS (BLAS.swift), the CPU's
// vector width (the CPUFeatures target, asked once in PackedProduct.swift), and GNU readline with the Ctrl-C handler
// (Sources/charlm/ReadlineLineSource.swift and the CReadline shim: only the executable links readline).

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file, with the errors a user can act on.
public func readFileBytes(at path: String) throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw CharLMError.fileNotFound(path: path)
    }
    if isDirectory.boolValue { throw CharLMError.isDirectory(path: path) }
    guard FileManager.default.isReadableFile(atPath: path) else {
        throw CharLMError.unreadable(path: path, reason: "permission denied")
    }
    do {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        return [UInt8](data)
    } catch {
        throw CharLMError.unreadable(path: path, reason: error.localizedDescription)
    }
}

/// The text of the C library's last error.
private func lastErrorText() -> String { String(cString: strerror(errno)) }

/// Writes `bytes` to `path` so that the file is either the old one or the complete new one, never a mixture:
/// a temporary file beside the target is written, flushed to disk and renamed over it. On any failure the temporary
/// file is removed, the target is untouched, and the error says what failed.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try writeFileAtomically(bytes, to: path, failAfterBytes: nil)
}

/// `writeFileAtomically(_:to:)` with a test hook.
///
/// - Parameter failAfterBytes: for tests only: pretend the disk filled up after this many bytes.
func writeFileAtomically(_ bytes: [UInt8], to path: String, failAfterBytes: Int?) throws {
    let target = URL(fileURLWithPath: path)
    let folder = target.deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw CharLMError.saveFailed(path: path, reason: "it is a directory")
    }
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw CharLMError.saveFailed(path: path, reason: "the folder '\(folder)' does not exist")
    }
    let temporary = folder + "/." + target.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard descriptor >= 0 else {
        throw CharLMError.saveFailed(path: path, reason: "cannot create a file in '\(folder)': \(lastErrorText())")
    }
    func fail(_ reason: String) -> CharLMError {
        close(descriptor)
        unlink(temporary)
        return CharLMError.saveFailed(path: path, reason: reason + "; the previous file, if any, is unchanged")
    }
    var written = 0
    while written < bytes.count {
        let limit = failAfterBytes.map { min(bytes.count, $0) } ?? bytes.count
        if written >= limit {
            errno = ENOSPC
            throw fail("writing failed after \(written) of \(bytes.count) bytes: \(lastErrorText())")
        }
        let result = bytes.withUnsafeBytes { buffer in
            write(descriptor, buffer.baseAddress! + written, min(limit - written, 1 << 24))
        }
        if result < 0 {
            if errno == EINTR { continue }
            throw fail("writing failed after \(written) of \(bytes.count) bytes: \(lastErrorText())")
        }
        written += result
    }
    guard fsync(descriptor) == 0 else { throw fail("flushing to disk failed: \(lastErrorText())") }
    guard close(descriptor) == 0 else {
        unlink(temporary)
        throw CharLMError.saveFailed(path: path, reason: "closing failed: \(lastErrorText())")
    }
    guard rename(temporary, path) == 0 else {
        let reason = lastErrorText()
        unlink(temporary)
        throw CharLMError.saveFailed(path: path, reason: "renaming into place failed: \(reason)")
    }
    // Make the rename itself durable.
    let folderDescriptor = open(folder, O_RDONLY)
    if folderDescriptor >= 0 {
        fsync(folderDescriptor)
        close(folderDescriptor)
    }
}

/// The process's standard streams.
public enum StandardStream: Int32, Sendable {
    case input = 0
    case output = 1
    case error = 2
}

/// Whether `stream` is connected to a terminal.
public func isTerminal(_ stream: StandardStream) -> Bool { isatty(stream.rawValue) == 1 }

/// The environment variable's current value (read at each call: readline updates COLUMNS as the terminal resizes).
public func environmentValue(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

/// Gives the processor to another thread (spinning waits call this now and then).
@inline(__always) func yieldProcessor() { sched_yield() }

/// Peak resident set size of this process so far, in bytes.
public func peakResidentBytes() -> Int {
    var usage = rusage()
    #if canImport(Darwin)
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss)  // macOS reports bytes
    #else
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024  // Linux reports kilobytes
    #endif
}
