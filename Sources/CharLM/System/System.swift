// The one thin wrapper around the C library (libc) for the engine: files (whole-file reads of regular files, and
// atomic writes: a temporary file in the same folder, written, flushed to disk, then renamed over the target), the
// memory the machine has available and the process's peak and current size, and the processor (yielding it, a
// thread's time on it). Every other file of the engine calls these.
//
// C that lives elsewhere, each behind a wrapper of its own named for what it wraps: BLAS (BLAS.swift), the CPU's
// vector width (the CPUFeatures target, asked once in PackedProduct.swift), the terminal and the standard streams
// (CharLMShell/Terminal/Terminal.swift: the engine does no terminal I/O), and GNU readline with the Ctrl-C handler
// (Sources/charlm/ReadlineLineSource.swift and the CReadline shim: only the executable links readline).

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What kind of thing a path names, as far as reading and writing files is concerned.
enum FileKind: Equatable {
    case missing
    case regular(size: Int)
    case directory
    /// A FIFO, a device, a socket: a name for something that is not stored data.
    case special(String)
}

/// `fileKind(path)` for a file about to be written: a name the system refuses (too long, a folder on the way not
/// searchable) is a failure to write, said by `failure`, not a failure to read.
func fileKindForWriting(_ path: String, failure: (String) -> CharLMError) throws(CharLMError) -> FileKind {
    do { return try fileKind(path) } catch {
        if case .unreadable(_, let reason) = error {
            throw failure(errno == ENAMETOOLONG ? "the name is longer than the file system allows (255 bytes a name)" : reason)
        }
        throw error
    }
}

/// What `path` names, following symbolic links; `errno`'s message when it cannot be asked (permission denied on a
/// folder on the way, say).
func fileKind(_ path: String) throws(CharLMError) -> FileKind {
    var info = stat()
    guard stat(path, &info) == 0 else {
        if errno == ENOENT || errno == ENOTDIR { return .missing }
        throw .unreadable(path: path, reason: lastErrorText())
    }
    switch info.st_mode & S_IFMT {
    case S_IFREG: return .regular(size: Int(info.st_size))
    case S_IFDIR: return .directory
    case S_IFIFO: return .special("a FIFO (named pipe)")
    case S_IFCHR: return .special("a character device")
    case S_IFBLK: return .special("a block device")
    case S_IFSOCK: return .special("a socket")
    default: return .special("not a regular file")
    }
}

/// Reads a whole regular file, with the errors a user can act on. A file larger than `maximumBytes` is refused
/// (before anything is read when its size says so); `limit` names what sets that maximum in the message.
public func readFileBytes(at path: String, maximumBytes: Int = .max, limit: String = "a file") throws -> [UInt8] {
    let size: Int
    switch try fileKind(path) {
    case .missing: throw CharLMError.fileNotFound(path: path)
    case .directory: throw CharLMError.isDirectory(path: path)
    case .special(let kind): throw CharLMError.notARegularFile(path: path, kind: kind)
    case .regular(let bytes): size = bytes
    }
    if size > maximumBytes { throw CharLMError.fileTooLarge(path: path, bytes: size, maximum: maximumBytes, limit: limit) }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        throw CharLMError.unreadable(path: path, reason: errno == EACCES ? "permission denied" : lastErrorText())
    }
    defer { close(descriptor) }
    // Read to the end: at least what stat reported (files in /proc report 0 and still have content), one byte
    // past it to see the end, never more than `maximumBytes`.
    var bytes = [UInt8](repeating: 0, count: min(max(size, 1 << 16), maximumBytes) + 1)
    var filled = 0
    while true {
        if filled == bytes.count {
            guard bytes.count <= maximumBytes else {
                throw CharLMError.fileTooLarge(path: path, bytes: filled, maximum: maximumBytes, limit: limit)
            }
            bytes.append(contentsOf: repeatElement(0, count: min(bytes.count, maximumBytes + 1 - bytes.count)))
        }
        let room = bytes.count - filled
        let count = bytes.withUnsafeMutableBytes { buffer in
            read(descriptor, buffer.baseAddress! + filled, min(room, 1 << 24))
        }
        if count < 0 {
            if errno == EINTR { continue }
            throw CharLMError.unreadable(path: path, reason: lastErrorText())
        }
        if count == 0 { break }
        filled += count
    }
    if filled > maximumBytes { throw CharLMError.fileTooLarge(path: path, bytes: filled, maximum: maximumBytes, limit: limit) }
    bytes.removeLast(bytes.count - filled)
    return bytes
}

/// The first `count` bytes of a regular file (fewer if it is shorter); nil when it cannot be read.
public func readFilePrefix(at path: String, count: Int) -> [UInt8]? {
    guard case .regular = try? fileKind(path) else { return nil }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var bytes = [UInt8](repeating: 0, count: count)
    var filled = 0
    while filled < count {
        let room = count - filled
        let got = bytes.withUnsafeMutableBytes { buffer in read(descriptor, buffer.baseAddress! + filled, room) }
        if got < 0 && errno == EINTR { continue }
        if got <= 0 { break }
        filled += got
    }
    return Array(bytes.prefix(filled))
}

