// `help`, `help COMMAND`, `help SETTING` and `show`: generated from the command table (Commands.swift) and the
// settings table (Settings.swift), so a command or setting added there is explained here with nothing more to write.

import CharLM

/// What `help` explains: every command and every setting, by name.
var helpTopics: [String] { Commands.table.map(\.name) + Settings.keys.map(\.name) }

/// `help` and `help NAME`.
func helpText(for name: String?, width: Int = 80) throws -> String {
    let width = width - 1
    if let name {
        if let command = Commands.command(named: name) {
            let aliases = command.aliases.isEmpty ? "" : " (also: " + command.aliases.joined(separator: ", ") + ")"
            var text = wrap("usage: \(command.usage)\(aliases)", width: width, indent: 7) + "\n"
                + wrap(command.summary, width: width, indent: 2) + "\n\n" + wrap(command.details, width: width, indent: 0) + "\n"
            if command.name == "set" { text += "\n" + settingsList(width: width + 1) }
            // A command that shares its name with a setting (temp, seed, topk, topp, len, eval): the setting too.
            if let key = Settings.key(named: command.name) { text += "\n" + settingHelp(key, width: width) }
            return text
        }
        if let key = Settings.key(named: name) { return settingHelp(key, width: width) }
        throw ShellError.unknownCommand(name, suggestion: nearest(to: name, among: helpTopics))
    }
    return "commands (`help COMMAND` or `help SETTING` for details):\n"
        + twoColumns(Commands.table.map { ($0.usage, $0.summary) }, width: width, maximumLeft: 26) + "\n"
        + wrap("scripts: one command per line (or several, separated by `;`), # comments, a trailing \\ continues a line", width: width, indent: 2)
        + "\n"
}

/// A setting: what it means, what it takes, its default, and when a change takes effect.
func settingHelp(_ key: SettingKey, width: Int) -> String {
    let declaration = key.declaration
    return wrap("\(key.name): \(key.summary). \(declaration.domain.rule.prefix(1).uppercased() + declaration.domain.rule.dropFirst()); "
                + "default \(declaration.defaultText). Group: \(key.group.rawValue)"
                + (key.group.note.map { " (\($0))" } ?? "") + ".\nSet it with `set \(key.name) VALUE`.",
                width: width, indent: 2) + "\n"
}

/// Every setting with its value (`show`) or default (`help set`, `valueHeading` "default") and meaning, in two
/// columns under a heading (the value's column holds `transformer`).
func settingsList(_ settings: Settings = Settings(), width: Int = 80, valueHeading: String = "default") -> String {
    let nameWidth = Settings.keys.map(\.name.count).max()! + 2
    let heading = ("setting".rightPadded(to: nameWidth) + valueHeading, "meaning")
    let rows = [heading] + Settings.keys.map { key in (key.name.rightPadded(to: nameWidth) + key.get(settings), key.summary) }
    return twoColumns(rows, width: width - 1, maximumLeft: nameWidth + 11, indent: 0) + "\n"
}

/// `show [KEY]`: one setting's value, or every setting with its value and meaning.
func runShow(_ context: CommandContext, _ words: [Word]) throws {
    try expectArguments(words, 0, 1, "show [KEY]")
    let session = context.session
    if let name = words.first?.text {
        guard let key = Settings.key(named: name) else {
            throw ShellError.unknownSetting(name, suggestion: nearest(to: name, among: Settings.keys.map(\.name)))
        }
        session.console.info("\(key.name) \(key.get(session.settings))\n")
    } else {
        session.console.info(settingsList(session.settings, width: session.console.width, valueHeading: "value"))
    }
}
