// Checkpoints: everything a session needs to carry on exactly where it stopped, in a safetensors file that PyTorch
// reads and writes. Model tensors use PyTorch's `state_dict` names; Adam's moments ride along as
// `optim.exp_avg.<name>` and `optim.exp_avg_sq.<name>`; the rest is JSON in `__metadata__`:
//
//   vocab     JSON array of one-character strings, index order                       (minimal contract)
//   config    {"embed", "hidden", "layers", "lowercase", "ascii", "dropout", "vocab_size", "cell"} (minimal: first
//             five; "cell" is "lstm", "gru" or "rnn": absent, the tensors' module name decides, else lstm)
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

    public var config: ModelConfig
    public var vocabulary: Vocabulary
    /// Flat, in `ParameterLayout` order.
    public var parameters: [Float]
    public var optimizer: OptimizerState?
    public var training: TrainingState?
    public var sampling: SamplingSettings?
    public var corpus: CorpusFingerprint?
    /// Settings of the program that saved the file (the shell's), string to string.
    public var settings: [String: String]
    /// What loading noticed and a user should hear (a fresh optimizer, ignored tensors).
    public private(set) var notes: [String] = []

    public init(
        config: ModelConfig, vocabulary: Vocabulary, parameters: [Float], optimizer: OptimizerState? = nil,
        training: TrainingState? = nil, sampling: SamplingSettings? = nil, corpus: CorpusFingerprint? = nil,
        settings: [String: String] = [:]
    ) {
        self.config = config
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
        let layout = ParameterLayout(config: config)
        var tensors = layout.views.map { view in
            NamedTensor(name: view.name, shape: view.shape, values: Array(parameters[view.offset..<(view.offset + view.count)]))
        }
        var metadata: [String: String] = [
            "format": Self.formatName,
            "format_version": String(Self.formatVersion),
            "vocab": "[" + vocabulary.scalars.map { jsonString(String(Character($0))) }.joined(separator: ", ") + "]",
            "config": jsonObject([
                ("vocab_size", String(config.vocabularySize)), ("embed", String(config.embeddingSize)),
                ("hidden", String(config.hiddenSize)), ("layers", String(config.layerCount)),
                ("dropout", exact(config.dropout)), ("cell", jsonString(config.layerKind.rawValue)), ("lowercase", String(vocabulary.normalization.lowercase)),
                ("ascii", String(vocabulary.normalization.ascii)),
            ]),
        ]
        if let optimizer {
            for (prefix, values) in [("optim.exp_avg.", optimizer.firstMoment), ("optim.exp_avg_sq.", optimizer.secondMoment)] {
                tensors += layout.views.map { view in
                    NamedTensor(name: prefix + view.name, shape: view.shape, values: Array(values[view.offset..<(view.offset + view.count)]))
                }
            }
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

    // MARK: Reading

    /// Reads and checks a checkpoint file. Nothing in memory changes if this throws.
    public static func load(from path: String) throws -> Checkpoint {
        try parse(readFileBytes(at: path), path: path)
    }

    /// Parses and checks checkpoint bytes; errors name `path` and the problem.
    public static func parse(_ bytes: [UInt8], path: String) throws -> Checkpoint {
        func bad(_ problem: String) -> CharLMError { .badCheckpoint(path: path, problem: problem) }
        let file = try SafeTensorsFile.parse(bytes, path: path)
        func metadataJSON(_ key: String) throws -> JSONValue? {
            guard let text = file.metadata[key] else { return nil }
            do { return try JSONValue.parse(text) } catch { throw bad("metadata `\(key)` is not valid JSON (\(error))") }
        }

        // The minimal contract: vocab and config.
        guard let vocabJSON = try metadataJSON("vocab") else {
            throw bad("it has no `vocab` metadata (a JSON array of one-character strings in index order)")
        }
        guard let entries = vocabJSON.array else { throw bad("metadata `vocab` is not a JSON array") }
        var scalars: [Unicode.Scalar] = []
        for (index, entry) in entries.enumerated() {
            guard let text = entry.string, text.unicodeScalars.count == 1 else {
                throw bad("vocabulary entry \(index) is not a one-character string")
            }
            scalars.append(text.unicodeScalars.first!)
        }
        guard let configJSON = try metadataJSON("config"), case .object = configJSON else {
            throw bad("it has no `config` metadata (a JSON object with embed, hidden, layers, lowercase, ascii)")
        }
        func configInteger(_ key: String) throws -> Int {
            guard let value = configJSON[key]?.integer else { throw bad("config `\(key)` is missing or not an integer") }
            return value
        }
        func configBool(_ key: String) throws -> Bool {
            guard let value = configJSON[key]?.bool else { throw bad("config `\(key)` is missing or not true/false") }
            return value
        }
        let normalization = NormalizationOptions(lowercase: try configBool("lowercase"), ascii: try configBool("ascii"))
        let vocabulary: Vocabulary
        do {
            vocabulary = try Vocabulary(scalars: scalars, normalization: normalization)
        } catch let error as CharLMError {
            throw bad("its vocabulary is unusable: \(error)")
        }
        if let size = configJSON["vocab_size"], size.integer != vocabulary.count {
            throw bad("config says vocab_size \(size.integer.map(String.init) ?? "?") but `vocab` has \(vocabulary.count) entries")
        }
        var dropout: Float = 0
        if let value = configJSON["dropout"] {
            guard let number = value.double else { throw bad("config `dropout` is not a number") }
            dropout = Float(number)
        }
        let layerKind: LayerKind
        let knownCells = LayerKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        if let value = configJSON["cell"] {
            guard let name = value.string, let kind = LayerKind(rawValue: name) else {
                // Spelled so that nothing in it reaches the terminal as a control character.
                let spelled = value.string.map { text in
                    text.unicodeScalars.map { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.properties.generalCategory == .format
                        ? "U+" + String($0.value, radix: 16, uppercase: true) : String($0) }.joined()
                }
                let found = spelled.map { "\"\(abbreviated($0, limit: 20))\"" } ?? "not a string"
                throw bad("config `cell` is \(found); charlm knows \(knownCells)")
            }
            layerKind = kind
        } else {
            // Files from before cells had a name are LSTMs; a PyTorch export without the key names its module.
            let present = LayerKind.allCases.filter { kind in file.tensors.contains { $0.name == kind.moduleName + ".weight_ih_l0" } }
            guard present.count <= 1 else {
                throw bad("it holds the tensors of several cells (" + present.map { "\($0.moduleName).*" }.joined(separator: ", ")
                          + ") and its config does not say which it is: add \"cell\" (\(knownCells)) to `config`")
            }
            layerKind = present.first ?? .lstm
        }
        let config = ModelConfig(
            vocabularySize: vocabulary.count, embeddingSize: try configInteger("embed"),
            hiddenSize: try configInteger("hidden"), layerCount: try configInteger("layers"), dropout: dropout,
            layerKind: layerKind)
        do { try config.validate() } catch let error as CharLMError { throw bad("its config is unusable: \(error)") }

        // Model tensors: every one present, with the right shape, finite.
        let layout = ParameterLayout(config: config)
        var byName: [String: NamedTensor] = [:]
        for tensor in file.tensors { byName[tensor.name] = tensor }
        func flatTensors(prefix: String, nonNegative: Bool = false) throws -> [Float] {
            // Every tensor present with its shape before anything is allocated: the flat buffer is then no larger
            // than the data the file holds, whatever its config claims.
            for view in layout.views {
                let name = prefix + view.name
                guard let tensor = byName[name] else {
                    // A file whose config names one cell and whose tensors are another's says so.
                    let other = prefix.isEmpty
                        ? LayerKind.allCases.first { $0 != config.layerKind && byName[$0.moduleName + ".weight_ih_l0"] != nil } : nil
                    throw bad("tensor '\(name)' is missing" + (other.map {
                        "; the config says cell \(config.layerKind.rawValue) but the tensors are a \($0.rawValue)'s (\($0.moduleName).*)"
                    } ?? ""))
                }
                guard tensor.shape == view.shape else {
                    throw bad("tensor '\(name)' has shape \(tensor.shape); config and vocab say \(view.shape)")
                }
            }
            var flat = [Float](repeating: 0, count: layout.totalCount)
            for view in layout.views {
                let name = prefix + view.name
                let tensor = byName[name]!
                if let index = tensor.values.firstIndex(where: { !$0.isFinite || (nonNegative && $0 < 0) }) {
                    let value = tensor.values[index]
                    let what = value.isNaN ? "NaN" : value.isInfinite ? "an infinite value" : "a negative value"
                    throw bad("tensor '\(name)' has \(what) at element \(index)")
                }
                flat.replaceSubrange(view.offset..<(view.offset + view.count), with: tensor.values)
            }
            return flat
        }
        let parameters = try flatTensors(prefix: "")
        try MemoryBudget.checkModel(config)
        var checkpoint = Checkpoint(config: config, vocabulary: vocabulary, parameters: parameters)
        let isCharLM = file.metadata["format"] == formatName
        if isCharLM, let version = file.metadata["format_version"], version != String(formatVersion) {
            throw bad("it is charlm format version \(version); this charlm reads version \(formatVersion)")
        }

        // Optimizer state: all or nothing.
        let optimizerTensorCount = file.tensors.filter { $0.name.hasPrefix("optim.") }.count
        if optimizerTensorCount > 0 {
            guard let optimizerJSON = try metadataJSON("optimizer"), let step = optimizerJSON["step"]?.integer, step >= 0 else {
                throw bad("it has optimizer tensors but no valid `optimizer` metadata with a step count")
            }
            guard step <= maximumStep else { throw bad("optimizer `step` is \(step); charlm counts to at most \(maximumStep)") }
            var settings = AdamSettings()
            for (key, path) in [("lr", \AdamSettings.learningRate), ("beta1", \.beta1), ("beta2", \.beta2), ("eps", \.epsilon),
                                ("weight_decay", \.weightDecay)] {
                if let value = optimizerJSON[key] {
                    guard let number = value.double, Float(number).isFinite else { throw bad("optimizer `\(key)` is not a number") }
                    settings[keyPath: path] = Float(number) + 0  // -0 becomes 0
                }
            }
            // Adam diverges (or divides by zero) outside these: beta in [0, 1), eps and lr above 0.
            guard (0..<1).contains(settings.beta1), (0..<1).contains(settings.beta2), settings.epsilon > 0,
                  settings.learningRate > 0, Setting.wd.domain.contains(Double(settings.weightDecay)) else {
                throw bad("its optimizer settings are unusable: beta1 and beta2 must be from 0 up to but not including 1, "
                          + "eps and lr above 0, weight_decay from 0 to 10; got beta1 \(settings.beta1), beta2 \(settings.beta2), "
                          + "eps \(settings.epsilon), lr \(settings.learningRate), weight_decay \(settings.weightDecay)")
            }
            checkpoint.optimizer = OptimizerState(
                firstMoment: try flatTensors(prefix: "optim.exp_avg."),
                secondMoment: try flatTensors(prefix: "optim.exp_avg_sq.", nonNegative: true),
                stepCount: step, settings: settings)
        } else {
            checkpoint.notes.append("no optimizer state in the file: training continues with a fresh optimizer")
        }
        let known = Set(layout.views.flatMap { [$0.name, "optim.exp_avg." + $0.name, "optim.exp_avg_sq." + $0.name] })
        let ignored = file.tensors.map(\.name).filter { !known.contains($0) }.sorted()
        if !ignored.isEmpty {
            checkpoint.notes.append("ignored tensors charlm does not use: " + ignored.joined(separator: ", "))
        }

        if let trainingJSON = try metadataJSON("training") {
            func integer(_ key: String) throws -> Int {
                guard let value = trainingJSON[key]?.integer else { throw bad("training `\(key)` is missing or not an integer") }
                return value
            }
            func number(_ key: String) throws -> Double {
                guard let value = trainingJSON[key]?.double else { throw bad("training `\(key)` is missing or not a number") }
                return value
            }
            func optionalInteger(_ key: String) throws -> Int {
                guard let value = trainingJSON[key] else { return 0 }
                guard let integer = value.integer else { throw bad("training `\(key)` is not an integer") }
                return integer
            }
            func optionalNumber(_ key: String) throws -> Double {
                guard let value = trainingJSON[key] else { return 0 }
                guard let number = value.double else { throw bad("training `\(key)` is not a number") }
                return number
            }
            let settings = TrainingSettings(
                sequenceLength: try integer("seq"), batch: try integer("batch"), learningRate: Float(try number("lr")),
                clip: Float(try number("clip")), warmupSteps: try optionalInteger("warmup"),
                decaySteps: try optionalInteger("decay"), weightDecay: Float(try optionalNumber("weight_decay")) + 0)
            do { try settings.validate() } catch let error as CharLMError { throw bad("its training settings are unusable: \(error)") }
            guard let generatorText = trainingJSON["generator"]?.string, let generator = parseGenerator(generatorText) else {
                throw bad("training `generator` is missing or not a valid generator state")
            }
            let fraction = try number("val_fraction")
            guard fraction >= 0 && fraction < 1 else { throw bad("training `val_fraction` must be >= 0 and < 1") }
            let step = try integer("step")
            guard step >= 0 else { throw bad("training `step` is negative") }
            guard step <= maximumStep else { throw bad("training `step` is \(step); charlm counts to at most \(maximumStep)") }
            /// The list at `key` (absent: empty), or an error.
            func list(_ key: String) throws -> [JSONValue] {
                guard let value = trainingJSON[key] else { return [] }
                guard let items = value.array else { throw bad("training `\(key)` is not a list") }
                return items
            }
            let history = try list("loss_history").map { item -> Double in
                guard let value = item.double, value.isFinite else { throw bad("training `loss_history` holds something other than a finite number") }
                return value
            }
            guard history.count <= step else {
                throw bad("training `loss_history` has \(history.count) losses for \(step) steps")
            }
            let validations = try list("validation_history").map { item -> ValidationPoint in
                guard let pair = item.array, pair.count == 2, let at = pair[0].integer, (0...step).contains(at),
                      let loss = pair[1].double, loss.isFinite else {
                    throw bad("training `validation_history` holds something other than [step, loss] pairs with a step "
                              + "from 0 to the training step (\(step)) and a finite loss")
                }
                return ValidationPoint(step: at, loss: loss)
            }
            checkpoint.training = TrainingState(
                settings: settings, validationFraction: fraction, step: step, generator: generator, lossHistory: history,
                validationHistory: validations)
        }
        if let samplingJSON = try metadataJSON("sampling") {
            guard let temperature = samplingJSON["temperature"]?.double, let topK = samplingJSON["top_k"]?.integer,
                  let topP = samplingJSON["top_p"]?.double else {
                throw bad("metadata `sampling` needs temperature, top_k and top_p")
            }
            let sampling = SamplingSettings(temperature: Float(temperature), topK: topK, topP: Float(topP))
            do { try sampling.validate() } catch let error as CharLMError { throw bad("its sampling settings are unusable: \(error)") }
            checkpoint.sampling = sampling
        }
        if let corpusJSON = try metadataJSON("corpus") {
            guard let characters = corpusJSON["characters"]?.integer, characters >= 0, let hashText = corpusJSON["fnv1a64"]?.string,
                  let hash = UInt64(hashText, radix: 16) else {
                throw bad("metadata `corpus` needs characters and fnv1a64")
            }
            checkpoint.corpus = CorpusFingerprint(characters: characters, hash: hash,
                                                  name: corpusJSON["name"]?.string.map { abbreviated($0, limit: 80) })
        }
        if let settingsJSON = try metadataJSON("settings") {
            guard case .object(let pairs) = settingsJSON else { throw bad("metadata `settings` is not a JSON object") }
            for (key, value) in pairs {
                guard let text = value.string else { throw bad("setting `\(key)` is not a string") }
                checkpoint.settings[key] = text
            }
        }
        // Files written before `validation_history` joined `training` kept it as a setting, "step:loss,step:loss".
        // Entries that could not have been written (a step past the training step, a loss that is not finite) are left
        // out, and a note says how many.
        if let legacy = checkpoint.settings.removeValue(forKey: "validation_history"), let training = checkpoint.training,
           training.validationHistory.isEmpty {
            let entries = legacy.split(separator: ",")
            let points = entries.compactMap { pair -> ValidationPoint? in
                let parts = pair.split(separator: ":")
                guard parts.count == 2, let step = Int(parts[0]), (0...training.step).contains(step),
                      let loss = Double(parts[1]), loss.isFinite else { return nil }
                return ValidationPoint(step: step, loss: loss)
            }
            checkpoint.training?.validationHistory = points
            if points.count < entries.count {
                checkpoint.notes.append("left out \(entries.count - points.count) unreadable entries of the validation history")
            }
        }
        return checkpoint
    }
}

/// A JSON object from already-encoded values, keys in the given order.
private func jsonObject(_ pairs: [(String, String)]) -> String {
    "{" + pairs.map { jsonString($0.0) + ": " + $0.1 }.joined(separator: ", ") + "}"
}

/// A Float32 widened to Double, as the shortest decimal that reads back as that Double: the same bits come back.
private func exact(_ value: Float) -> String { String(Double(value)) }

/// A generator state as 64 hex digits.
private func hex(_ generator: SeededGenerator) -> String {
    let (a, b, c, d) = generator.state
    return [a, b, c, d].map { word in
        let digits = String(word, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }.joined()
}

private func parseGenerator(_ text: String) -> SeededGenerator? {
    guard text.count == 64, text.allSatisfy(\.isHexDigit) else { return nil }
    let characters = Array(text)
    let words = (0..<4).compactMap { UInt64(String(characters[($0 * 16)..<($0 * 16 + 16)]), radix: 16) }
    guard words.count == 4 else { return nil }
    return SeededGenerator(state: (words[0], words[1], words[2], words[3]))
}
