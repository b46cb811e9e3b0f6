// Where a session's files may go, as one set of rules: a bare `save` writes where the last `save` did (else
// charlm.safetensors) and never replaces a file this session did not write; autosave writes where a bare `save`
// would; keepbest never replaces a file this session did not write, the metrics log, or autosave's file.

import CharLM
import Foundation

/// The files a session wrote, and the rules for where the next ones may go.
struct SaveTargets {
    /// The file a bare `save` writes when this session has not saved yet.
    static let defaultPath = "charlm.safetensors"

    /// The last path `save` wrote for the current model: where a bare `save` writes again (nil after a new model).
    var lastSavePath: String?
    /// Every path this session wrote, whichever model it held.
    private(set) var writtenPaths: Set<String> = []

    /// Records a file this session wrote.
    mutating func wrote(_ path: String) { writtenPaths.insert(path) }

    /// A different model: a bare `save` must not replace the last file with it.
    mutating func forgetLastSave() { lastSavePath = nil }

    /// Where `save` writes: `requested`, else the last path saved, else the default. A bare `save` that would replace
    /// a file this session did not write (or wrote for another model) is refused, naming the file.
    func savePath(requested: String?) throws -> String {
        if requested?.isEmpty == true { throw ShellError.usage("save [PATH]") }
        let path = requested.map(expandingTilde) ?? lastSavePath ?? Self.defaultPath
        if requested == nil && lastSavePath == nil && FileManager.default.fileExists(atPath: path) {
            let whose = writtenPaths.contains(path)
                ? "holds the model this session saved before the current one was loaded or made"
                : "already exists and this session did not write it"
            throw ShellError.badArgument("'\(path)' \(whose): `save \(path)` to replace it, or `save PATH` to another name")
        }
        return path
    }

    /// Where autosave writes: where a bare `save` would. Like a bare `save`, it never replaces a file this session
    /// did not write, so that case is refused before training starts.
    func autosavePath() throws -> String {
        if let lastSavePath { return lastSavePath }
        let path = Self.defaultPath
        if FileManager.default.fileExists(atPath: path) && !writtenPaths.contains(path) {
            throw ShellError.badArgument("autosave writes where a bare `save` does, and '\(path)' already exists and this "
                                         + "session did not write it: `save PATH` once to choose the file, or `set autosave off`")
        }
        return path
    }

    /// What two paths of one file have in common: links followed, then made absolute and standardised, so
    /// `./l.csv` and `l.csv` are one file.
    static func sameFileKey(_ path: String) -> String {
        URL(fileURLWithPath: resolvedSaveTarget(expandingTilde(path))).standardizedFileURL.path
    }

    /// Throws when autosave would write over the metrics log (`log` names the file autosave writes).
    func checkAutosave(_ autosave: String, log: String?) throws {
        if let log, Self.sameFileKey(log) == Self.sameFileKey(autosave) {
            throw ShellError.badArgument("autosave writes the whole session to '\(autosave)', which is the metrics log (`log`): "
                                         + "`set log` to another name, or `save PATH` once to choose where autosave writes")
        }
    }

    /// Throws when `path` is a folder itself, or the folder it names is not there (or is not a folder), naming the
    /// setting.
    func checkFolder(of path: String, for setting: String) throws {
        // Up to the last slash, by hand: Foundation's deletingLastPathComponent traps on ".".
        let full = expandingTilde(path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory) && isDirectory.boolValue {
            throw ShellError.badArgument("\(setting) names '\(path)', which is a folder: name a file inside it")
        }
        let folder = full.lastIndex(of: "/").map { $0 == full.startIndex ? "/" : String(full[..<$0]) } ?? ""
        var isFolder: ObjCBool = false
        guard folder.isEmpty || (FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue) else {
            throw ShellError.badArgument("\(setting) names '\(path)', in a folder that does not exist ('\(folder)'): create it, "
                                         + "or `set \(setting)` to a file in an existing folder")
        }
    }

    /// Where `keepbest` writes, checked before training starts. Like a bare `save`, it never replaces a file this
    /// session did not write (a text, a loaded checkpoint), nor the metrics log or the file autosave writes.
    func keepbestPath(_ requested: String, autosave: String?, log: String?) throws -> String {
        let path = expandingTilde(requested)
        let target = Self.sameFileKey(path)
        if let log, Self.sameFileKey(log) == target {
            throw ShellError.badArgument("keepbest and log name the same file, '\(path)': `set keepbest` to another name")
        }
        if let autosave, Self.sameFileKey(autosave) == target {
            throw ShellError.badArgument("keepbest names '\(path)', where autosave writes the whole session: `set keepbest` to another name")
        }
        if FileManager.default.fileExists(atPath: path) && !writtenPaths.contains(path) {
            throw ShellError.badArgument("keepbest names '\(path)', which already exists and this session did not write it: "
                                         + "`set keepbest` to a new name, or `save best \(path)` to replace it once")
        }
        return path
    }
}
