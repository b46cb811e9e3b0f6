// Checkpoints: round trip, exact resume, files with only the minimal contract, half-precision input, atomic save,
// and loading that survives every kind of damaged file.

@testable import CharLM
import Foundation
import Testing

private let sampleText = String(repeating: "First Citizen:\nBefore we proceed any further, hear me speak.\n", count: 12)

/// A trainer on `sampleText` with a small model, `steps` steps done.
private func trainedTrainer(steps: Int, dropout: Float = 0, seed: UInt64 = 3, hidden: Int = 12, cell: LayerKind = .lstm) throws -> (Trainer, Corpus) {
    let corpus = try Corpus.make(text: sampleText, normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    var generator = SeededGenerator(seed: seed)
    let model = try RecurrentModel(
        config: RecurrentConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: 6, hiddenSize: hidden, layerCount: 2, dropout: dropout,
                            layerKind: cell),
        generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset, settings: TrainingSettings(sequenceLength: 12, batch: 5, learningRate: 5e-3, clip: 1, warmupSteps: 2, decaySteps: 9), seed: seed + 1)
    for _ in 0..<steps { try trainer.trainStep() }
    return (trainer, corpus)
}

/// A full checkpoint of `trainer`.
private func checkpoint(of trainer: Trainer, corpus: Corpus) -> Checkpoint {
    let (training, optimizer) = trainer.state
    return Checkpoint(
        config: trainer.model.config, vocabulary: corpus.vocabulary, parameters: trainer.model.parameters.array,
        optimizer: optimizer, training: training, sampling: SamplingSettings(temperature: 0.7, topK: 5, topP: 0.9),
        corpus: corpus.fingerprint, settings: ["eval": "250", "length": "300"])
}

@Test(arguments: LayerKind.allCases)
func aCheckpointRoundTripsEverything(cell: LayerKind) throws {
    let (trainer, corpus) = try trainedTrainer(steps: 7, dropout: 0.2, cell: cell)
    let saved = checkpoint(of: trainer, corpus: corpus)
    let loaded = try Checkpoint.parse(saved.serialized(), path: "memory")
    #expect(loaded.config == saved.config && loaded.config.layerKind == cell)
    #expect(loaded.parameters.count > 0 && RecurrentLayout(config: loaded.config).view(named: "\(cell.rawValue).weight_hh_l1") != nil)
    #expect(loaded.vocabulary == saved.vocabulary)
    #expect(loaded.parameters == saved.parameters)
    #expect(loaded.optimizer == saved.optimizer)
    #expect(loaded.training == saved.training)
    #expect(loaded.sampling == saved.sampling)
    #expect(loaded.corpus == saved.corpus)
    #expect(loaded.settings == saved.settings)
    #expect(loaded.notes.isEmpty)
    // Same generation from the loaded model.
    func generate(_ parameters: [Float]) throws -> [Int] {
        let model = try RecurrentModel(config: loaded.config, parameters: parameters)
        var generator = SeededGenerator(seed: 9)
        return try TextGenerator(model: model).generate(
            prompt: [1, 2, 3], count: 50, settings: loaded.sampling!, primer: 0, generator: &generator)
    }
    #expect(try generate(loaded.parameters) == generate(saved.parameters))
}

@Test(arguments: [Float(0), 0.25], LayerKind.allCases)
func resumingIsBitIdenticalToNeverStopping(dropout: Float, cell: LayerKind) throws {
    let (straight, _) = try trainedTrainer(steps: 10, dropout: dropout, cell: cell)
    let (first, corpus) = try trainedTrainer(steps: 6, dropout: dropout, cell: cell)
    let path = try makeTemporaryFolder().appendingPathComponent("run.safetensors").path
    try checkpoint(of: first, corpus: corpus).save(to: path)

    // A fresh start from nothing but the file and the corpus, as a new process would.
    let loaded = try Checkpoint.load(from: path)
    let model = try RecurrentModel(config: loaded.config, parameters: loaded.parameters)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: loaded.training!.validationFraction)
    let resumed = try Trainer(model: model, dataset: dataset, settings: loaded.training!.settings, seed: 12345)
    try resumed.restore(training: loaded.training!, optimizer: loaded.optimizer)
    for _ in 0..<4 { try resumed.trainStep() }
    #expect(resumed.lossHistory == straight.lossHistory)
    #expect(resumed.model.parameters.array == straight.model.parameters.array)
    #expect(resumed.optimizer.firstMoment.array == straight.optimizer.firstMoment.array)
    #expect(resumed.step == 10)
}

