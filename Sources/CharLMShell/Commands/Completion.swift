// Tab completion as a pure function of the line and the cursor: command names first, then each command's own
// argument completion from the table (setting keys and values, file paths, dataset names).

/// Candidates that replace the word under the cursor.
public func completions(line: String, cursor: Int, session: Session? = nil) -> [String] {
    let before = String(line.prefix(max(0, min(cursor, line.count))))
    // Words before the cursor, split on spaces outside quotes; the last is the one being completed.
    var words: [String] = []
    var current = ""
    var inQuotes = false
    for character in before {
        if character == "\"" { inQuotes.toggle(); current.append(character); continue }
        if (character == " " || character == "\t") && !inQuotes {
            if !current.isEmpty { words.append(current) }
            current = ""
        } else {
            current.append(character)
        }
    }
    if words.isEmpty {
        let names = Commands.table.flatMap { [$0.name] + $0.aliases }
        return names.filter { $0.hasPrefix(current) }.sorted()
    }
    guard let command = Commands.command(named: words[0]) else { return [] }
    return command.complete(session, Array(words.dropFirst()), current)
}