/// The text of the C library's last error.
private func lastErrorText() -> String { String(cString: strerror(errno)) }

/// Writes `bytes` to `path` so that the file is either the old one or the complete new one, never a mixture:
/// a temporary file beside the target is written, flushed to disk and renamed over it. On any failure the temporary
/// file is removed, the target is untouched, and the error says what failed.
///
/// Only regular files are written: a FIFO, a device or a socket at `path` is refused (renaming over it would destroy
/// the node), as is a directory. A symbolic link is followed: the file it points to is replaced, atomically in that
/// file's folder, and the link stays. Temporaries left by a process that was killed while saving to the same target
/// are removed.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try writeFileAtomically(bytes, to: path, failAfterBytes: nil)
}

/// Where a save to `path` really writes: `path`, or the file a symbolic link at `path` points to (links to links
/// are followed, relative targets resolved against the link's folder).
public func resolvedSaveTarget(_ path: String) -> String {
    var current = path
    for _ in 0..<40 {
        var info = stat()
        guard lstat(current, &info) == 0, info.st_mode & S_IFMT == S_IFLNK,
              let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else { return current }
        current = destination.hasPrefix("/") ? destination
            : (URL(fileURLWithPath: current).deletingLastPathComponent().path as NSString).appendingPathComponent(destination)
    }
    return current
}

/// The hidden temporary a save to `target` writes first: `.NAME.tmp-charlm-PID-RANDOM` beside it.
/// The start of a temporary's name for saves to `target`: ".NAME.tmp-charlm-". A long NAME (a file name may have 255
/// bytes) is cut and tagged with a hash of the whole, so the temporary's own name stays within that limit.
private func temporaryPrefix(for target: URL) -> String {
    let name = target.lastPathComponent
    guard name.utf8.count > 160 else { return "." + name + ".tmp-charlm-" }
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
    for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    var cut = ""
    for character in name where cut.utf8.count + character.utf8.count <= 120 { cut.append(character) }
    return "." + cut + "~" + String(hash, radix: 16) + ".tmp-charlm-"
}

/// Removes temporaries of saves to `target` whose process no longer runs (killed mid-save). Also those of the
/// naming used before (`.NAME.tmp-PID-RANDOM`).
private func removeStaleTemporaries(for target: URL) {
    let folder = target.deletingLastPathComponent().path
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
    let prefixes = [temporaryPrefix(for: target), "." + target.lastPathComponent + ".tmp-"]
    for entry in entries {
        guard let prefix = prefixes.first(where: { entry.hasPrefix($0) }) else { continue }
        guard let pid = Int32(entry.dropFirst(prefix.count).split(separator: "-").first ?? ""), pid > 0 else { continue }
        if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH { unlink(folder + "/" + entry) }
    }
}

/// `writeFileAtomically(_:to:)` with a test hook.
///
/// - Parameter failAfterBytes: for tests only: pretend the disk filled up after this many bytes.
func writeFileAtomically(_ bytes: [UInt8], to requested: String, failAfterBytes: Int?) throws {
    guard !requested.isEmpty, !requested.hasSuffix("/"), ![".", ".."].contains(URL(fileURLWithPath: requested).lastPathComponent) else {
        throw CharLMError.saveFailed(path: requested, reason: "that is not a file name: name the file to write")
    }
    let path = resolvedSaveTarget(requested)
    let shown = path == requested ? requested : "\(requested)', a link to '\(path)"
    switch try fileKindForWriting(path, failure: { .saveFailed(path: shown, reason: $0) }) {
    case .directory: throw CharLMError.saveFailed(path: shown, reason: "it is a directory")
    case .special(let kind):
        throw CharLMError.saveFailed(path: shown, reason: "it is \(kind), not a regular file: save to a file name")
    case .regular:
        // The rename would go around the file's own permissions (it needs only the folder's): honour them.
        var info = stat()
        if stat(path, &info) == 0 && info.st_mode & 0o222 == 0 {
            throw CharLMError.saveFailed(path: shown, reason: "it is read-only; it is unchanged (make it writable to replace it)")
        }
    case .missing: break
    }
    let target = URL(fileURLWithPath: path)
    let folder = target.deletingLastPathComponent().path
    switch try fileKindForWriting(folder, failure: { .saveFailed(path: shown, reason: $0) }) {
    case .directory: break
    case .missing: throw CharLMError.saveFailed(path: shown, reason: "the folder '\(folder)' does not exist")
    default: throw CharLMError.saveFailed(path: shown, reason: "'\(folder)' is not a folder")
    }
    removeStaleTemporaries(for: target)
    let temporary = folder + "/" + temporaryPrefix(for: target) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
        throw CharLMError.saveFailed(path: shown, reason: "cannot create a file in '\(folder)': \(lastErrorText())")
    }
    func fail(_ reason: String) -> CharLMError {
        close(descriptor)
        unlink(temporary)
        return CharLMError.saveFailed(path: shown, reason: reason + "; the previous file, if any, is unchanged")
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
        throw CharLMError.saveFailed(path: shown, reason: "closing failed: \(lastErrorText())")
    }
    guard rename(temporary, path) == 0 else {
        let reason = lastErrorText()
        unlink(temporary)
        throw CharLMError.saveFailed(path: shown, reason: "renaming into place failed: \(reason)")
    }
    // Make the rename itself durable.
    let folderDescriptor = open(folder, O_RDONLY | O_CLOEXEC)
    if folderDescriptor >= 0 {
        fsync(folderDescriptor)
        close(folderDescriptor)
    }
}