/// A file as a PyTorch user writes it: state_dict tensors, `vocab` and `config` metadata, nothing else.
private func minimalFile(from trainer: Trainer, corpus: Corpus, dtype: String = "F32") -> [UInt8] {
    let layout = trainer.model.layout
    let parameters = trainer.model.parameters.array
    let file = SafeTensorsFile(
        metadata: [
            "vocab": "[" + corpus.vocabulary.scalars.map { jsonString(String(Character($0))) }.joined(separator: ", ") + "]",
            "config": "{\"embed\": 6, \"hidden\": 12, \"layers\": 2, \"lowercase\": false, \"ascii\": false}",
        ],
        tensors: layout.views.map { NamedTensor(name: $0.name, shape: $0.shape, values: Array(parameters[$0.offset..<($0.offset + $0.count)])) })
    return file.serialized()
}

@Test func aFileWithOnlyTheMinimalContractLoadsForGenerationAndTraining() throws {
    let (trainer, corpus) = try trainedTrainer(steps: 3)
    let loaded = try Checkpoint.parse(minimalFile(from: trainer, corpus: corpus), path: "minimal.safetensors")
    #expect(loaded.parameters == trainer.model.parameters.array)
    #expect(loaded.optimizer == nil && loaded.training == nil)
    #expect(loaded.notes == ["no optimizer state in the file: training continues with a fresh optimizer"])
    let model = try RecurrentModel(config: loaded.config, parameters: loaded.parameters)
    var generator = SeededGenerator(seed: 1)
    let text = try TextGenerator(model: model).generate(prompt: [], count: 20, settings: SamplingSettings(), primer: corpus.primer, generator: &generator)
    #expect(text.count == 20)
    let fresh = try Trainer(model: model, dataset: trainer.dataset, settings: TrainingSettings(sequenceLength: 12, batch: 5), seed: 1)
    try fresh.trainStep()
    #expect(fresh.optimizer.stepCount == 1)
}

@Test func halfPrecisionConversionIsExactForEveryBitPattern() {
    #if arch(x86_64) || arch(arm64)
    for bits in 0...UInt16.max {
        let expected = Float(Float16(bitPattern: bits))
        let converted = floatFromHalf(bits)
        #expect(converted.bitPattern == expected.bitPattern || (converted.isNaN && expected.isNaN), "bits \(bits)")
        if converted.bitPattern != expected.bitPattern && !(converted.isNaN && expected.isNaN) { break }
    }
    #endif
}

@Test func f16AndBF16TensorsAreReadAsFloat32() throws {
    // Hand-made file: a (2) F16 tensor [1.5, -2] and a (2) BF16 tensor [1.0, -0.5], then 4 bytes of data each.
    let header = "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}"
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes += Array(header.utf8)
    bytes += [0x00, 0x3E, 0x00, 0xC0]  // F16 1.5 = 0x3E00, -2 = 0xC000
    bytes += [0x80, 0x3F, 0x00, 0xBF]  // BF16 1.0 = 0x3F80, -0.5 = 0xBF00
    let file = try SafeTensorsFile.parse(bytes, path: "half.safetensors")
    #expect(file.tensors == [NamedTensor(name: "a", shape: [2], values: [1.5, -2]), NamedTensor(name: "b", shape: [2], values: [1, -0.5])])
}

// MARK: Atomic save

@Test func aFailedWriteLeavesThePreviousFileIntact() throws {
    let folder = try makeTemporaryFolder()
    let path = folder.appendingPathComponent("model.safetensors").path
    let (trainer, corpus) = try trainedTrainer(steps: 2)
    let original = checkpoint(of: trainer, corpus: corpus).serialized()
    try writeFileAtomically(original, to: path)
    try trainer.trainStep()
    let newer = checkpoint(of: trainer, corpus: corpus).serialized()
    let error = try #require(throws: CharLMError.self) { try writeFileAtomically(newer, to: path, failAfterBytes: 1000) }
    #expect(error.description.contains("writing failed after 1000 of \(newer.count) bytes"))
    #expect(error.description.contains("the previous file, if any, is unchanged"))
    #expect(try readFileBytes(at: path) == original)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"], "temporary file left behind")
    // And a save that works replaces it whole.
    try writeFileAtomically(newer, to: path)
    #expect(try readFileBytes(at: path) == newer)
    // A name as long as a file name may be (255 bytes) saves too: its temporary is named within the limit.
    let longest = folder.appendingPathComponent(String(repeating: "é", count: 120) + ".safetensors").path
    try writeFileAtomically(newer, to: longest)
    #expect(try readFileBytes(at: longest) == newer)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).count == 2)
}

