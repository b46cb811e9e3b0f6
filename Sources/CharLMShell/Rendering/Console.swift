// Where the shell's output goes. Generated text and requested information go to `out` (stdout); progress, notes,
// warnings and errors go to `err` (stderr), including the live status line that rewrites itself on a terminal.
// Tests use `BufferConsole`; the executable uses `StandardConsole`.

import CharLM
import Foundation

/// The shell's output channels.
public protocol Console: AnyObject {
    /// Generated text and requested information.
    func out(_ text: String)
    /// Progress, notes, warnings and errors.
    func err(_ text: String)
    /// Whether stderr is a terminal that takes escape sequences (live progress lines rewrite themselves): not with
    /// TERM=dumb.
    var isTerminal: Bool { get }
    /// Whether stdout is a terminal (generated text is then shown with its control characters spelled out).
    var outputIsTerminal: Bool { get }
    /// Columns the live status line is cut to (`width`, or fewer on a terminal narrower than `width`'s floor).
    var statusWidth: Int { get }
    /// Draws `line` (already cut to `statusWidth`) as the live status line, in place of the one shown.
    func drawStatus(_ line: String)
    /// Erases the live status line, however many rows it takes now, if one is shown.
    func eraseStatus()
    /// Shows `text` through the pager when it is taller than the terminal and paging is on; false when it did not
    /// (no terminal, paging off, short text, no pager to run), and the caller writes it.
    func page(_ text: String) -> Bool
    /// Whether to colour (a terminal, and NO_COLOR unset).
    var useColor: Bool { get }
    /// `-q`: only generated text, requested output and errors.
    var quiet: Bool { get }
    /// How stdout may be coloured: not at all unless it is a terminal and NO_COLOR is unset.
    var colorMode: ColorMode { get }
    /// Columns to fit output to: the terminal's width (stdout's, else stderr's), asked anew each time; 80 when
    /// neither is a terminal.
    var width: Int { get }
}

extension Console {
    /// Consoles that are no terminal say so by default.
    public var outputIsTerminal: Bool { false }
    /// Consoles that are no terminal page nothing.
    public func page(_ text: String) -> Bool { false }
    /// Information a user asked for (`show`, `model`, `eval`, `vocab`, ...): printed even with `-q`; at a terminal,
    /// paged when taller than the screen (`page`), with control characters (from a file, a name, a history line)
    /// spelled out, so nothing in it reaches the terminal as a command.
    public func info(_ text: String) {
        styledInfo(outputIsTerminal ? terminalSafe(text) : text)
    }
    /// `info` for a report that colours itself (`cells`, `novelty`): written as given, so the report must pass its
    /// own text through `terminalSafe` at a terminal.
    public func styledInfo(_ text: String) {
        if !page(text) { out(text) }
    }
    /// What an action did (`loaded ...`, `new model: ...`, `saved ...`, `wrote ...`), wrapped to the width:
    /// silent with `-q`.
    public func report(_ text: String, indent: Int = 2) { if !quiet { infoWrapped(text, indent: indent) } }
    /// A note or warning on stderr ("note: ...", "warning: ..."), wrapped to the width with a hanging indent;
    /// the label is coloured on a colour terminal. Silent with `-q`.
    public func note(_ text: String) {
        if quiet { return }
        let text = isTerminal ? terminalSafe(text) : text
        let wrapped = wrap(text.hasSuffix("\n") ? String(text.dropLast()) : text, width: width - 1, indent: 2) + "\n"
        guard useColor else { return err(wrapped) }
        for (label, colour) in [("warning:", "1;33"), ("note:", "36")] where wrapped.hasPrefix(label) {
            return err("\u{1B}[\(colour)m\(label)\u{1B}[0m" + wrapped.dropFirst(label.count))
        }
        err(wrapped)
    }

    /// Information a user asked for, wrapped to the width (for prose: reports and help, never tables or generated
    /// text), with a hanging indent for each paragraph's later lines.
    public func infoWrapped(_ text: String, indent: Int = 2) {
        let shown = outputIsTerminal ? terminalSafe(text) : text  // spelled out before it is wrapped
        info(wrap(shown.hasSuffix("\n") ? String(shown.dropLast()) : shown, width: width - 1, indent: indent) + "\n")
    }
    /// Progress on stderr (validation lines, summaries, timings); silent with `-q`.
    public func progress(_ text: String) { if !quiet { err(text) } }
    /// A line of secondary detail on stderr (a timing after `gen`): dim on a colour terminal; silent with `-q`.
    public func detail(_ text: String) { progress(useColor ? "\u{1B}[2m" + text + "\u{1B}[0m\n" : text + "\n") }

