// Reading a checkpoint (Checkpoint.swift says what it holds), as if the file were hostile: one step per metadata
// section, each checking every value before anything is made from it. The model family reads its own `config` and
// names its tensors (`ModelFamilies`, Models/LanguageModel.swift); nothing here names a family.

import Foundation

extension Checkpoint {
    /// Reads and checks a checkpoint file. Nothing in memory changes if this throws.
    public static func load(from path: String, cancellation: Cancellation = .never) throws -> Checkpoint {
        try parse(readFileBytes(at: path), path: path, cancellation: cancellation)
    }

    /// Parses and checks checkpoint bytes; errors name `path` and the problem. `families` read the config (every
    /// family charlm has, unless a test brings its own); `cancellation` stops reading a large header.
    public static func parse(_ bytes: [UInt8], path: String, families: [ModelFamilies.Reader] = ModelFamilies.readers,
                             cancellation: Cancellation = .never) throws -> Checkpoint {
        let file = try SafeTensorsFile.parse(bytes, path: path, cancellation: cancellation)
        let reader = CheckpointReader(file: file, path: path, families: families)
        // The minimal contract: vocab and config, and every model tensor.
        let vocabulary = try reader.vocabulary()
        let architecture = try reader.architecture(vocabulary: vocabulary)
        var checkpoint = Checkpoint(architecture: architecture, vocabulary: vocabulary,
                                    parameters: try reader.flatTensors(architecture, prefix: ""))
        try MemoryBudget.checkModel(architecture)
        try reader.checkFormatVersion()
        checkpoint.optimizer = try reader.optimizer(architecture)
        if checkpoint.optimizer == nil {
            checkpoint.notes.append("no optimizer state in the file: training continues with a fresh optimizer")
        }
        if let ignored = reader.ignoredTensors(architecture) { checkpoint.notes.append(ignored) }
        checkpoint.training = try reader.training()
        checkpoint.sampling = try reader.sampling()
        checkpoint.corpus = try reader.corpus()
        checkpoint.settings = try reader.settings()
        reader.readLegacyValidationHistory(into: &checkpoint)
        return checkpoint
    }
}

/// One file being read: its tensors and metadata, and how to say what is wrong with it.
private struct CheckpointReader {
    let file: SafeTensorsFile
    let path: String
    /// The file's tensors by name.
    let byName: [String: NamedTensor]
    /// The families that may read its config.
    let families: [ModelFamilies.Reader]

    init(file: SafeTensorsFile, path: String, families: [ModelFamilies.Reader]) {
        self.file = file
        self.path = path
        self.families = families
        var byName: [String: NamedTensor] = [:]
        for tensor in file.tensors { byName[tensor.name] = tensor }
        self.byName = byName
    }

    func bad(_ problem: String) -> CharLMError { .badCheckpoint(path: path, problem: problem) }

    /// The metadata entry `key` as JSON, or nil when absent.
    func metadataJSON(_ key: String) throws -> JSONValue? {
        guard let text = file.metadata[key] else { return nil }
        do { return try JSONValue.parse(text) } catch { throw bad("metadata `\(key)` is not valid JSON (\(error))") }
    }

    /// The config object (whose lowercase and ascii belong to the vocabulary).
    func configJSON() throws -> JSONValue {
        guard let json = try metadataJSON("config"), case .object = json else {
            throw bad("it has no `config` metadata (a JSON object with embed, hidden, layers, lowercase, ascii)")
        }
        return json
    }

    // MARK: vocab

    func vocabulary() throws -> Vocabulary {
        guard let vocabJSON = try metadataJSON("vocab") else {
            throw bad("it has no `vocab` metadata (a JSON array of one-character strings in index order)")
        }
        guard let entries = vocabJSON.array else { throw bad("metadata `vocab` is not a JSON array") }
        var scalars: [Unicode.Scalar] = []
        for (index, entry) in entries.enumerated() {
            guard let text = entry.string, let scalar = text.unicodeScalars.first, text.unicodeScalars.count == 1 else {
                throw bad("vocabulary entry \(index) is not a one-character string")
            }
            scalars.append(scalar)
        }
        let config = try configJSON()
        func flag(_ key: String) throws -> Bool {
            guard let value = config[key]?.bool else { throw bad("config `\(key)` is missing or not true/false") }
            return value
        }
        let normalization = NormalizationOptions(lowercase: try flag("lowercase"), ascii: try flag("ascii"))
        let vocabulary: Vocabulary
        do {
            vocabulary = try Vocabulary(scalars: scalars, normalization: normalization)
        } catch let error as CharLMError {
            throw bad("its vocabulary is unusable: \(error)")
        }
        if let size = config["vocab_size"], size.integer != vocabulary.count {
            throw bad("config says vocab_size \(size.integer.map(String.init) ?? "?") but `vocab` has \(vocabulary.count) entries")
        }
        return vocabulary
    }

    // MARK: config