@Test func savingWhereNoFileCanBeWrittenIsExplained() throws {
    let folder = try makeTemporaryFolder()
    let missing = folder.appendingPathComponent("no/such/folder/model.safetensors").path
    #expect(throws: CharLMError.saveFailed(path: missing, reason: "the folder '\(folder.path)/no/such/folder' does not exist")) {
        try writeFileAtomically([1, 2, 3], to: missing)
    }
    #expect(throws: CharLMError.saveFailed(path: folder.path, reason: "it is a directory")) {
        try writeFileAtomically([1, 2, 3], to: folder.path)
    }
    if getuid() != 0 {  // root writes through permissions; the injected failure above covers the root case
        let locked = folder.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false)
        let path = locked.appendingPathComponent("model.safetensors").path
        try writeFileAtomically([1], to: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: locked.path)
        let error = try #require(throws: CharLMError.self) { try writeFileAtomically([2], to: path) }
        #expect(error.description.contains("cannot create a file in"))
        #expect(try readFileBytes(at: path) == [1])
    }
}

// MARK: Loading never trusts the file

/// A valid small checkpoint's bytes and the offset where its header's JSON starts and ends.
private func validFileBytes(hidden: Int = 12) throws -> [UInt8] {
    let (trainer, corpus) = try trainedTrainer(steps: 1, hidden: hidden)
    return checkpoint(of: trainer, corpus: corpus).serialized()
}

/// Builds a file from a header string and data bytes.
private func file(header: String, data: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
    return bytes + Array(header.utf8) + data
}

private func problem(_ bytes: [UInt8]) -> String {
    do {
        _ = try Checkpoint.parse(bytes, path: "f.safetensors")
        return "loaded"
    } catch let error as CharLMError {
        guard case .badCheckpoint(let path, let problem) = error, path == "f.safetensors" else { return "wrong error \(error)" }
        return problem
    } catch {
        return "unexpected error type \(error)"
    }
}