    /// Replaces the live status line on stderr with `text`, cut to the width so it never wraps (a terminal only;
    /// elsewhere nothing is written).
    public func status(_ text: String) {
        if isTerminal && !quiet {
            let columns = statusWidth
            drawStatus(text.count < columns ? text : String(text.prefix(max(1, columns - 2))) + "…")
        }
    }
    /// Clears the live status line so the next output starts on an empty line (a terminal only).
    public func endStatus() {
        if isTerminal && !quiet { eraseStatus() }
    }
    /// The width (a console that is no terminal has no narrower one).
    public var statusWidth: Int { width }
    /// Back to the start of the line, erase it, and write the line, the cursor left at its end.
    public func drawStatus(_ line: String) { err("\r\u{1B}[K" + line) }
    /// Back to the start of the line, then erase it.
    public func eraseStatus() { err("\r\u{1B}[K") }

    /// An error line, "error:" in red on a colour terminal.
    public func error(_ message: String, location: String? = nil) {
        let prefix = (location.map { $0 + ": " } ?? "") + "error: "
        // Messages repeat what was typed or read (a path, a name): at a terminal, its control characters spelled out.
        let wrapped = wrap(prefix + (isTerminal ? terminalSafe(message) : message), width: width - 1, indent: 2)
        let label = useColor ? "\u{1B}[1;31merror:\u{1B}[0m " : "error: "
        err(wrapped.replacingOccurrences(of: "error: ", with: label, options: [], range: wrapped.range(of: "error: ")) + "\n")
    }
}

/// stdout and stderr of the process.
public final class StandardConsole: Console {
    public let isTerminal: Bool
    public let outputIsTerminal: Bool
    public let useColor: Bool
    public let quiet: Bool

    public let colorMode: ColorMode
    /// Whether to page (the session's `pager` setting, asked at each page).
    public var pagingEnabled: () -> Bool = { true }
    /// Columns of the live status line on screen, 0 when none is.
    private var statusColumns = 0

    /// The terminal's own width when it is narrower than `width`'s floor of 20: a line cut to 20 columns and drawn
    /// without wrapping on a terminal of 15 would lose its end to the last column.
    public var statusWidth: Int { min(width, max(1, terminalColumns(.error) ?? width)) }

    /// Draws the live line with the cursor left at its first character, and without wrapping (DECAWM off while it
    /// is written, so a line cut to a width the terminal has just narrowed from stays on one row). A terminal that
    /// reflows when it is narrowed (tmux, kitty, VTE, iTerm2) re-wraps the line onto several rows below that
    /// character and keeps the cursor on it, so `eraseStatus` finds every row of it whenever the resize came:
    /// counting the rows from the width read before the write (the way before) left pieces of the old line when the
    /// resize reached the terminal between the read and the write.
    public func drawStatus(_ line: String) {
        _ = write(.error, erasingStatus() + Self.drawing(line))
        statusColumns = max(1, line.count)
    }

    public func eraseStatus() {
        if statusColumns > 0 { _ = write(.error, erasingStatus()) }
        statusColumns = 0
    }

    private func erasingStatus() -> String {
        Self.erasing(columns: statusColumns, terminalColumns: terminalColumns(.error), terminalRows: terminalRows(.error))
    }

    /// What draws `line` as the live line: without wrapping, the cursor left at its first character.
    static func drawing(_ line: String) -> String { "\u{1B}[?7l" + line + "\u{1B}[?7h\r" }

    /// What erases a live line of `columns` (0: none shown) from its first row down: each row it may take now, the
    /// cursor saved and put back (DECSC, DECRC), as moving down stops at the screen's last row. Rows below the line
    /// hold nothing (every other write erases the line first), so erasing more of them than it takes costs only
    /// bytes: as many as it would take at 20 columns, or at the terminal's width if narrower, and at most the
    /// screen's height. (Erasing to the end of the screen, ESC [J, would be shorter, but tmux copies the whole
    /// screen into its scrollback when that is asked with the cursor on its first row: a copy of the live line at
    /// every redraw.)
    static func erasing(columns: Int, terminalColumns: Int?, terminalRows: Int?) -> String {
        guard columns > 0 else { return "" }
        let narrowest = max(1, min(20, terminalColumns ?? 20))
        let rows = min(max(1, terminalRows ?? 100), (columns + narrowest - 1) / narrowest)
        return "\r\u{1B}7\u{1B}[2K" + String(repeating: "\u{1B}[B\u{1B}[2K", count: rows - 1) + "\u{1B}8"
    }

