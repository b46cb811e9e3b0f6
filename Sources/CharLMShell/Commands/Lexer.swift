// Splits one command line into commands at `;` and each command into words: whitespace separates, double quotes
// group (with \n, \t, \", \\ escapes), `#` outside quotes starts a comment. Errors point at the column.

/// One word of a command line.
public struct Word: Equatable, Sendable {
    /// The text after quotes and escapes are resolved.
    public var text: String
    /// Whether any part of it was quoted (a quoted "" is an empty word, and quoted text is never a keyword).
    public var quoted: Bool
    /// 1-based column of its first character.
    public var column: Int

    public init(_ text: String, quoted: Bool = false, column: Int = 1) {
        self.text = text
        self.quoted = quoted
        self.column = column
    }
}

/// A malformed line.
public struct LexError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public let column: Int
    public var description: String { "\(message) (column \(column))" }
}

/// The commands of `line`: its text split at every `;` outside quotes and before any comment (as sqlite3 and
/// psql split), each with the 0-based column it starts at. A line without `;` is one command.
public func splitCommands(_ line: String) -> [(text: String, offset: Int)] {
    let characters = Array(line)
    var commands: [(text: String, offset: Int)] = []
    var start = 0
    var inQuotes = false
    var index = 0
    while index < characters.count {
        let character = characters[index]
        if inQuotes && character == "\\" {
            index += 2
            continue
        }
        if character == "\"" { inQuotes.toggle() }
        if !inQuotes && character == "#" { break }
        if !inQuotes && character == ";" {
            commands.append((String(characters[start..<index]), start))
            start = index + 1
        }
        index += 1
    }
    commands.append((String(characters[start...]), start))
    return commands
}

/// The words of `line` (one command: `splitCommands` first for a line that may hold several).
public func lex(_ line: String) throws -> [Word] {
    var words: [Word] = []
    let characters = Array(line)
    // A NUL would end the text where C reads it (number parsing, file names): refuse it rather than act on a part.
    if let nul = characters.firstIndex(of: "\u{0}") {
        throw LexError(message: "the line has a NUL character; remove it", column: nul + 1)
    }
    var index = 0
    while index < characters.count {
        let character = characters[index]
        if character == " " || character == "\t" {
            index += 1
            continue
        }
        if character == "#" { break }
        let start = index
        var text = ""
        var quoted = false
        while index < characters.count, characters[index] != " ", characters[index] != "\t" {
            if characters[index] == "\"" {
                quoted = true
                let open = index
                index += 1
                var closed = false
                while index < characters.count {
                    let inner = characters[index]
                    if inner == "\"" {
                        closed = true
                        index += 1
                        break
                    }
                    if inner == "\\" {
                        guard index + 1 < characters.count else { break }
                        switch characters[index + 1] {
                        case "n": text.append("\n")
                        case "t": text.append("\t")
                        case "\"": text.append("\"")
                        case "\\": text.append("\\")
                        default:
                            throw LexError(message: "unknown escape '\\\(characters[index + 1])'; use \\n, \\t, \\\" or \\\\", column: index + 1)
                        }
                        index += 2
                        continue
                    }
                    text.append(inner)
                    index += 1
                }
                if !closed { throw LexError(message: "unterminated quote", column: open + 1) }
            } else {
                text.append(characters[index])
                index += 1
            }
        }
        words.append(Word(text, quoted: quoted, column: start + 1))
    }
    return words
}
