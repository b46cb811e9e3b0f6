// Small text helpers every command uses: durations, padded columns, what normalisation changed, and the nearest name
// for "did you mean" (numbers with thousands separators are the engine's `grouped`, Errors.swift). Charts, bars and
// colours are in Render.swift.

import CharLM
import Foundation

/// Seconds as m:ss or h:mm:ss.
func duration(_ seconds: Double) -> String {
    let total = seconds.isFinite ? Int(min(max(0, seconds), 1e12).rounded()) : 0
    let (hours, minutes, secs) = (total / 3600, (total % 3600) / 60, total % 60)
    return hours > 0 ? String(format: "%ld:%02ld:%02ld", hours, minutes, secs) : String(format: "%ld:%02ld", minutes, secs)
}

/// A Float as people write it: 0.002, 5, 0.8.
func formatNumber(_ value: Float) -> String { formatSettingNumber(value) }

extension String {
    /// Right-aligned in `width` columns.
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    /// Left-aligned in `width` columns.
    func rightPadded(to width: Int) -> String { padding(toLength: max(width, count), withPad: " ", startingAt: 0) }
}

/// What normalisation changed, one phrase per kind of change (empty when nothing changed).
func describeChanges(_ report: NormalizationReport) -> [String] {
    func counted(_ count: Int, _ noun: String, _ what: String) -> String? {
        count > 0 ? "\(grouped(count)) \(noun)\(count == 1 ? "" : "s") \(what)" : nil
    }
    return [
        counted(report.replacedSequences, "invalid UTF-8 sequence", "replaced"),
        counted(report.lineBreaksConverted, "line break", "converted to \\n"),
        counted(report.invisibleRemoved, "invisible character", "removed"),
        counted(report.foldedToASCII, "character", "folded to ASCII"),
        counted(report.droppedNonASCII, "non-ASCII character", "dropped"),
        counted(report.lowercased, "character", "lowercased"),
    ].compactMap { $0 }
}

/// The columns `character` takes at a terminal (its first scalar's `columns`: 2 for CJK and most emoji).
func displayWidth(of character: Character) -> Int {
    guard let scalar = character.unicodeScalars.first else { return 0 }
    return scalar.value < 0x300 ? 1 : columns(scalar)
}

/// The columns `text` takes at a terminal (`displayWidth(of:)` summed).
func displayWidth<S: StringProtocol>(_ text: S) -> Int { text.reduce(0) { $0 + displayWidth(of: $1) } }

/// `text` wrapped at word boundaries to lines of at most `width` terminal columns (a CJK character takes two, see
/// `displayWidth`). Lines after the first of each paragraph start with `indent` spaces (a hanging indent); a word
/// longer than a line is cut. Existing line breaks are kept.
func wrap(_ text: String, width: Int, indent: Int = 0) -> String {
    let width = max(width, indent + 10)
    var output: [String] = []
    for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
        // A line that fits is left exactly as it is (its spacing may line up columns).
        if paragraph.count <= width / 2 || displayWidth(paragraph) <= width {
            output.append(String(paragraph))
            continue
        }
        var line = ""
        var lineWidth = 0
        var lineStart = true
        func finish() {
            output.append(line)
            line = String(repeating: " ", count: indent)
            lineWidth = indent
            lineStart = true
        }
        // Leading spaces of a paragraph (a table's indent) are kept.
        let leading = paragraph.prefix { $0 == " " }
        line = String(leading)
        lineWidth = leading.count
        for word in paragraph.dropFirst(leading.count).split(separator: " ", omittingEmptySubsequences: true) {
            // Measured once: a word of a million characters is cut in one pass.
            let characters = Array(word)
            let widths = characters.map(displayWidth(of:))
            var remaining = widths.reduce(0, +)
            let separator = lineStart ? 0 : 1
            if lineWidth + separator + remaining <= width {
                line += (lineStart ? "" : " ") + word
                lineWidth += separator + remaining
                lineStart = false
                continue
            }
            if !lineStart { finish() }
            // A word too long for any line: cut it across lines.
            var start = 0
            while lineWidth + remaining > width {
                var end = start
                var taken = 0
                while end < characters.count, lineWidth + taken + widths[end] <= width {
                    taken += widths[end]
                    end += 1
                }
                if end == start { end += 1; taken = widths[start] }  // cannot happen: a line holds 10 columns
                line += String(characters[start..<end])
                remaining -= taken
                start = end
                finish()
            }
            line += String(characters[start...])
            lineWidth += remaining
            lineStart = start == characters.count
        }
        output.append(line)
    }
    return output.map { $0.hasSuffix(" ") ? String($0.reversed().drop { $0 == " " }.reversed()) : $0 }.joined(separator: "\n")
}

/// Rows of (left, right) as two columns fitted to `width`: the left column as wide as its widest entry up to
/// `maximumLeft`, the right one wrapped within its column; a left entry wider than its column puts its right text
/// on the next line. Each row starts with `indent` spaces.
func twoColumns(_ rows: [(String, String)], width: Int, maximumLeft: Int, indent: Int = 2) -> String {
    let left = min(maximumLeft, rows.map(\.0.count).max() ?? 0)
    let rightStart = indent + left + 2
    let rightWidth = max(20, width - rightStart)
    var lines: [String] = []
    for (name, text) in rows {
        let wrapped = wrap(text, width: rightWidth).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let pad = String(repeating: " ", count: rightStart)
        if name.count > left {
            lines.append(String(repeating: " ", count: indent) + name)
            lines += wrapped.map { pad + $0 }
        } else {
            lines.append(String(repeating: " ", count: indent) + name.rightPadded(to: left + 2) + (wrapped.first ?? ""))
            lines += wrapped.dropFirst().map { pad + $0 }
        }
    }
    return lines.joined(separator: "\n")
}