@Test func eachKindOfDamageGetsItsOwnMessage() throws {
    let tensor = "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
    let eight = [UInt8](repeating: 0, count: 8)
    #expect(problem([1, 2, 3]) == "it is 3 bytes long; a safetensors file starts with an 8-byte header length")
    var huge = [UInt8](repeating: 0, count: 16)
    huge[3] = 0x7F
    #expect(problem(huge).contains("above the 100000000-byte limit"))
    var beyond = [UInt8](repeating: 0, count: 16)
    beyond[0] = 200
    #expect(problem(beyond) == "its header length 200 runs past the end of the file (16 bytes)")
    #expect(problem(file(header: "[1,2]", data: [])) == "its header does not start with '{'")
    #expect(problem(file(header: "{\"t\":", data: [])).hasPrefix("its header is not valid JSON"))
    #expect(problem(file(header: "{\(tensor),\(tensor)}", data: eight)).contains("duplicate key"))
    #expect(problem(file(header: "{\"t\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", data: eight)) == "tensor 't' has unknown dtype 'F33'")
    #expect(problem(file(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data: [0, 0, 0, 0])) == "the tensors need 8 bytes of data but the file has 4 (truncated?)")
    #expect(problem(file(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data: eight)) == "tensor 't' has shape [3] of F32 but 8 bytes of data")
    #expect(problem(file(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data: eight)) == "tensor 'u' overlaps the tensor before it")
    #expect(problem(file(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data: eight)) == "the data has a gap before tensor 't' (bytes 0..<4)")
    #expect(problem(file(header: "{\(tensor)}", data: eight + [0])) == "the file has 1 bytes after the last tensor")
    #expect(problem(file(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", data: eight)).contains("no valid shape"))
    #expect(problem(file(header: "{\(tensor)}", data: eight)).hasPrefix("it has no `vocab` metadata"))

    // Model-level problems, on a real checkpoint's tensors with edited metadata.
    let valid = try SafeTensorsFile.parse(validFileBytes(), path: "x")
    func edited(_ change: (inout SafeTensorsFile) -> Void) -> [UInt8] {
        var copy = valid
        change(&copy)
        return copy.serialized()
    }
    #expect(problem(edited { $0.metadata["vocab"] = "[\"a\", \"a\"]" }).contains("lists the character 'a' twice"))
    #expect(problem(edited { $0.metadata["vocab"] = "[\"ab\"]" }) == "vocabulary entry 0 is not a one-character string")
    #expect(problem(edited { $0.metadata["config"] = $0.metadata["config"]!.replacingOccurrences(of: "\"hidden\": 12", with: "\"hidden\": 13") })
            .contains("has shape [48, 6]; config and vocab say [52, 6]"))
    #expect(problem(edited { $0.tensors.removeAll { $0.name == "lstm.bias_hh_l1" } }).contains("tensor 'lstm.bias_hh_l1' is missing"))
    #expect(problem(edited { $0.tensors[3].values[2] = .nan }) == "tensor '\(valid.tensors[3].name)' has NaN at element 2")
    #expect(problem(edited { $0.tensors[0].values[0] = -.infinity }) == "tensor 'embedding.weight' has an infinite value at element 0")
    #expect(problem(edited { $0.tensors.removeAll { $0.name == "optim.exp_avg.fc.bias" } }) == "tensor 'optim.exp_avg.fc.bias' is missing")
    #expect(problem(edited { $0.metadata["optimizer"] = $0.metadata["optimizer"]!.replacingOccurrences(of: "\"adam", with: "\"sgd") })
            == "optimizer `type` is not adam or adamw: charlm's moments are Adam's")
    #expect(problem(edited { $0.metadata["format_version"] = "9" }) == "it is charlm format version 9; this charlm reads version 1")
    #expect(problem(edited { _ in }) == "loaded")

    // The cell: a value charlm does not know is quoted; a config naming one cell over another's tensors says so,
    // but only for the model's tensors (optimizer tensors missing are just missing); without the key, tensors of two
    // cells are ambiguous, and one cell's tensors decide.
    func withCell(_ value: String?) -> (inout SafeTensorsFile) -> Void {
        { file in
            var config = file.metadata["config"]!.replacingOccurrences(of: ", \"cell\": \"lstm\"", with: "")
            if let value { config = config.replacingOccurrences(of: "{", with: "{\"cell\": \(value), ") }
            file.metadata["config"] = config
        }
    }
    #expect(problem(edited(withCell("\"GRU\""))).hasPrefix("config `cell` is \"GRU\"; charlm knows \"lstm\", \"gru\", \"rnn\""))
    #expect(problem(edited(withCell("5"))).hasPrefix("config `cell` is not a string"))
    #expect(problem(edited(withCell("\"gru\""))).contains("the config says cell gru but the tensors are those of cell lstm (lstm.*)"))
    #expect(problem(edited(withCell(nil))) == "loaded", "no cell key and LSTM tensors: an LSTM")
    let renamed = edited { file in
        withCell(nil)(&file)
        file.tensors = file.tensors.map { tensor in
            var copy = tensor
            copy.name = tensor.name.replacingOccurrences(of: "optim.exp_avg.lstm.", with: "optim.exp_avg.gru.")
            return copy
        }
    }
    #expect(problem(renamed) == "tensor 'optim.exp_avg.lstm.weight_ih_l0' is missing", "no blame on the model's tensors")
    let both = edited { file in
        withCell(nil)(&file)
        file.tensors.append(NamedTensor(name: "gru.weight_ih_l0", shape: [1], values: [0]))
    }
    #expect(problem(both).contains("it holds the tensors of several cells (lstm.*, gru.*)"))
}