    /// The model family's reading of `config`.
    func architecture(vocabulary: Vocabulary) throws -> any ModelArchitecture {
        let config = CheckpointConfig(json: try configJSON(), vocabularySize: vocabulary.count,
                                      tensorNames: Set(byName.keys))
        do {
            return try ModelFamilies.architecture(from: config, families: families)
        } catch let problem as CheckpointProblem {
            throw bad(problem.text)
        }
    }

    // MARK: tensors

    /// The tensor of `view` under `prefix`: its name or one of its aliases (equal when several are present).
    private func tensor(_ view: ParameterView, prefix: String, architecture: any ModelArchitecture) throws -> NamedTensor {
        let present = ([view.name] + view.aliases).compactMap { byName[prefix + $0] }
        guard let first = present.first else {
            throw bad("tensor '\(prefix + view.name)' is missing"
                      + (prefix.isEmpty ? architecture.missingTensorHint(tensorNames: Set(byName.keys)) ?? "" : ""))
        }
        guard first.shape == view.shape else {
            throw bad("tensor '\(first.name)' has shape \(first.shape); config and vocab say \(view.shape)")
        }
        if let other = present.dropFirst().first(where: { $0.shape != first.shape || $0.values != first.values }) {
            throw bad("tensors '\(first.name)' and '\(other.name)' are one tied tensor but differ")
        }
        return first
    }

    /// Every tensor of `architecture` under `prefix`, checked, as one flat buffer. Every tensor is present with its
    /// shape before anything is allocated: the flat buffer is then no larger than the data the file holds, whatever
    /// its config claims.
    func flatTensors(_ architecture: any ModelArchitecture, prefix: String, nonNegative: Bool = false) throws -> [Float] {
        let table = architecture.parameters
        let tensors = try table.views.map { try tensor($0, prefix: prefix, architecture: architecture) }
        var flat = [Float](repeating: 0, count: table.totalCount)
        for (view, tensor) in zip(table.views, tensors) {
            if let index = tensor.values.firstIndex(where: { !$0.isFinite || (nonNegative && $0 < 0) }) {
                let value = tensor.values[index]
                let what = value.isNaN ? "NaN" : value.isInfinite ? "an infinite value" : "a negative value"
                throw bad("tensor '\(tensor.name)' has \(what) at element \(index)")
            }
            flat.replaceSubrange(view.range, with: tensor.values)
        }
        return flat
    }

    /// A note naming the tensors that are neither the model's nor its optimizer moments, or nil.
    func ignoredTensors(_ architecture: any ModelArchitecture) -> String? {
        let names = architecture.parameters.views.flatMap { [$0.name] + $0.aliases }
        let known = Set(names.flatMap { [$0, "optim.exp_avg." + $0, "optim.exp_avg_sq." + $0] })
        let ignored = file.tensors.map(\.name).filter { !known.contains($0) }.sorted()
        return ignored.isEmpty ? nil : "ignored tensors charlm does not use: " + listed(ignored)
    }

    // MARK: format

    func checkFormatVersion() throws {
        let isCharLM = file.metadata["format"] == Checkpoint.formatName
        if isCharLM, let version = file.metadata["format_version"], version != String(Checkpoint.formatVersion) {
            throw bad("it is charlm format version \(version); this charlm reads version \(Checkpoint.formatVersion)")
        }
    }

    // MARK: optimizer

    /// Adam's state: all or nothing; nil when the file has no optimizer tensors.
    func optimizer(_ architecture: any ModelArchitecture) throws -> OptimizerState? {
        guard file.tensors.contains(where: { $0.name.hasPrefix("optim.") }) else { return nil }
        guard let json = try metadataJSON("optimizer"), let step = json["step"]?.integer, step >= 0 else {
            throw bad("it has optimizer tensors but no valid `optimizer` metadata with a step count")
        }
        guard step <= Checkpoint.maximumStep else {
            throw bad("optimizer `step` is \(step); charlm counts to at most \(Checkpoint.maximumStep)")
        }
        // Moments under Adam's names from another optimizer would mean something else.
        if let type = json["type"], type != .string("adam") && type != .string("adamw") {
            throw bad("optimizer `type` is not adam or adamw: charlm's moments are Adam's")
        }
        var settings = AdamSettings()
        for (key, path) in [("lr", \AdamSettings.learningRate), ("beta1", \.beta1), ("beta2", \.beta2), ("eps", \.epsilon),
                            ("weight_decay", \.weightDecay)] {
            if let value = json[key] {
                guard let number = value.double, Float(number).isFinite else { throw bad("optimizer `\(key)` is not a number") }
                settings[keyPath: path] = Float(number) + 0  // -0 becomes 0
            }
        }
        // Adam diverges (or divides by zero) outside these: beta in [0, 1), eps and lr above 0; an eps above 1 (PyTorch's
        // is 1e-8) swamps the second moment, and the steps barely move.
        guard (0..<1).contains(settings.beta1), (0..<1).contains(settings.beta2), settings.epsilon > 0, settings.epsilon <= 1,
              settings.learningRate > 0, Setting.wd.domain.contains(Double(settings.weightDecay)) else {
            throw bad("its optimizer settings are unusable: beta1 and beta2 must be from 0 up to but not including 1, "
                      + "eps above 0 and at most 1, lr above 0, weight_decay from 0 to 10; got beta1 \(settings.beta1), beta2 \(settings.beta2), "
                      + "eps \(settings.epsilon), lr \(settings.learningRate), weight_decay \(settings.weightDecay)")
        }
        return OptimizerState(
            firstMoment: try flatTensors(architecture, prefix: "optim.exp_avg."),
            secondMoment: try flatTensors(architecture, prefix: "optim.exp_avg_sq.", nonNegative: true),
            stepCount: step, settings: settings)
    }

