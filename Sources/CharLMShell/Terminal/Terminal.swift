// The one thin wrapper around the terminal and the standard streams, for the shell and the executable: whether a
// stream is a terminal (isatty), how wide it is (ioctl TIOCGWINSZ), key echo off while training (termios), lines of
// standard input read with read(2), and whole writes to stdout and stderr with write(2). It lives in the shell, not
// in the engine's System.swift (files, memory, the processor), because the engine does no terminal I/O: only the
// shell's console and the executable's line sources use a terminal. Readline has its own wrapper in the executable
// (Sources/charlm/ReadlineLineSource.swift).

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's standard streams.
public enum StandardStream: Int32, Sendable {
    case input = 0
    case output = 1
    case error = 2
}

/// Whether `stream` is connected to a terminal.
public func isTerminal(_ stream: StandardStream) -> Bool { isatty(stream.rawValue) == 1 }

/// Runs `body` with the terminal on standard input not echoing keys, then discards what was typed meanwhile and
/// restores the terminal: during `train`, a key pressed would be drawn into the live progress line, and an Enter
/// would run commands (or pass a tour's pauses) the moment training ends. With `keepTypedKeys` (`gen`), what was
/// typed is kept and read afterwards. Ctrl-C still interrupts. Without a terminal on standard input, just runs `body`.
public func withoutTerminalEcho(keepTypedKeys: Bool = false, _ body: () throws -> Void) throws {
    var original = termios()
    guard isatty(0) == 1, tcgetattr(0, &original) == 0 else { return try body() }
    var quiet = original
    quiet.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(0, TCSANOW, &quiet)
    defer {
        if !keepTypedKeys { tcflush(0, TCIFLUSH) }
        tcsetattr(0, TCSANOW, &original)
    }
    try body()
}

/// Lines of standard input, read with read(2) in blocks (batch mode). Swift's `readLine` is not used: after a signal
/// interrupts its read, the C stream keeps its error flag and `readLine` retries forever at full speed (a Ctrl-C
/// while a script waited for piped input spun the process).
public final class StandardInputLines {
    private var buffer: [UInt8] = []
    private var start = 0
    private var ended = false

    public init() {}

    /// The next line without its newline (a last line without one included); nil at the end of input. When a
    /// signal interrupts the wait and `interrupted()` says it was Ctrl-C, drops what was read of the line so far (as
    /// Ctrl-C empties a line being typed at the prompt) and returns an empty line, so the caller sees the interrupt
    /// at once and never runs half a command.
    public func next(interrupted: () -> Bool) -> String? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                // \r\n ends a line as \n does (scripts written on Windows)
                let end = newline > start && buffer[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
                let line = String(decoding: buffer[start..<end], as: UTF8.self)
                start = newline + 1
                if start > 65_536 { buffer.removeFirst(start); start = 0 }
                return line
            }
            if ended {
                guard start < buffer.count else { return nil }
                defer { start = buffer.count }
                return String(decoding: buffer[start...], as: UTF8.self)
            }
            var block = [UInt8](repeating: 0, count: 65_536)
            let got = block.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if got > 0 {
                buffer.append(contentsOf: block[0..<got])
            } else if got < 0 && errno == EINTR {
                if interrupted() {
                    start = buffer.count
                    return ""
                }
            } else {
                ended = true  // end of input, or an error reading it: what was read is the last line
            }
        }
    }
}

/// Reads one line from standard input a byte at a time (no buffering, so nothing typed after it is taken from
/// whoever reads next, as readline does); nil at the end of input or when a signal (Ctrl-C) interrupts the read.
public func readLineUnbuffered() -> String? {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while true {
        let got = read(0, &byte, 1)
        if got <= 0 { return bytes.isEmpty && got == 0 ? nil : (got < 0 ? nil : String(decoding: bytes, as: UTF8.self)) }
        if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(byte)
    }
}

/// The width of the terminal `stream` is connected to, in columns, asked now (so a resized window is seen at
/// once, with no SIGWINCH handler); nil when it is not a terminal or does not say.
public func terminalColumns(_ stream: StandardStream) -> Int? {
    var size = winsize()
    guard ioctl(stream.rawValue, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
    return Int(size.ws_col)
}

/// The height of the terminal `stream` is connected to, in rows, asked now; nil when it is not a terminal.
public func terminalRows(_ stream: StandardStream) -> Int? {
    var size = winsize()
    guard ioctl(stream.rawValue, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0 else { return nil }
    return Int(size.ws_row)
}

/// Writes all of `text` to `stream`, retrying after interrupted or partial writes. Returns nil when written, else
/// why not (a closed descriptor, a full disk): the caller decides what to say; nothing traps (FileHandle's `write`
/// stops the program on such an error).
public func writeToStream(_ stream: StandardStream, _ text: String) -> String? {
    writeToDescriptor(stream.rawValue, text)
}

/// `writeToStream` for any open descriptor (a pager's pipe).
func writeToDescriptor(_ descriptor: Int32, _ text: String) -> String? {
    var bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let result = bytes.withUnsafeMutableBytes { buffer in
            write(descriptor, buffer.baseAddress! + written, buffer.count - written)
        }
        if result < 0 {
            if errno == EINTR { continue }
            return String(cString: strerror(errno))
        }
        written += result
    }
    bytes.removeAll()
    return nil
}