@Test func everyTruncationAndThousandsOfRandomEditsEndInAnErrorOrAValidLoad() throws {
    // Run once under the address sanitizer (see docs/testing.md): no crash, no out-of-bounds read.
    let valid = try validFileBytes(hidden: 3)  // about 10 KB, so thousands of parses stay quick
    var outcomes: [String: Int] = [:]
    func check(_ bytes: [UInt8]) {
        do {
            let loaded = try Checkpoint.parse(bytes, path: "fuzz")
            // A successful load is a usable model.
            #expect(loaded.parameters.count == RecurrentLayout(config: loaded.config).totalCount)
            let allFinite = loaded.parameters.allSatisfy { $0.isFinite }
            #expect(allFinite)
            outcomes["loaded", default: 0] += 1
        } catch let error as CharLMError {
            guard case .badCheckpoint = error else { Issue.record("unexpected \(error)"); return }
            outcomes["refused", default: 0] += 1
        } catch {
            Issue.record("unexpected error type \(error)")
        }
    }
    for length in 0..<valid.count { check(Array(valid[0..<length])) }
    var generator = SeededGenerator(seed: 2024)
    let headerLength = Int(valid[0]) | Int(valid[1]) << 8 | Int(valid[2]) << 16
    for _ in 0..<4000 {
        var bytes = valid
        for _ in 0..<(1 + generator.nextIndex(below: 3)) {
            // Half the edits land in the 8-byte length or the JSON header, where they do the most damage.
            let inHeader = generator.nextIndex(below: 2) == 0
            let index = inHeader ? generator.nextIndex(below: 8 + headerLength) : generator.nextIndex(below: bytes.count)
            bytes[index] = UInt8(truncatingIfNeeded: generator.next())
        }
        check(bytes)
    }
    // Header edits that keep the JSON well-formed: change a number inside it.
    let headerText = String(decoding: valid[8..<(8 + headerLength)], as: UTF8.self)
    let digitPositions = headerText.utf8.indices.filter { headerText.utf8[$0] >= 0x30 && headerText.utf8[$0] <= 0x39 }
    for _ in 0..<1000 {
        var utf8 = Array(headerText.utf8)
        let position = headerText.utf8.distance(from: headerText.utf8.startIndex, to: digitPositions[generator.nextIndex(below: digitPositions.count)])
        utf8[position] = UInt8(0x30 + generator.nextIndex(below: 10))
        check(Array(valid[0..<8]) + utf8 + Array(valid[(8 + headerLength)...]))
    }
    #expect(outcomes["refused", default: 0] > 1000)
    #expect(outcomes["loaded", default: 0] > 0)  // flips in tensor data usually leave a valid file
}

// MARK: Hostile files: sizes and counters a file supplies are checked before they cost anything

@Test func aConfigFarLargerThanItsTensorsIsRefusedBeforeAnythingIsAllocated() throws {
    // hidden 8192, 16 layers, embed 8192: 69 GB of parameters and gradients, in a file of a few hundred bytes.
    let config = "{\"embed\": 8192, \"hidden\": 8192, \"layers\": 16, \"lowercase\": false, \"ascii\": false}"
    let tiny = NamedTensor(name: "embedding.weight", shape: [2, 4], values: [Float](repeating: 0.5, count: 8))
    let wrongShape = SafeTensorsFile(metadata: ["vocab": "[\"a\", \"b\"]", "config": config], tensors: [tiny]).serialized()
    let before = peakResidentBytes()
    #expect(problem(wrongShape) == "tensor 'embedding.weight' has shape [2, 4]; config and vocab say [2, 8192]")
    let missing = SafeTensorsFile(metadata: ["vocab": "[\"a\", \"b\"]", "config": config], tensors: []).serialized()
    #expect(problem(missing) == "tensor 'embedding.weight' is missing")
    // hidden 8192 with 3 layers and embed 8192 is 6.3 GB: allocating it before refusing would show here (the bound is
    // loose as other tests run in this process at the same time).
    let threeLayers = "{\"embed\": 8192, \"hidden\": 8192, \"layers\": 3, \"lowercase\": false, \"ascii\": false}"
    #expect(problem(SafeTensorsFile(metadata: ["vocab": "[\"a\", \"b\"]", "config": threeLayers], tensors: [tiny]).serialized())
            == "tensor 'embedding.weight' has shape [2, 4]; config and vocab say [2, 8192]")
    #expect(peakResidentBytes() - before < 1_000_000_000, "refusing the files allocated \(peakResidentBytes() - before) bytes")
    // A model that size is refused by the memory budget wherever it would be made.
    let huge = RecurrentConfig(vocabularySize: 65, embeddingSize: 8192, hiddenSize: 8192, layerCount: 16)
    let error = try #require(throws: CharLMError.self) { try RecurrentModel(config: huge, parameters: nil) }
    guard case .notEnoughMemory(_, let bytes, let available, _) = error else { Issue.record("unexpected \(error)"); return }
    #expect(Double(bytes) == MemoryModel.modelBytes(huge) && bytes > available)
    #expect(error.description.contains("lower hidden, layers or embed"))
    #expect(peakResidentBytes() - before < 1_000_000_000)
}

