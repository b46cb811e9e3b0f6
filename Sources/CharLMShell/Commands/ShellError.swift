// The shell's own errors, as cases. The engine's errors (CharLMError) pass through the shell as themselves; both
// render as `error: MESSAGE` (Runner.swift), and only the executable turns outcomes into exit codes.

import CharLM

/// Something the shell refused, with the message to show.
public enum ShellError: Error, Equatable, CustomStringConvertible {
    /// The words do not fit the command's usage line.
    case usage(String)
    /// A malformed command line (an unterminated quote, an unknown escape).
    case syntax(LexError)
    case unknownCommand(String, suggestion: String?)
    case unknownSetting(String, suggestion: String?)
    /// A command's argument out of its range or of the wrong kind: the whole sentence.
    case badArgument(String)
    /// What the command needs first.
    case needs(Requirement)
    /// The loaded text's characters are not the model's.
    case vocabularyMismatch(forTraining: Bool)
    case scriptsNestedTooDeep(path: String, limit: Int)
    /// A download failed; the sentence says why and what to do.
    case download(String)

    /// What a command can need before it runs.
    public enum Requirement: Equatable, Sendable {
        /// A model, made by loading a text (training).
        case modelFromText
        /// A model, from a text or a checkpoint.
        case model
        /// Text to train on; the model's own text, when a checkpoint names it.
        case textToTrainOn(trainedOn: String?)
        /// Text to build a model for (`reset`).
        case textForAModel
        /// A model to save.
        case modelToSave
        /// A loaded text, for the named command.
        case text(command: String)
        /// Training history (`plot`).
        case training
        /// A best model kept from validations (`restore best`, `save best`).
        case bestModel
    }

    public var description: String {
        switch self {
        case .usage(let usage): return "usage: \(usage)"
        case .syntax(let error): return error.description
        case .unknownCommand(let name, let suggestion):
            return "unknown command '\(abbreviated(name))'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "; `help` lists the commands")
        case .unknownSetting(let name, let suggestion):
            return "unknown setting '\(abbreviated(name))'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "; `show` lists them")
        case .badArgument(let sentence): return sentence
        case .needs(let requirement):
            switch requirement {
            case .modelFromText: return "no model yet: `load` a text first"
            case .model: return "no model yet: `load` a text or a checkpoint first"
            case .textToTrainOn(let trainedOn):
                return "no text to train on: `load` a text first" + (trainedOn.map { " (this model was trained on \($0))" } ?? "")
            case .textForAModel: return "nothing to build a model for: `load` a text first"
            case .modelToSave: return "nothing to save: there is no model yet"
            case .text(let command): return "\(command) needs a text: `load` one first"
            case .training: return "nothing to plot yet: `train` first"
            case .bestModel:
                return "no best model yet: it is kept from the validations `train` runs (every `eval` steps, and at the end)"
            }
        case .vocabularyMismatch(let forTraining):
            return forTraining
                ? "the loaded text's characters differ from the model's: `reset` for a new model on this text, or load text with the model's characters"
                : "the loaded text's characters differ from the model's; `load` the text the model was trained on"
        case .scriptsNestedTooDeep(let path, let limit):
            return "scripts nested deeper than \(limit) levels: does '\(path)' source itself?"
        case .download(let sentence): return sentence
        }
    }
}

/// Raised when Ctrl-C stopped a long command; the session is consistent.
public struct Interrupted: Error, CustomStringConvertible {
    public let description: String
}
