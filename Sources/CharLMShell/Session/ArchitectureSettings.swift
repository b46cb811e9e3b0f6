// The model settings as an architecture: `arch` chooses the family (a recurrent cell, or the transformer), and the
// settings of that family make its `ModelArchitecture` (and are read back from a checkpoint's). Also here: what the
// model settings must agree on, checked when one is set (heads divide embed; seq at most the context), the notes for
// a setting the chosen family does not use, and `cell`, the old name of `arch` for the recurrent three.
//
// `set cell transformer` is refused, pointing to `set arch`: a transformer has no cell, and `cell` keeps meaning
// what it always meant.

import CharLM

/// What `set arch` chooses: a recurrent network of one of the three cells, or the transformer.
public enum Arch: String, CaseIterable, Sendable {
    case lstm, gru, rnn, transformer

    /// The recurrent cell, or nil for the transformer.
    public var layerKind: LayerKind? { LayerKind(rawValue: rawValue) }
}

extension Settings {
    /// The architecture these settings make, for a vocabulary of `vocabularySize` characters.
    public func architecture(vocabularySize: Int) -> any ModelArchitecture {
        guard let kind = arch.layerKind else {
            return TransformerConfig(vocabularySize: vocabularySize, embeddingSize: embed, layerCount: layers, headCount: heads,
                                     context: context, bias: bias, dropout: dropout)
        }
        return RecurrentConfig(vocabularySize: vocabularySize, embeddingSize: embed, hiddenSize: hidden, layerCount: layers,
                               dropout: dropout, layerKind: kind)
    }

    /// Takes the settings of `architecture` (its V is the vocabulary's, not a setting); the other family's settings
    /// keep their values.
    mutating func adoptArchitecture(of architecture: any ModelArchitecture) {
        if let config = architecture as? RecurrentConfig {
            arch = Arch(rawValue: config.layerKind.rawValue)!
            (embed, hidden, layers, dropout) = (config.embeddingSize, config.hiddenSize, config.layerCount, config.dropout)
        } else if let config = architecture as? TransformerConfig {
            arch = .transformer
            (embed, layers, heads, context) = (config.embeddingSize, config.layerCount, config.headCount, config.context)
            (bias, dropout) = (config.bias, config.dropout)
        }
    }

    /// Throws when the settings, just after `name` was set, disagree: for the transformer, heads must divide embed
    /// and seq be at most the context; whatever `arch` says, seq must fit the context of the transformer in use
    /// (`model`), since that is what `train` trains.
    func checkAgreement(afterSetting name: String, model: (any ModelArchitecture)?) throws {
        if arch == .transformer {
            if ["arch", "cell", "embed", "heads"].contains(name) && embed % heads != 0 {
                let divisors = (1...embed).filter { embed % $0 == 0 }
                let near = [divisors.last { $0 < heads }, divisors.first { $0 > heads }].compactMap { $0 }
                throw ShellError.badArgument(
                    "heads \(heads) does not divide embed \(embed): each head takes an equal share of the embedding; "
                    + "set heads to a divisor of \(embed) (" + near.map(String.init).joined(separator: " or ")
                    + ") or embed to a multiple of \(heads)")
            }
            if ["arch", "cell", "seq", "context"].contains(name) && seq > context {
                throw ShellError.badArgument(
                    "seq \(seq) is longer than context \(context): the transformer attends over at most context characters; "
                    + (name == "context" ? "lower seq to \(context) or less first, or keep context at \(seq) or more"
                       : "lower seq to \(context) or less, or raise context"))
            }
        }
        if name == "seq", let model = model as? TransformerConfig, seq > model.context {
            throw ShellError.badArgument(
                "seq \(seq) is longer than the model's context \(model.context): it attends over at most \(model.context) "
                + "characters; lower seq to \(model.context) or less ("
                + (arch == .transformer ? "or raise context, then `reset`)" : "or `reset` first, to the \(arch.rawValue.uppercased()) that arch names)"))
        }
    }

    /// A note for setting `name` when `arch` does not use it, else nil.
    func unusedSettingNote(_ name: String) -> String? {
        let transformerOnly = ["heads", "context", "bias"]
        if arch == .transformer && name == "hidden" {
            return "note: hidden is the recurrent networks' width; the transformer's MLP is 4 x embed wide (`set arch` chooses)"
        }
        if arch != .transformer && transformerOnly.contains(name) {
            return "note: \(name) is the transformer's; this \(arch.rawValue.uppercased()) does not use it (`set arch transformer`)"
        }
        return nil
    }

    /// `cell`: `arch`'s recurrent three under their old name. The transformer is refused, pointing to `arch`.
    static let cellKey = SettingKey(declaration: Setting.cell, storage: SettingStorage(
        get: { $0.arch.layerKind?.rawValue ?? "none (arch transformer)" },
        set: { settings, text, declaration in
            guard let kind = LayerKind(rawValue: text.lowercased()) else {
                if text.lowercased() == Arch.transformer.rawValue {
                    throw ShellError.badArgument("cell names a recurrent cell (lstm, gru or rnn), and a transformer has none: "
                                                 + "`set arch transformer`")
                }
                throw declaration.outOfRange(text)
            }
            settings.arch = Arch(rawValue: kind.rawValue)!
        }))
}