@Test func countersHistoriesAndOptimizerSettingsAreCheckedAtLoad() throws {
    let valid = try SafeTensorsFile.parse(validFileBytes(), path: "x")
    func edited(_ key: String, _ change: (inout [String: Any]) -> Void) -> [UInt8] {
        var copy = valid
        var object = try! JSONSerialization.jsonObject(with: Data(copy.metadata[key]!.utf8)) as! [String: Any]
        change(&object)
        copy.metadata[key] = String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        return copy.serialized()
    }
    let limit = Trainer.maximumStep
    #expect(problem(edited("training") { $0["step"] = Int.max }) == "training `step` is \(Int.max); charlm counts to at most \(limit)")
    #expect(problem(edited("training") { $0["step"] = 2_000_000_000_000_000 }).hasPrefix("training `step` is 2000000000000000"))
    #expect(problem(edited("optimizer") { $0["step"] = Int.max }) == "optimizer `step` is \(Int.max); charlm counts to at most \(limit)")
    #expect(problem(edited("optimizer") { $0["beta1"] = 1.0 }).hasPrefix("its optimizer settings are unusable: beta1 and beta2"))
    #expect(problem(edited("optimizer") { $0["eps"] = 0 }).hasPrefix("its optimizer settings are unusable"))
    // An eps that swamps the second moment (training would barely move) is refused too.
    #expect(problem(edited("optimizer") { $0["eps"] = 1.8e19 }).contains("eps above 0 and at most 1"))
    #expect(problem(edited("optimizer") { $0["beta2"] = 1e300 }) == "optimizer `beta2` is not a number")
    #expect(problem(edited("training") { $0["loss_history"] = ["a": 1] }) == "training `loss_history` is not a list")
    #expect(problem(edited("training") { $0["loss_history"] = [Double](repeating: 1, count: 5) }) == "training `loss_history` has 5 losses for 1 steps")
    #expect(problem(edited("training") { $0["validation_history"] = "1:2" }) == "training `validation_history` is not a list")
    #expect(problem(edited("training") { $0["validation_history"] = [[5, 2.0]] }).hasPrefix("training `validation_history` holds something other than [step, loss] pairs with a step from 0 to the training step (1)"))
    #expect(problem(edited("training") { $0["validation_history"] = [[-1, 2.0]] }).hasPrefix("training `validation_history` holds"))
    #expect(problem(edited("corpus") { $0["characters"] = -5 }) == "metadata `corpus` needs characters and fnv1a64")
    // A file cut short inside its header is still recognised as a checkpoint, and said to be one.
    let bytes = try validFileBytes()
    #expect(SafeTensorsFile.looksLikeSafeTensors(Array(bytes.prefix(500))))
    #expect(problem(Array(bytes.prefix(500))).hasPrefix("its header length"))
    // Text never looks like one: its first eight bytes make a length far above the limit.
    #expect(!SafeTensorsFile.looksLikeSafeTensors(Array("ROMEO: {but soft".utf8)))
    // The old history text is read leniently: impossible entries are left out, and a note says so.
    var legacy = valid
    var training = try JSONSerialization.jsonObject(with: Data(legacy.metadata["training"]!.utf8)) as! [String: Any]
    training["validation_history"] = nil
    legacy.metadata["training"] = String(decoding: try JSONSerialization.data(withJSONObject: training), as: UTF8.self)
    legacy.metadata["settings"] = "{\"validation_history\": \"1:nan,1:inf,9:2.0,1:1e308,-1:3,1:2.5\"}"
    let loaded = try Checkpoint.parse(legacy.serialized(), path: "legacy")
    #expect(loaded.training?.validationHistory == [ValidationPoint(step: 1, loss: 1e308), ValidationPoint(step: 1, loss: 2.5)])
    #expect(loaded.notes.contains("left out 4 unreadable entries of the validation history"))
}

@Test func aVocabularyOfAMillionCopiesIsDescribedAsEntries() throws {
    let vocab = "[" + Array(repeating: "\"a\"", count: 70_000).joined(separator: ",") + "]"
    let bytes = SafeTensorsFile(metadata: ["vocab": vocab, "config": "{\"embed\": 2, \"hidden\": 2, \"layers\": 1, \"lowercase\": false, \"ascii\": false}"],
                                tensors: []).serialized()
    #expect(problem(bytes) == "its vocabulary is unusable: the vocabulary has 70000 entries; charlm supports at most 65,535")
}

