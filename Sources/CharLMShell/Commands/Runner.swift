// The loop that turns lines into commands. The interactive prompt, `.clm` scripts, `source` and `-c` arguments are
// all this loop fed by different line sources; only the error format and stop-on-error rule differ.

import CharLM
import Foundation

/// Where lines come from: readline at a terminal, a file, a list.
public protocol LineSource: AnyObject {
    /// The next line without its newline, or nil at the end (Ctrl-D at the prompt).
    func nextLine(prompt: String) -> String?
}

/// Lines from memory (scripts, `-c`, tests).
public final class ArrayLineSource: LineSource {
    private var lines: [String]
    private var index = 0
    public init(_ lines: [String]) { self.lines = lines }
    public func nextLine(prompt: String) -> String? {
        guard index < lines.count else { return nil }
        defer { index += 1 }
        return lines[index]
    }
}

/// A script's error, already printed with its location: callers report nothing more.
public struct AlreadyReported: Error {}

/// Runs lines against a session.
public final class Runner {
    public let session: Session
    /// Scripts continue after an error (`--keep-going`).
    public var keepGoing = false
    /// Whether Ctrl-C returns to the prompt (interactive) or ends the program with 130 (batch).
    public var interactive = false
    public private(set) var quitRequested = false
    /// Every line run so far, in order (what `history` lists when no readline history is set).
    public private(set) var executedLines: [String] = []
    /// The command history `history` lists: readline's at the prompt (set by the executable), else `executedLines`.
    public var historyProvider: (() -> [String])?
    /// Called after each line has run (the executable writes readline's history, so a killed session keeps it).
    public var afterEachLine: () -> Void = {}
    /// Folders of the scripts being run, innermost last (relative paths in `source` resolve against the last).
    private var scriptFolders: [String] = []
    public static let maximumNesting = 8

    public init(session: Session) { self.session = session }

    func requestQuit() { quitRequested = true }

    /// The outcome of running some lines (the executable turns it into an exit code).
    public enum Status: Sendable {
        case success
        case failed
        case interrupted
    }

    /// Runs every line of `source`. `name` labels errors (`FILE:LINE:`); nil for the prompt and `-c`.
    public func run(_ source: LineSource, name: String?, prompt: String = "") -> Status {
        var failed = false
        var lineNumber = 0
        /// At the prompt, leaving (quit, Ctrl-D) with training that was never saved is refused once, with a word.
        func mayLeave() -> Bool {
            guard session.confirmDiscardingUnsavedWork(again: "quit again to leave without saving") else {
                quitRequested = false
                return false
            }
            return true
        }
        while true {
            if quitRequested {
                if mayLeave() { break } else { continue }
            }
            guard var line = source.nextLine(prompt: prompt) else {
                if mayLeave() { break } else { continue }
            }

            lineNumber += 1
            let firstLine = lineNumber
            // A trailing backslash continues the command on the next line.
            while line.hasSuffix("\\") && !line.hasSuffix("\\\\") {
                line.removeLast()
                guard let next = source.nextLine(prompt: interactive ? "...> " : "") else { break }
                lineNumber += 1
                line += next
            }
            let location = name.map { "\($0):\(firstLine)" }
            // The history: each command as run (continuations joined), not blank or comment-only lines.
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty && !trimmed.hasPrefix("#") { executedLines.append(line) }
            // Ctrl-C pressed since the last command (during one that does not stop for it, or between two): a
            // script stops there; at the prompt it is forgotten, so it cannot cut the next command short.
            if session.interruptRequested() {
                if interactive {
                    session.clearInterrupt()
                } else {
                    session.console.error("interrupted by \(session.interruptionName()) before this command", location: location)
                    return .interrupted
                }
            }
            defer { afterEachLine() }
            do {
                session.fileNotWritten = false
                try execute(line)
                // Training went on, but a file it was asked to write was not (the warning said which): the script
                // carries on and fails at its end.
                if !interactive && session.fileNotWritten { failed = true }
                if !interactive && session.interruptRequested() {
                    let verb = (try? lex(line))?.first?.text ?? "the command"
                    session.console.error("interrupted by \(session.interruptionName()); `\(verb)` had finished", location: location)
                    return .interrupted
                }
            } catch is AlreadyReported {
                failed = true
                if !keepGoing && !interactive { return .failed }
            } catch let interruption as Interrupted {
                if !interactive {
                    // At a terminal the `^C` was echoed where the cursor stood: the message starts on its own line.
                    if session.console.isTerminal { session.console.err("\n") }
                    session.console.error(interruption.description, location: location)
                    return .interrupted
                }
            } catch CharLMError.cancelled {
                session.clearInterrupt()
                let verb = (try? lex(line))?.first?.text ?? "the command"
                if !interactive {
                    if session.console.isTerminal { session.console.err("\n") }
                    session.console.error("`\(verb)` interrupted by \(session.interruptionName()); nothing was changed", location: location)
                    return .interrupted
                }
                // At a terminal the `^C` was echoed where the cursor stood: the note starts on a line of its own.
                if session.console.isTerminal { session.console.err("\n") }
                session.console.note("interrupted: `\(verb)` stopped; nothing was changed\n")
            } catch {
                failed = true
                session.console.error(Self.describe(error), location: location)
                if !keepGoing && !interactive { return .failed }
            }
        }
        return failed ? .failed : .success
    }

