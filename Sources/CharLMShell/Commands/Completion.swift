// Tab completion as a pure function of the line and the cursor: command names first, then each command's own
// argument completion from the table (setting keys and values, file paths, dataset names), and the file names the
// rows offer.

import Foundation

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

/// File names in the folder of `prefix` that start with it; folders end in "/".
func completePath(_ prefix: String) -> [String] {
    let expanded = prefix.hasPrefix("~/") ? homeFolder() + prefix.dropFirst(1) : prefix
    let folder: String, partial: String, shown: String
    if let slash = expanded.lastIndex(of: "/") {
        folder = String(expanded[...slash])
        partial = String(expanded[expanded.index(after: slash)...])
        shown = String(prefix[...prefix.lastIndex(of: "/")!])
    } else {
        (folder, partial, shown) = ("", expanded, "")
    }
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder) else { return [] }
    return entries.filter { $0.hasPrefix(partial) && (partial.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map { entry in
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: folder + entry, isDirectory: &isDirectory)
        return shown + entry + (isDirectory.boolValue ? "/" : "")
    }
}
