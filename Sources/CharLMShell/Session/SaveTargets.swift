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

/// The kinds of file charlm replaces when told to write over them: a file of another kind at the path (the corpus
/// just loaded, a text, someone's notes) is refused, never overwritten.
enum ReplaceableKind {
    /// A safetensors file (`save`, `save best`): an 8-byte header length, then the header's '{'.
    case checkpoint
    /// An HTML page (`cells --html`, `attn --html`).
    case htmlPage

    /// Whether a file starting with `start` (its first 16 bytes or fewer) and `size` bytes long is of this kind.
    func matches(start: [UInt8], size: Int) -> Bool {
        switch self {
        case .checkpoint:
            guard start.count >= 9 else { return false }
            let length = start.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return start[8] == UInt8(ascii: "{") && length <= UInt64(size - 8)
        case .htmlPage:
            let text = String(decoding: start, as: UTF8.self).lowercased()
            return text.hasPrefix("<!doctype html") || text.hasPrefix("<html")
        }
    }

    var description: String { self == .checkpoint ? "a safetensors checkpoint" : "an HTML page" }

    /// Refuses when `path` (or the file a link there points to) is a non-empty regular file of another kind. A name
    /// ending in .safetensors is a checkpoint's whatever it holds: a damaged one may be saved over.
    func checkReplaceable(_ path: String, by command: String) throws {
        let target = resolvedSaveTarget(path)
        if self == .checkpoint && target.lowercased().hasSuffix(".safetensors") { return }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: target),
              attributes[.type] as? FileAttributeType == .typeRegular,
              let size = (attributes[.size] as? NSNumber)?.intValue, size > 0 else { return }
        guard let handle = FileHandle(forReadingAtPath: target) else { return }
        defer { try? handle.close() }
        let start = [UInt8]((try? handle.read(upToCount: 16)) ?? Data())
        if !matches(start: start, size: size) {
            throw ShellError.badArgument("'\(path)' exists and is not \(description), so \(command) will not replace it: "
                                         + "name a new file, or remove that one first")
        }
    }
}