    // MARK: training

    func training() throws -> TrainingState? {
        guard let json = try metadataJSON("training") else { return nil }
        func integer(_ key: String) throws -> Int {
            guard let value = json[key]?.integer else { throw bad("training `\(key)` is missing or not an integer") }
            return value
        }
        func number(_ key: String) throws -> Double {
            guard let value = json[key]?.double else { throw bad("training `\(key)` is missing or not a number") }
            return value
        }
        func optionalInteger(_ key: String) throws -> Int {
            guard let value = json[key] else { return 0 }
            guard let integer = value.integer else { throw bad("training `\(key)` is not an integer") }
            return integer
        }
        func optionalNumber(_ key: String) throws -> Double {
            guard let value = json[key] else { return 0 }
            guard let number = value.double else { throw bad("training `\(key)` is not a number") }
            return number
        }
        let settings = TrainingSettings(
            sequenceLength: try integer("seq"), batch: try integer("batch"), learningRate: Float(try number("lr")),
            clip: Float(try number("clip")), warmupSteps: try optionalInteger("warmup"),
            decaySteps: try optionalInteger("decay"), weightDecay: Float(try optionalNumber("weight_decay")) + 0)
        do { try settings.validate() } catch let error as CharLMError { throw bad("its training settings are unusable: \(error)") }
        guard let generatorText = json["generator"]?.string, let generator = parseGenerator(generatorText) else {
            throw bad("training `generator` is missing or not a valid generator state")
        }
        let fraction = try number("val_fraction")
        guard fraction >= 0 && fraction < 1 else { throw bad("training `val_fraction` must be >= 0 and < 1") }
        let step = try integer("step")
        guard step >= 0 else { throw bad("training `step` is negative") }
        guard step <= Checkpoint.maximumStep else {
            throw bad("training `step` is \(step); charlm counts to at most \(Checkpoint.maximumStep)")
        }
        /// The list at `key` (absent: empty), or an error.
        func list(_ key: String) throws -> [JSONValue] {
            guard let value = json[key] else { return [] }
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
        return TrainingState(settings: settings, validationFraction: fraction, step: step, generator: generator,
                             lossHistory: history, validationHistory: validations)
    }

    // MARK: sampling, corpus, settings

    func sampling() throws -> SamplingSettings? {
        guard let json = try metadataJSON("sampling") else { return nil }
        guard let temperature = json["temperature"]?.double, let topK = json["top_k"]?.integer,
              let topP = json["top_p"]?.double else {
            throw bad("metadata `sampling` needs temperature, top_k and top_p")
        }
        let sampling = SamplingSettings(temperature: Float(temperature), topK: topK, topP: Float(topP))
        do { try sampling.validate() } catch let error as CharLMError { throw bad("its sampling settings are unusable: \(error)") }
        return sampling
    }

    func corpus() throws -> CorpusFingerprint? {
        guard let json = try metadataJSON("corpus") else { return nil }
        guard let characters = json["characters"]?.integer, characters >= 0, let hashText = json["fnv1a64"]?.string,
              let hash = UInt64(hashText, radix: 16) else {
            throw bad("metadata `corpus` needs characters and fnv1a64")
        }
        return CorpusFingerprint(characters: characters, hash: hash, name: json["name"]?.string.map { abbreviated($0, limit: 80) })
    }

    func settings() throws -> [String: String] {
        guard let json = try metadataJSON("settings") else { return [:] }
        guard case .object(let pairs) = json else { throw bad("metadata `settings` is not a JSON object") }
        var settings: [String: String] = [:]
        for (key, value) in pairs {
            guard let text = value.string else { throw bad("setting `\(key)` is not a string") }
            settings[key] = text
        }
        return settings
    }

    /// Files written before `validation_history` joined `training` kept it as a setting, "step:loss,step:loss".
    /// Entries that could not have been written (a step past the training step, a loss that is not finite) are left
    /// out, and a note says how many.
    func readLegacyValidationHistory(into checkpoint: inout Checkpoint) {
        guard let legacy = checkpoint.settings.removeValue(forKey: "validation_history"), let training = checkpoint.training,
              training.validationHistory.isEmpty else { return }
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
}
