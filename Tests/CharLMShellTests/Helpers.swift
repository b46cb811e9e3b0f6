// Shared test helpers: sessions with captured output, the built binary, temporary folders.

@testable import CharLMShell
import Foundation

/// A session whose output is captured, and a runner for it.
func makeShell() -> (Session, Runner, BufferConsole) {
    let console = BufferConsole()
    let session = Session(console: console)
    session.downloads = Downloads(cacheFolder: NSTemporaryDirectory() + "charlm-test-cache-\(UUID().uuidString)")
    return (session, Runner(session: session), console)
}

/// A captured session that has run `lines`, in order (settings, a `load`, a short `train`, ...).
func makeShell(running lines: [String]) throws -> (Session, Runner, BufferConsole) {
    let (session, runner, console) = makeShell()
    for line in lines { try runner.execute(line) }
    return (session, runner, console)
}

/// A fresh temporary folder.
func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("charlm-shell-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The committed fixture `name`.
func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

/// The `charlm` executable built beside this test bundle.
let charlmBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("charlm").path

/// The result of running a process.
struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// The `charlm-bench` executable built beside this test bundle.
let benchBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("charlm-bench").path

/// Runs the charlm binary with `arguments` in `folder`, stdin from `input` (or /dev/null).
func runCharLM(_ arguments: [String], in folder: URL? = nil, input: String? = nil,
               environment: [String: String] = [:]) throws -> ProcessResult {
    try runProgram(charlmBinary, arguments, in: folder, input: input, environment: environment)
}

/// Runs the program at `path` with `arguments` in `folder`, stdin from `input` (or /dev/null).
func runProgram(_ path: String, _ arguments: [String], in folder: URL? = nil, input: String? = nil,
                environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let folder { process.currentDirectoryURL = folder }
    var env = ProcessInfo.processInfo.environment
    env["CHARLM_HISTORY"] = NSTemporaryDirectory() + "charlm-test-history"
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe(), err = Pipe(), stdin = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    // Read both pipes concurrently so neither fills up.
    final class Box: @unchecked Sendable { var data = Data() }
    let errorBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errorBox.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errorBox.data, as: UTF8.self))
}

/// Messages as one line each: wrapped output (lines after the first indented by two spaces) joined back up.
func unwrapped(_ text: String) -> String { text.replacingOccurrences(of: "\n  ", with: " ") }

/// Runs `line`, returning the error it threw (nil on success).
func thrownError(_ runner: Runner, _ line: String) -> Error? {
    do {
        try runner.execute(line)
        return nil
    } catch {
        return error
    }
}

/// Runs `line` and returns what it printed to stdout, failing the test on an error.
func output(_ runner: Runner, _ console: BufferConsole, _ line: String) throws -> String {
    console.clear()
    try runner.execute(line)
    return console.stdout
}
