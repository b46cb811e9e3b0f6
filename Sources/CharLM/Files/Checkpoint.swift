// Checkpoints: everything a session needs to carry on exactly where it stopped, in a safetensors file that PyTorch
// reads and writes. Model tensors use PyTorch's `state_dict` names; Adam's moments ride along as
// `optim.exp_avg.<name>` and `optim.exp_avg_sq.<name>`; the rest is JSON in `__metadata__`:
//
//   vocab     JSON array of one-character strings, index order                       (minimal contract)
//   config    the model family's own entries (the recurrent family: {"vocab_size", "embed", "hidden", "layers",
//             "dropout", "cell"}, RecurrentArchitecture.swift), then "lowercase" and "ascii"
//   format    "charlm", format_version "1"
//   training  {"seq", "batch", "lr", "clip", "warmup", "decay", "weight_decay", "val_fraction", "step", "epoch",
//              "generator", "loss_history", "validation_history"} (warmup, decay and weight_decay may be absent: 0;
//              validation_history is a list
//              of [step, loss] pairs, and files written before it existed kept it in `settings` as
//              "step:loss,step:loss", which is still read)
//   optimizer {"type": "adam" or "adamw", "step", "lr", "beta1", "beta2", "eps", "weight_decay" (adamw only)}
//   sampling  {"temperature", "top_k", "top_p"}
//   corpus    {"characters", "fnv1a64", "name"}: the fingerprint of the text trained on (name: its file name)
//   settings  {string: string}: the shell's own settings
//
// Which tensors there are, their names and the config entries are the model family's (`ModelArchitecture`,
// Models/LanguageModel.swift): nothing here names a family. Reading is CheckpointReading.swift.
//
// Floats that must come back bit-identical (lr, clip, ...) are widened to Double and written as the shortest decimal
// that reads back as that Double, so the Float32 comes back bit for bit.

import Foundation

/// Adam's state for resuming.
public struct OptimizerState: Equatable, Sendable {
    public var firstMoment: [Float]
    public var secondMoment: [Float]
    public var stepCount: Int
    public var settings: AdamSettings
}

/// Training progress for resuming.
public struct TrainingState: Equatable, Sendable {
    public var settings: TrainingSettings
    public var validationFraction: Double
    /// Completed steps.
    public var step: Int
    /// The trainer's generator (batch offsets, dropout masks) as it is after `step` steps.
    public var generator: SeededGenerator
    public var lossHistory: [Double]
    /// Every validation of the run so far.
    public var validationHistory: [ValidationPoint]

    public init(settings: TrainingSettings, validationFraction: Double, step: Int, generator: SeededGenerator,
                lossHistory: [Double], validationHistory: [ValidationPoint] = []) {
        self.settings = settings
        self.validationFraction = validationFraction
        self.step = step
        self.generator = generator
        self.lossHistory = lossHistory
        self.validationHistory = validationHistory
    }
}

/// Identifies the text a model was trained on: its length and a 64-bit FNV-1a hash of its token indices.
public struct CorpusFingerprint: Equatable, Sendable {
    public var characters: Int
    public var hash: UInt64
    /// The text's file name, to name it in messages; not part of what is compared.
    public var name: String?

    public init(characters: Int, hash: UInt64, name: String? = nil) {
        self.characters = characters
        self.hash = hash
        self.name = name
    }

    public static func == (a: CorpusFingerprint, b: CorpusFingerprint) -> Bool {
        a.characters == b.characters && a.hash == b.hash
    }
}

/// A saved session: model, vocabulary, and whatever else was saved with it.
public struct Checkpoint: Sendable {
    public static let formatName = "charlm"
    public static let formatVersion = 1
    /// The largest step count (training or optimizer) a file may hold.
    public static let maximumStep = Trainer.maximumStep

    /// The model's settings; its `parameters` table names the tensors.
    public var architecture: any ModelArchitecture
    public var vocabulary: Vocabulary
    /// Flat, in the order of `architecture.parameters`.
    public var parameters: [Float]
    public var optimizer: OptimizerState?
    public var training: TrainingState?
    public var sampling: SamplingSettings?
    public var corpus: CorpusFingerprint?
    /// Settings of the program that saved the file (the shell's), string to string.
    public var settings: [String: String]
    /// What loading noticed and a user should hear (a fresh optimizer, ignored tensors).
    public internal(set) var notes: [String] = []

    public init(
        architecture: any ModelArchitecture, vocabulary: Vocabulary, parameters: [Float], optimizer: OptimizerState? = nil,
        training: TrainingState? = nil, sampling: SamplingSettings? = nil, corpus: CorpusFingerprint? = nil,
        settings: [String: String] = [:]
    ) {
        self.architecture = architecture
        self.vocabulary = vocabulary
        self.parameters = parameters
        self.optimizer = optimizer
        self.training = training
        self.sampling = sampling
        self.corpus = corpus
        self.settings = settings
    }

    // MARK: Writing