/// `path` with a leading `~` (the home folder) or `~user` (that user's) expanded, as a shell does; any other path,
/// or an unknown user, as it is.
/// A loss as `model`, `plot` and the validation list print it: 1.2345, or 3.2e+38 for one that has diverged (a
/// file may hold any finite number: %.4f of 1e308 is 309 digits).
func lossText(_ loss: Double) -> String {
    abs(loss) < 1e6 ? String(format: "%.4f", loss) : String(format: "%.4g", loss)
}

/// The user's home folder: $HOME when set (as shells, git and Python take it), else the account's.
public func homeFolder() -> String {
    if let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty { return home }
    return NSHomeDirectory()
}

func expandingTilde(_ path: String) -> String {
    guard path.hasPrefix("~") else { return path }
    let rest = path.dropFirst()
    let slash = rest.firstIndex(of: "/") ?? rest.endIndex
    let user = String(rest[..<slash])
    guard let home = user.isEmpty ? homeFolder() : FileManager.default.homeDirectory(forUser: user)?.path else {
        return path
    }
    return home + rest[slash...]
}

/// A number written in decimal (12, 0.5, -3e-4, .5), or nil: no hexadecimal (Swift's own parser reads "0x10"
/// as 16), no "inf" or "nan", no spaces.
func decimalNumber(_ text: String) -> Double? {
    let allowed = Set("0123456789.eE+-")
    guard !text.isEmpty, text.count <= 64, text.allSatisfy({ allowed.contains($0) }), text.contains(where: \.isNumber) else {
        return nil
    }
    return Double(text)
}

/// The candidate nearest to `word` within two edits (one for words under five letters), for "did you mean"; nil
/// when none is.
func nearest(to word: String, among candidates: [String]) -> String? {
    /// Edits from a to b: insertions, deletions, substitutions and swaps of neighbours ("tmep" is one from "temp").
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: Array(0...b.count), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for i in 1...a.count {
            for j in 1...b.count {
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
    // Words far longer than any name cannot be within two edits; skip the quadratic work for them.
    guard word.count <= 64 else { return nil }
    let scored = candidates.map { ($0, distance(Array(word.lowercased()), Array($0))) }.min { $0.1 < $1.1 }
    // Two edits for names of five letters or more; one for shorter words ('foo' is not 'log').
    guard let (best, score) = scored, score <= (word.count >= 5 ? 2 : 1) else { return nil }
    return best
}

/// Columns `scalar` takes in a terminal: 2 for East Asian wide characters and emoji, 0 for combining marks and
/// invisible formats, else 1 (an approximation of wcwidth: enough to line up tables).
func columns(_ scalar: Unicode.Scalar) -> Int {
    let v = scalar.value
    switch scalar.properties.generalCategory {
    case .nonspacingMark, .enclosingMark, .format: return 0
    default: break
    }
    let wide: [ClosedRange<UInt32>] = [0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
                                       0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
                                       0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD]
    return wide.contains { $0.contains(v) } ? 2 : 1
}

/// A label a user typed, made safe for a table row: control characters spelled out (`\n`, `U+1B`) so nothing they
/// hold moves the cursor or colours the terminal, then cut to `width` terminal columns ("…" at the cut) and padded
/// to exactly `width`.
func tableLabel(_ text: String, width: Int) -> String {
    var cells: [(String, Int)] = []
    for scalar in text.unicodeScalars {
        let category = scalar.properties.generalCategory
        if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
            || [.format, .lineSeparator, .paragraphSeparator].contains(category) {
            let spelled = scalar == "\n" ? "\\n" : scalar == "\t" ? "\\t" : "U+" + String(scalar.value, radix: 16, uppercase: true)
            cells.append((spelled, spelled.count))
        } else {
            cells.append((String(scalar), columns(scalar)))
        }
    }
    var result = "", used = 0
    let total = cells.reduce(0) { $0 + $1.1 }
    for (piece, width_) in cells {
        if total > width && used + width_ > width - 1 { result += "…"; used += 1; break }
        result += piece
        used += width_
    }
    return result + String(repeating: " ", count: max(0, width - used))
}

/// A perplexity as a number people read: 4.586, or 3.2e+75 for a model that has diverged.
func formatPerplexity(_ value: Double) -> String {
    value < 1e6 ? String(format: "%.3f", value) : String(format: "%.2g", value)
}

/// `text` as it may reach a terminal: control characters other than newline and tab (ESC, C1 controls, DEL) and the
/// invisible format characters (bidi overrides among them) spelled `<U+1B>`, so nothing a model or a user supplied
/// can move the cursor, recolour or rewrite the screen. Only for a terminal: a pipe gets the bytes as they are.
func terminalSafe(_ text: String) -> String {
    func isUnsafe(_ scalar: Unicode.Scalar) -> Bool { actsOnATerminal(scalar) && scalar != "\n" && scalar != "\t" }
    guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
    var safe = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        if isUnsafe(scalar) {
            safe.append(contentsOf: "<U+\(String(scalar.value, radix: 16, uppercase: true))>".unicodeScalars)
        } else {
            safe.append(scalar)
        }
    }
    return String(safe)
}