@Test func aHeaderOfManyTensorsIsRefusedAndReadingItStopsWhenAsked() throws {
    // Past the cap: refused by count, before any tensor is read.
    let count = SafeTensorsFile.maximumTensorCount + 1
    let entries = (0..<count).map { "\"t\($0)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\(4 * $0),\(4 * $0 + 4)]}" }
    let many = file(header: "{" + entries.joined(separator: ",") + "}", data: [UInt8](repeating: 0, count: 4 * count))
    #expect(problem(many) == "its header describes \(count) tensors; a charlm checkpoint has at most \(SafeTensorsFile.maximumTensorCount)")
    // Far past it: refused by a count of its objects, before the header is parsed.
    let far = 2 * SafeTensorsFile.maximumTensorCount + 1
    let manyMore = file(header: "{\"m\":[" + Array(repeating: "{}", count: far).joined(separator: ",") + "]}", data: [])
    #expect(problem(manyMore) == "its header opens \(far + 1) JSON objects; a charlm checkpoint describes at most "
            + "\(SafeTensorsFile.maximumTensorCount) tensors, one object each")

    // A stop asked while the header is read ends the read as cancelled, not as a damaged file.
    let asks = Counter()
    let stopAtOnce = Cancellation { asks.increment() >= 1 }
    #expect(throws: CharLMError.cancelled) { try SafeTensorsFile.parse(many, path: "x", cancellation: stopAtOnce) }
    #expect(asks.value >= 1)
    #expect(throws: CharLMError.cancelled) { try JSONValue.parse("[" + String(repeating: "0,", count: 70_000) + "0]", cancellation: stopAtOnce) }
}

/// Counts how often a cancellation was asked (from one thread at a time).
private final class Counter: @unchecked Sendable {
    private(set) var value = 0
    func increment() -> Int { value += 1; return value }
}

@Test func whatAFileSaysIsQuotedInBoundedMessagesAndNotes() throws {
    let valid = try SafeTensorsFile.parse(validFileBytes(), path: "x")
    // A hundred tensors charlm does not use: the note names eight and counts the rest; long names are cut.
    var extra = valid
    let longName = String(repeating: "n", count: 100_000)
    extra.tensors += (0..<100).map { NamedTensor(name: String(format: "extra.%03d", $0), shape: [1], values: [0]) }
    extra.tensors.append(NamedTensor(name: longName, shape: [1], values: [0]))
    let notes = try Checkpoint.parse(extra.serialized(), path: "x").notes
    let ignored = try #require(notes.first { $0.hasPrefix("ignored tensors") })
    #expect(ignored.hasPrefix("ignored tensors charlm does not use: extra.000, extra.001,"))
    #expect(ignored.hasSuffix(" and 93 more"))
    #expect(ignored.count < 200)
    // A problem naming a huge tensor name is said in a few lines, its start and end kept.
    let header = "{\"\(longName)\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}"
    let damaged = file(header: header, data: [0, 0, 0, 0])
    #expect(problem(damaged).count > 100_000)
    let message = CharLMError.badCheckpoint(path: "f", problem: problem(damaged)).description
    #expect(message.count <= 450)
    #expect(message.hasPrefix("'f' is not a usable checkpoint: tensor 'nnnn"))
    #expect(message.hasSuffix("nnn' has unknown dtype 'F33'"))
    // One character of a million combining marks is cut as well (by Unicode scalars, not characters).
    let marks = "a" + String(repeating: "\u{301}", count: 100_000)
    let marked = file(header: "{\"\(marks)\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0])
    #expect(CharLMError.badCheckpoint(path: "f", problem: problem(marked)).description.unicodeScalars.count <= 450)
    // A shape of many dimensions is refused by its count; braces inside a string are not objects.
    let dims = "[" + Array(repeating: "1", count: 9).joined(separator: ",") + "]"
    #expect(problem(file(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":\(dims),\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]))
            == "tensor 't' has 9 dimensions; charlm reads at most 8")
    var braces = valid
    braces.metadata["note"] = String(repeating: "{", count: 2 * SafeTensorsFile.maximumTensorCount + 5) + "\\\"{"
    #expect(problem(braces.serialized()) == "loaded")
}