    /// Where the console's bytes go: stdout and stderr (tests pass their own, to see what a terminal is sent).
    private let write: (StandardStream, String) -> String?

    public init(quiet: Bool, write: @escaping (StandardStream, String) -> String? = writeToStream) {
        self.write = write
        let environment = ProcessInfo.processInfo.environment
        // A terminal that says it understands no escape sequences (TERM=dumb: Emacs's shell buffer) gets progress
        // as plain lines, and no colour.
        isTerminal = CharLMShell.isTerminal(.error) && environment["TERM"] != "dumb"
        outputIsTerminal = CharLMShell.isTerminal(.output)
        useColor = isTerminal && environment["NO_COLOR"] == nil
        self.quiet = quiet
        if CharLMShell.isTerminal(.output) && environment["NO_COLOR"] == nil {
            colorMode = ["truecolor", "24bit"].contains(environment["COLORTERM"] ?? "") ? .trueColor : .palette256
        } else {
            colorMode = .none
        }
    }

    /// Runs $PAGER (default `less -FRX`: quits at once when the text fits, keeps colours, leaves the text on the
    /// screen) with `text` on its standard input, at a terminal, when the text has more lines than the screen less
    /// the prompt's.
    public func page(_ text: String) -> Bool {
        guard outputIsTerminal, pagingEnabled(), let rows = terminalRows(.output) else { return false }
        var lines = 0
        for character in text.utf8 where character == UInt8(ascii: "\n") {
            lines += 1
            if lines >= rows { break }
        }
        guard lines >= rows else { return false }
        let command = ProcessInfo.processInfo.environment["PAGER"].flatMap { $0.isEmpty ? nil : $0 } ?? "less -FRX"
        // popen runs it through /bin/sh in charlm's own process group, the terminal's foreground group: a pager started
        // in a group of its own (Foundation's Process) is stopped by the kernel the moment it reads the terminal.
        // A pager that quits before reading everything (q in less) closes the pipe: the rest is dropped, quietly
        // (SIGPIPE, which would end charlm, is ignored while the pager runs).
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        guard let pipe = popen(command, "w") else { return false }
        _ = writeToDescriptor(fileno(pipe), text)
        // A pager that is not there (the shell's 127: no less on this machine) showed nothing: the caller writes it.
        let status = pclose(pipe)
        if status != -1 && (status >> 8) & 0xFF == 127 { return false }
        return true
    }

    public var width: Int {
        min(1000, max(20, terminalColumns(.output) ?? terminalColumns(.error) ?? 80))
    }

    /// Whether a write to stdout has failed (said once on stderr; later output to stdout is dropped). The
    /// executable then exits 1, as `cat` does, however the commands went.
    public private(set) var outputFailed = false

    /// Output while the live line is shown erases it first (the cursor is on its first character).
    public func out(_ text: String) {
        eraseStatus()
        if outputFailed { return }
        if let reason = write(.output, text) {
            outputFailed = true
            _ = write(.error, "charlm: cannot write to standard output (\(reason)); its output is dropped\n")
        }
    }

    public func err(_ text: String) {
        eraseStatus()
        _ = write(.error, text)
    }
}

/// Collects output in memory (tests).
public final class BufferConsole: Console {
    public private(set) var stdout = ""
    public private(set) var stderr = ""
    /// Tests set it to see the live status lines a terminal gets.
    public var isTerminal = false
    /// Tests set it to see what a terminal would be shown.
    public var outputIsTerminal = false
    public let useColor = false
    public let quiet: Bool
    public let colorMode = ColorMode.none
    public let width = 80

    public init(quiet: Bool = false) { self.quiet = quiet }
    public func out(_ text: String) { stdout += text }
    public func err(_ text: String) { stderr += text }
    public func clear() {
        stdout = ""
        stderr = ""
    }
}