/// A regular file that whole lines are appended to (a metrics log). Each `append` is one write(2) of whole lines; a
/// write that fails part-way (a full disk) is cut back to the lines before it, so the file only ever holds whole
/// lines, and a file that does not end in a newline (cut by a crash) gets one before the first new line.
public final class AppendingFile {
    public let path: String
    /// The file's size when it was opened (0 for a new file).
    public let sizeWhenOpened: Int
    private var descriptor: Int32

    /// Opens `path` for appending, creating it if missing. A directory, FIFO, device or socket is refused, as is a
    /// missing folder.
    public init(path: String) throws {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw CharLMError.appendFailed(path: path, reason: "that is not a file name: name the file to write")
        }
        switch try fileKindForWriting(path, failure: { .appendFailed(path: path, reason: $0) }) {
        case .directory: throw CharLMError.appendFailed(path: path, reason: "it is a directory")
        case .special(let kind): throw CharLMError.appendFailed(path: path, reason: "it is \(kind), not a regular file")
        case .regular(let size): sizeWhenOpened = size
        case .missing: sizeWhenOpened = 0
        }
        descriptor = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o644)
        guard descriptor >= 0 else {
            throw CharLMError.appendFailed(path: path, reason: "cannot open it: \(lastErrorText())")
        }
        self.path = path
        var last: UInt8 = 0
        if sizeWhenOpened > 0 && pread(descriptor, &last, 1, off_t(sizeWhenOpened - 1)) == 1 && last != UInt8(ascii: "\n") {
            try append("\n")
        }
    }

    /// Appends `text` (whole lines); on failure the file is cut back to its size before.
    public func append(_ text: String) throws {
        var bytes = Array(text.utf8)
        let sizeBefore = lseek(descriptor, 0, SEEK_END)
        while !bytes.isEmpty {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }
            if result < 0 {
                if errno == EINTR { continue }
                let reason = lastErrorText()
                if sizeBefore >= 0 { _ = ftruncate(descriptor, sizeBefore) }
                throw CharLMError.appendFailed(path: path, reason: "writing failed: \(reason); the file keeps its whole lines")
            }
            bytes.removeFirst(result)
        }
    }

    deinit { close(descriptor) }
}

/// Memory the machine can still give this process, in bytes: Linux's MemAvailable (free memory plus what the
/// kernel can reclaim), less if the process's address space is capped (`ulimit -v`) or its control group has a
/// memory limit; elsewhere the physical memory.
public func availableMemoryBytes() -> Int {
    var available = Int(clamping: ProcessInfo.processInfo.physicalMemory)
    if let memAvailable = procBytes("MemAvailable:", in: "/proc/meminfo") { available = memAvailable }
    // An address-space cap: what is left of it.
    var limit = rlimit()
    if getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
       let used = procBytes("VmSize:", in: "/proc/self/status") {
        available = min(available, max(0, Int(clamping: limit.rlim_cur) - used))
    }
    // A control group's limit (cgroup v2): what is left of it.
    if let maximum = (try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8)).flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
       let current = (try? String(contentsOfFile: "/sys/fs/cgroup/memory.current", encoding: .utf8)).flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
        available = min(available, max(0, maximum - current))
    }
    return available
}

/// Gives the processor to another thread (spinning waits call this now and then).
@inline(__always) func yieldProcessor() { sched_yield() }

/// Processor time the calling thread has used, in nanoseconds: with the wall clock, how long it was off its core.
func threadProcessorNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Peak resident set size of this process so far, in bytes. On Linux, VmHWM from /proc/self/status: getrusage's
/// ru_maxrss also counts the process this one was forked from before it became this program (exec keeps that
/// figure), so a small program started by a large one would report the large one's peak.
public func peakResidentBytes() -> Int {
    if let peak = procBytes("VmHWM:", in: "/proc/self/status") { return peak }
    var usage = rusage()
    #if canImport(Darwin)
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss)  // macOS reports bytes
    #else
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024  // kilobytes
    #endif
}

/// Resident set size now, in bytes (VmRSS from /proc/self/status; 0 where there is none).
public func currentResidentBytes() -> Int { procBytes("VmRSS:", in: "/proc/self/status") ?? 0 }

/// The figure a /proc file (meminfo, status) gives in kilobytes on the line starting with `key`, in bytes; nil
/// when the file or the line is missing.
private func procBytes(_ key: String, in file: String) -> Int? {
    guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key) {
        let fields = line.split(separator: " ")
        if fields.count >= 2, let value = Int(fields[1]) { return value * 1024 }
    }
    return nil
}
