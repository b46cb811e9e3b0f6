// Watching, pausing and signalling a child process (through Linux's /proc), and the patience of every wait that
// polls. With these a test measures how quickly charlm answers Ctrl-C in its own work (steps, characters, processor
// time) instead of seconds, which a busy machine stretches: the child is paused once its long command is under way,
// its progress is noted, the signal is sent, and it goes on. Leaves out running a program to its end (Helpers.swift).

import Foundation

/// How long a test waits for something it polls for (output, a file, an exit) before it gives up. Long on purpose:
/// only a failing test waits it out, and a debug build sharing two cores with other work runs many times slower
/// than alone (a training step of the 256-unit model took 1.5 s beside one other busy program).
let patience: TimeInterval = 300

/// Polls `condition` every `interval` seconds until it holds (true) or `seconds` have passed (false).
func waitUntil(seconds: TimeInterval = patience, every interval: TimeInterval = 0.02, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() >= deadline { return false }
        Thread.sleep(forTimeInterval: interval)
    }
    return true
}

/// The fields of a /proc stat file after the command name: [0] the state, [11] user and [12] system time in ticks.
private func statFields(_ path: String) -> [Substring]? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8), let end = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: end)...].split(separator: " ")
}

/// Processor seconds `pid` has used so far, its threads together; nil once it is gone.
func processorSeconds(_ pid: pid_t) -> Double? {
    guard let fields = statFields("/proc/\(pid)/stat"), fields.count > 12,
          let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Stops `pid` (SIGSTOP) and returns true once every one of its threads has stopped: what it wrote before is then all
/// there to read, and a signal sent to it waits until `resume`. False when it exited first.
func pause(_ pid: pid_t) -> Bool {
    kill(pid, SIGSTOP)
    var stopped = false
    _ = waitUntil(every: 0.001) {
        guard let state = statFields("/proc/\(pid)/stat")?.first, state != "Z", state != "X",
              let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return true }
        // (A thread that ended meanwhile has no stat file to read.)
        stopped = threads.allSatisfy { ["T", "t", nil].contains(statFields("/proc/\(pid)/task/\($0)/stat")?.first) }
        return stopped
    }
    return stopped
}

/// Lets a paused `pid` go on (SIGCONT).
func resume(_ pid: pid_t) { kill(pid, SIGCONT) }

/// Whether `signal` has been sent to `pid` and not yet handled (it is paused, say).
func isPending(_ signal: Int32, for pid: pid_t) -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
    let bit = UInt64(1) << UInt64(signal - 1)
    return status.split(separator: "\n").contains { line in
        let parts = line.split(separator: ":")
        guard parts.count == 2, ["SigPnd", "ShdPnd"].contains(parts[0]) else { return false }
        return (UInt64(parts[1].trimmingCharacters(in: .whitespaces), radix: 16) ?? 0) & bit != 0
    }
}

/// Whether the main thread of `pid` is blocked in read(2) on its standard input, waiting for a line.
func isBlockedReadingStandardInput(_ pid: pid_t) -> Bool {
    // /proc/PID/syscall: the number of the system call the thread is blocked in, then its arguments ("running" when
    // it runs). read is 0 on x86-64 and 63 on arm64; its first argument is the descriptor.
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/syscall", encoding: .utf8) else { return false }
    let fields = text.split(separator: " ")
    #if arch(arm64)
    let read = "63"
    #else
    let read = "0"
    #endif
    return fields.count > 1 && fields[0] == read && fields[1] == "0x0"
}

/// A program running beside the test, its stdout and stderr read as they come (never waiting for more).
final class RunningProgram {
    let process = Process()
    private let outPipe = Pipe(), errPipe = Pipe()
    private var outBytes: [UInt8] = [], errBytes: [UInt8] = []

    /// Starts `program` (charlm unless said) with `arguments` in `folder`; stdin is `input` (or /dev/null).
    init(_ arguments: [String], program path: String = charlmBinary, in folder: URL? = nil, input: Pipe? = nil) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = folder }
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["CHARLM_HISTORY": NSTemporaryDirectory() + "charlm-test-history"]) { $1 }
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = input ?? FileHandle.nullDevice
        try process.run()
        for pipe in [outPipe, errPipe] {
            let descriptor = pipe.fileHandleForReading.fileDescriptor
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        }
    }

    var pid: pid_t { process.processIdentifier }
    /// What it has written to stdout so far.
    var stdout: String { readAvailable(); return String(decoding: outBytes, as: UTF8.self) }
    /// What it has written to stderr so far.
    var stderr: String { readAvailable(); return String(decoding: errBytes, as: UTF8.self) }

    private func readAvailable() {
        var block = [UInt8](repeating: 0, count: 65_536)
        for (pipe, isOut) in [(outPipe, true), (errPipe, false)] {
            while true {
                let got = block.withUnsafeMutableBytes { read(pipe.fileHandleForReading.fileDescriptor, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else { break }  // 0: the end; -1 (EAGAIN): nothing more for now
                if isOut { outBytes += block[0..<got] } else { errBytes += block[0..<got] }
            }
        }
    }

    /// Waits until it has exited or `giveUp` (asked every 20 ms) says to stop waiting, at most `patience`; then kills
    /// it if it still runs. Returns whether it exited by itself.
    @discardableResult
    func waitForExit(giveUp: () -> Bool = { false }) -> Bool {
        let exited = waitUntil { readAvailable(); return !process.isRunning || giveUp() } && !process.isRunning
        if !exited { kill(pid, SIGKILL) }
        process.waitUntilExit()
        readAvailable()
        return exited
    }
}