    /// The safetensors bytes of this checkpoint.
    public func serialized() -> [UInt8] {
        let views = architecture.parameters.views
        /// Every view's values under its name and each alias (a tied tensor is written under each, equal).
        func namedTensors(_ values: [Float], prefix: String) -> [NamedTensor] {
            views.flatMap { view in
                ([view.name] + view.aliases).map { NamedTensor(name: prefix + $0, shape: view.shape, values: Array(values[view.range])) }
            }
        }
        var tensors = namedTensors(parameters, prefix: "")
        var metadata: [String: String] = [
            "format": Self.formatName,
            "format_version": String(Self.formatVersion),
            "vocab": "[" + vocabulary.scalars.map { jsonString(String(Character($0))) }.joined(separator: ", ") + "]",
            "config": jsonObject(architecture.checkpointConfig.map { ($0.key, $0.json) } + [
                ("lowercase", String(vocabulary.normalization.lowercase)), ("ascii", String(vocabulary.normalization.ascii)),
            ]),
        ]
        if let optimizer {
            tensors += namedTensors(optimizer.firstMoment, prefix: "optim.exp_avg.")
            tensors += namedTensors(optimizer.secondMoment, prefix: "optim.exp_avg_sq.")
            metadata["optimizer"] = jsonObject([
                ("type", jsonString(optimizer.settings.weightDecay > 0 ? "adamw" : "adam")), ("step", String(optimizer.stepCount)),
                ("lr", exact(optimizer.settings.learningRate)), ("beta1", exact(optimizer.settings.beta1)),
                ("beta2", exact(optimizer.settings.beta2)), ("eps", exact(optimizer.settings.epsilon)),
            ] + (optimizer.settings.weightDecay > 0 ? [("weight_decay", exact(optimizer.settings.weightDecay))] : []))
        }
        if let training {
            let perStep = Double(training.settings.sequenceLength) * Double(training.settings.batch)
            let trainCharacters = corpus.map { Double($0.characters) * (1 - training.validationFraction) }
            metadata["training"] = jsonObject([
                ("seq", String(training.settings.sequenceLength)), ("batch", String(training.settings.batch)),
                ("lr", exact(training.settings.learningRate)), ("clip", exact(training.settings.clip)),
                ("warmup", String(training.settings.warmupSteps)), ("decay", String(training.settings.decaySteps)),
                ("weight_decay", exact(training.settings.weightDecay)),
                ("val_fraction", String(training.validationFraction)), ("step", String(training.step)),
                ("epoch", trainCharacters.map { String(Double(training.step) * perStep / max($0, 1)) } ?? "null"),
                ("generator", jsonString(hex(training.generator))),
                ("loss_history", "[" + training.lossHistory.map { String($0) }.joined(separator: ",") + "]"),
                ("validation_history", "[" + training.validationHistory.map { "[\($0.step), \($0.loss)]" }.joined(separator: ", ") + "]"),
            ])
        }
        if let sampling {
            metadata["sampling"] = jsonObject([
                ("temperature", exact(sampling.temperature)), ("top_k", String(sampling.topK)), ("top_p", exact(sampling.topP)),
            ])
        }
        if let corpus {
            metadata["corpus"] = jsonObject([
                ("characters", String(corpus.characters)), ("fnv1a64", jsonString(String(corpus.hash, radix: 16))),
            ] + (corpus.name.map { [("name", jsonString($0))] } ?? []))
        }
        if !settings.isEmpty {
            metadata["settings"] = jsonObject(settings.keys.sorted().map { ($0, jsonString(settings[$0]!)) })
        }
        return SafeTensorsFile(metadata: metadata, tensors: tensors).serialized()
    }

    /// Writes the checkpoint atomically: the previous file stays intact unless the new one is complete.
    public func save(to path: String) throws {
        try writeFileAtomically(serialized(), to: path)
    }

    /// Writes already serialised checkpoint bytes atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try writeFileAtomically(bytes, to: path)
    }
}

/// A JSON object from already-encoded values, keys in the given order.
func jsonObject(_ pairs: [(String, String)]) -> String {
    "{" + pairs.map { jsonString($0.0) + ": " + $0.1 }.joined(separator: ", ") + "}"
}

/// A Float32 widened to Double, as the shortest decimal that reads back as that Double: the same bits come back.
func exact(_ value: Float) -> String { String(Double(value)) }

/// A generator state as 64 hex digits.
func hex(_ generator: SeededGenerator) -> String {
    let (a, b, c, d) = generator.state
    return [a, b, c, d].map { word in
        let digits = String(word, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }.joined()
}

func parseGenerator(_ text: String) -> SeededGenerator? {
    guard text.count == 64, text.allSatisfy(\.isHexDigit) else { return nil }
    let characters = Array(text)
    let words = (0..<4).compactMap { UInt64(String(characters[($0 * 16)..<($0 * 16 + 16)]), radix: 16) }
    guard words.count == 4 else { return nil }
    return SeededGenerator(state: (words[0], words[1], words[2], words[3]))
}