    /// Runs one command line: its commands (separated by `;`) one after another, stopping at the first that fails.
    /// With `timing` on, says how long each that succeeded took (a failed one has its error instead, as psql does).
    public func execute(_ line: String) throws {
        for (command, offset) in splitCommands(line) {
            let start = Date()
            do {
                try executeCommand(command)
            } catch ShellError.syntax(let error) {
                throw ShellError.syntax(LexError(message: error.message, column: error.column + offset))
            }
            if session.settings.timing && !command.trimmingCharacters(in: .whitespaces).isEmpty {
                session.console.progress(String(format: "time: %.3f s\n", Date().timeIntervalSince(start)))
            }
            if quitRequested { return }
        }
    }

    /// Runs one command.
    private func executeCommand(_ line: String) throws {
        let words: [Word]
        do { words = try lex(line) } catch let error as LexError { throw ShellError.syntax(error) }
        guard let first = words.first else { return }
        guard let command = Commands.command(named: first.text) else {
            // A setting typed as a command is most likely meant for `set`.
            let suggestion = Settings.key(named: first.text) != nil
                ? "set " + words.map(\.text).joined(separator: " ")
                : nearest(to: first.text, among: Commands.table.map(\.name))
            throw ShellError.unknownCommand(first.text, suggestion: suggestion)
        }
        try command.run(CommandContext(session: session, runner: self), Array(words.dropFirst()))
    }

    /// Runs a script file inside the session (the `source` command and `charlm FILE.clm`).
    public func source(_ path: String) throws {
        guard scriptFolders.count < Self.maximumNesting else {
            throw ShellError.scriptsNestedTooDeep(path: path, limit: Self.maximumNesting)
        }
        let path = expandingTilde(path)
        let resolved = path.hasPrefix("/") || scriptFolders.isEmpty ? path : scriptFolders.last! + "/" + path
        let bytes = try readFileBytes(at: resolved)
        // A checkpoint is not a script: say what it is and what reads it.
        if SafeTensorsFile.looksLikeSafeTensors(Array(bytes.prefix(16))) {
            throw ShellError.badArgument("'\(path)' is a checkpoint, not a script: `load \(path)` reads it")
        }
        // Lines end at \n, with or without a \r before it (split as bytes: Swift's strings take "\r\n" as one
        // character, which a split on "\n" would not cut).
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        scriptFolders.append((resolved as NSString).deletingLastPathComponent.isEmpty ? "." : (resolved as NSString).deletingLastPathComponent)
        defer { scriptFolders.removeLast() }
        let wasInteractive = interactive
        interactive = false
        defer { interactive = wasInteractive }
        switch run(ArrayLineSource(lines), name: resolved) {
        case .success: return
        case .failed: throw AlreadyReported()
        case .interrupted: throw Interrupted(description: "script '\(resolved)' interrupted")
        }
    }

    /// The message for any error a command throws: the shell's and the engine's errors both describe themselves.
    public static func describe(_ error: Error) -> String {
        String(describing: error)
    }
}

/// What a file named on the command line is for.
public enum FileRole: Equatable, Sendable {
    /// Commands to run line by line: a `.clm` file, or text whose every line is a command or a comment.
    case script
    /// A checkpoint or a text corpus, to `load` (told apart by content, as `load` does).
    case data

    /// The role of the file at `path`, from its name and its first 64 KB. A file that cannot be read counts as a
    /// script, so running it reports why.
    public static func of(_ path: String) -> FileRole {
        if path.lowercased().hasSuffix(".clm") { return .script }
        guard let prefix = readFilePrefix(at: path, count: 1 << 16) else { return .script }
        if SafeTensorsFile.looksLikeSafeTensors(prefix) { return .data }
        return looksLikeCommands(String(decoding: prefix, as: UTF8.self)) ? .script : .data
    }

    /// Whether every line of `text` (up to 200 of them) that is not blank or a comment starts with a command's name,
    /// and there is at least one: charlm commands, not prose.
    static func looksLikeCommands(_ text: String) -> Bool {
        var commands = 0
        for line in text.split(separator: "\n").prefix(200) {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let first = splitCommands(trimmed).first, let words = try? lex(first.text), let name = words.first,
                  !name.quoted, Commands.command(named: name.text) != nil else { return false }
            commands += 1
        }
        return commands > 0
    }
}
