// Reading a command's arguments: how many there are, whole numbers, a prompt and a count, TEXT or @FILE, `--flag FILE`
// options, and the amounts `train` takes. Each mistake is a `ShellError` whose message names what was expected.

import CharLM
import Foundation

/// Throws a usage error unless `words` has between `min` and `max` entries.
func expectArguments(_ words: [Word], _ min: Int, _ max: Int, _ usage: String) throws {
    guard words.count >= min && words.count <= max else { throw ShellError.usage(usage) }
}

/// A whole number from 1 to `maximum`, or a usage error naming `what`.
func positiveInteger(_ text: String, _ what: String, maximum: Int) throws -> Int {
    guard let value = Int(text), value >= 1, value <= maximum else {
        throw ShellError.badArgument("\(what) must be a whole number from 1 to \(maximum); got '\(text)'")
    }
    return value
}

/// `["PROMPT"] [N]`, as `gen` and `ngram gen` read them: an unquoted number alone is N; an unquoted @FILE is the
/// file's text; N defaults to `length`.
func promptAndCount(_ words: [Word], command: String, session: Session) throws -> (prompt: String, count: Int) {
    let usage = "\(command) [\"PROMPT\"] [N]"
    try expectArguments(words, 0, 2, usage)
    var prompt = ""
    var count = session.settings.length
    var rest = words[...]
    if let first = rest.first, first.quoted || Int(first.text) == nil {
        prompt = first.text
        rest = rest.dropFirst()
        if !first.quoted && prompt.hasPrefix("@") {
            prompt = try readArgumentFile(String(prompt.dropFirst()))
        } else if prompt.utf8.count > maximumArgumentFileBytes {
            // One cap for a prompt however it comes.
            throw ShellError.badArgument("\(command): the prompt has \(grouped(prompt.utf8.count)) bytes; a prompt holds at most "
                                         + "\(grouped(maximumArgumentFileBytes)) (as a @FILE prompt does)")
        }
    }
    if let last = rest.first {
        guard let value = Int(last.text), Setting.length.domain.contains(Double(value)) else {
            throw ShellError.badArgument("\(command): N must be \(Setting.length.domain.rule); got '\(last.text)'")
        }
        count = value
        rest = rest.dropFirst()
    }
    guard rest.isEmpty else { throw ShellError.usage(usage) }
    return (prompt, count)
}

/// A `TEXT` argument: its text, or the text of the file it names as @FILE (when not quoted).
func textArgument(_ word: Word) throws -> String {
    word.text.hasPrefix("@") && !word.quoted ? try readArgumentFile(String(word.text.dropFirst())) : word.text
}

/// Takes `flag FILE` out of `words`, returning FILE (with ~ expanded), or nil when the flag is absent.
func takeFileOption(_ flag: String, from words: inout ArraySlice<Word>, usage: String) throws -> String? {
    guard let index = words.firstIndex(where: { !$0.quoted && $0.text == flag }) else { return nil }
    guard index + 1 < words.endIndex else { throw ShellError.badArgument("\(flag) needs a file name; usage: \(usage)") }
    let path = expandingTilde(words[index + 1].text)
    words.removeSubrange(index...(index + 1))
    return path
}

/// The largest file `gen @FILE` and `cells @FILE` read: a prompt or text far larger than anyone reads.
let maximumArgumentFileBytes = 10_000_000

/// The text of a file named in an argument (`@FILE`), with the error a user can act on.
func readArgumentFile(_ path: String) throws -> String {
    let bytes = try readFileBytes(at: expandingTilde(path), maximumBytes: maximumArgumentFileBytes, limit: "a prompt or text file")
    // A binary file is refused as `load` refuses it.
    if let zero = bytes.firstIndex(of: 0) {
        throw CharLMError.binaryFile(path: path, reason: "it has a NUL byte at offset \(zero)")
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Parses `train` arguments: `N` or `N epochs`, `N steps`, `90s`, `5m`, `2h`. Each mistake gets its own sentence.
func parseTrainingAmount(_ words: [String]) throws -> Session.TrainingAmount {
    let usage = "train [N | N epochs | N steps | 90s | 5m | 2h | until N]"
    /// The number in `text`, above 0; errors quote `shown`, the word as typed.
    func positive(_ text: String, _ what: String, shown: String) throws -> Double {
        guard let value = decimalNumber(text) else {
            throw ShellError.badArgument("train needs a number of epochs, `N steps` or a duration like 90s, 5m or 2h; got '\(abbreviated(shown))'")
        }
        guard value > 0 else { throw ShellError.badArgument("train: \(what) must be above 0; got '\(abbreviated(shown))'") }
        return value
    }
    switch words.count {
    case 0: return .epochs(1)
    case 1 where words[0].lowercased() == "until":
        throw ShellError.badArgument("train until N: N is how many validations in a row may pass without improvement; "
                                     + "for example `train until 3`")
    case 1:
        let word = words[0].lowercased()
        for (suffix, scale) in [("s", 1.0), ("m", 60.0), ("h", 3600.0)] where word.hasSuffix(suffix) {
            if decimalNumber(String(word.dropLast())) != nil {
                return .seconds(try positive(String(word.dropLast()), "a duration", shown: words[0]) * scale)
            }
        }
        return .epochs(try positive(word, "the number of epochs", shown: words[0]))
    case 2 where words[0].lowercased() == "until":
        guard let count = Int(words[1]), (1...1000).contains(count) else {
            throw ShellError.badArgument("train until N: N is how many validations in a row may pass without improvement, "
                                         + "a whole number from 1 to 1000; got '\(abbreviated(words[1]))'")
        }
        return .untilNoImprovement(count)
    case 2:
        switch words[1].lowercased() {
        case "steps", "step":
            // 1e12 is a whole number too; a count beyond what charlm counts to is refused by `train` itself.
            guard let value = Int(words[0]).map(Double.init) ?? decimalNumber(words[0]), value > 0, value == value.rounded() else {
                throw ShellError.badArgument("train N steps: N must be a whole number above 0; got '\(abbreviated(words[0]))'")
            }
            return .steps(value >= 9e18 ? Int.max : Int(value))
        case "epochs", "epoch":
            return .epochs(try positive(words[0], "the number of epochs", shown: words[0]))
        default:
            throw ShellError.badArgument("train N UNIT: the unit is steps or epochs (a time is one word: 90s, 5m, 2h); got '\(abbreviated(words[1]))'")
        }
    default:
        throw ShellError.usage(usage)
    }
}
