// charlm-bench: measurements that are too slow or too machine-dependent for unit tests.
//
//   charlm-bench train-speed | generate-speed | load-speed ...   (see Speed.swift; `scripts/bench` runs them)
//   charlm-bench quality [--corpus PATH] [--steps N] [--seconds S] [--eval-every N] [--seed N] [--embed E] [--hidden H]
//                        [--layers L] [--seq T] [--batch B] [--lr X] [--clip X] [--dropout P] [--warmup N] [--decay N]
//
// `quality` trains on raw text (no lowercasing, no ASCII folding), validating every `eval-every` steps with the
// standard protocol, and prints the curve, wall time and throughput.

import CharLM
import Foundation

struct UsageError: Error, CustomStringConvertible {
    let description: String
}

func parseOptions(_ arguments: ArraySlice<String>) throws -> [String: String] {
    var options: [String: String] = [:]
    var rest = arguments
    while let flag = rest.popFirst() {
        guard flag.hasPrefix("--"), let value = rest.popFirst() else {
            throw UsageError(description: "expected --NAME VALUE pairs; got '\(flag)'")
        }
        options[String(flag.dropFirst(2))] = value
    }
    return options
}

func number<T: LosslessStringConvertible>(_ options: [String: String], _ name: String, _ fallback: T) throws -> T {
    guard let text = options[name] else { return fallback }
    guard let value = T(text) else { throw UsageError(description: "--\(name) needs a number; got '\(text)'") }
    return value
}

func quality(_ options: [String: String]) throws {
    let corpusPath = options["corpus"] ?? "../shared/data/tinyshakespeare.txt"
    // With --seconds, training stops once this much training time (evaluation excluded) has passed, and --steps
    // (1000 by default otherwise) is unlimited unless given.
    let timeBudget: Double = try number(options, "seconds", .infinity)
    let totalSteps: Int = try number(options, "steps", timeBudget.isFinite ? Int.max - 1 : 1000)
    let evalEvery: Int = try number(options, "eval-every", 250)
    let seed: UInt64 = try number(options, "seed", 1337)
    let settings = TrainingSettings(
        steps: try number(options, "seq", 100), batch: try number(options, "batch", 64),
        learningRate: try number(options, "lr", 2e-3), clip: try number(options, "clip", 5),
        warmupSteps: try number(options, "warmup", 0), decaySteps: try number(options, "decay", 0))

    let loadStart = Date()
    let corpus = try Corpus.load(path: corpusPath, normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = ModelConfig(
        vocabularySize: corpus.vocabulary.count, embeddingSize: try number(options, "embed", 64),
        hiddenSize: try number(options, "hidden", 256), layerCount: try number(options, "layers", 2),
        dropout: try number(options, "dropout", 0))
    var initGenerator = SeededGenerator(seed: seed)
    let model = try CharLSTM(config: config, generator: &initGenerator)
    let trainer = try Trainer(model: model, dataset: dataset, settings: settings, seed: seed &+ 1)
    print(String(format: "corpus %@: %d characters, V %d, train %d, validation %d (loaded in %.2f s)",
                 corpusPath, corpus.tokens.count, corpus.vocabulary.count, dataset.trainRange.count,
                 dataset.validationRange.count, Date().timeIntervalSince(loadStart)))
    print("model E \(config.embeddingSize) H \(config.hiddenSize) L \(config.layerCount) dropout \(config.dropout), "
          + "\(model.layout.totalCount) parameters; T \(settings.steps) B \(settings.batch) lr \(settings.learningRate) "
          + "clip \(settings.clip) warmup \(settings.warmupSteps) decay \(settings.decaySteps); threads \(ComputeThreads.count)")
    print("step  train_loss  val_loss  val_bpc  elapsed_s  train_tokens_per_s")
    var trainingSeconds = 0.0
    var recentLoss = 0.0
    var recentCount = 0
    let start = Date()
    for step in 1...totalSteps {
        let stepStart = Date()
        recentLoss += try trainer.trainStep()
        recentCount += 1
        trainingSeconds += Date().timeIntervalSince(stepStart)
        let outOfTime = trainingSeconds >= timeBudget
        if step % evalEvery == 0 || step == totalSteps || outOfTime {
            let evaluation = try trainer.evaluate()
            let tokensPerSecond = Double(step * settings.steps * settings.batch) / trainingSeconds
            print(String(format: "%4d  %10.4f  %8.4f  %7.4f  %9.1f  %18.0f", step, recentLoss / Double(recentCount),
                         evaluation.nats, evaluation.bits, Date().timeIntervalSince(start), tokensPerSecond))
            fflush(nil)
            recentLoss = 0
            recentCount = 0
        }
        if outOfTime { break }
    }
}

/// Writes one training step's inputs and results as raw little-endian files, for a side-by-side check with PyTorch:
/// parameters.f32 (flat, state_dict order), inputs.i32 and targets.i32 (B, T), gradients.f32, loss.txt.
func dumpStep(_ options: [String: String]) throws {
    let corpus = try Corpus.load(path: options["corpus"] ?? "../shared/data/tinyshakespeare.txt", normalization: .raw)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let folder = options["out"] ?? "/tmp/charlm-dump"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let (T, B) = (try number(options, "seq", 100), try number(options, "batch", 64))
    let config = ModelConfig(vocabularySize: corpus.vocabulary.count, embeddingSize: try number(options, "embed", 64),
                             hiddenSize: try number(options, "hidden", 256), layerCount: try number(options, "layers", 2))
    var generator = SeededGenerator(seed: 1)
    let model = try CharLSTM(config: config, generator: &generator)
    let workspace = model.makeWorkspace(steps: T, batch: B)
    dataset.sampleBatch(steps: T, batch: B, generator: &generator, inputs: workspace.inputs, targets: workspace.targets)
    func write<T>(_ values: [T], _ name: String) throws {
        try values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: folder + "/" + name)) }
    }
    try write(model.parameters.array, "parameters.f32")
    var inputs = [Int32](repeating: 0, count: T * B), targets = inputs
    for b in 0..<B {
        for t in 0..<T { inputs[b * T + t] = workspace.inputs[t * B + b]; targets[b * T + t] = workspace.targets[t * B + b] }
    }
    try write(inputs, "inputs.i32")
    try write(targets, "targets.i32")
    model.forward(steps: T, batch: B, workspace: workspace, mode: .training, generator: &generator)
    let loss = model.loss(steps: T, batch: B, workspace: workspace, gradient: true)
    model.gradients.zero()
    model.backward(steps: T, batch: B, workspace: workspace)
    try write(model.gradients.array, "gradients.f32")
    model.gradients.zero()
    try "\(loss) \(config.vocabularySize) \(config.embeddingSize) \(config.hiddenSize) \(config.layerCount) \(T) \(B)".write(
        toFile: folder + "/loss.txt", atomically: true, encoding: .utf8)
    // Then `train-steps` full training steps from the same start, recording each batch (the trainer's generator,
    // copied, draws the same offsets) and each loss.
    let trainSteps: Int = try number(options, "train-steps", 0)
    if trainSteps > 0 {
        let trainer = try Trainer(model: model, dataset: dataset, settings: TrainingSettings(steps: T, batch: B), seed: 2)
        var batches: [Int32] = [], losses: [String] = []
        let batchInputs = UnsafeMutablePointer<Int32>.allocate(capacity: T * B)
        let batchTargets = UnsafeMutablePointer<Int32>.allocate(capacity: T * B)
        for _ in 0..<trainSteps {
            var copy = trainer.generator
            dataset.sampleBatch(steps: T, batch: B, generator: &copy, inputs: batchInputs, targets: batchTargets)
            for b in 0..<B { for t in 0..<T { batches.append(batchInputs[t * B + b]) } }
            for b in 0..<B { for t in 0..<T { batches.append(batchTargets[t * B + b]) } }
            losses.append(String(try trainer.trainStep()))
        }
        try write(batches, "batches.i32")
        try losses.joined(separator: "\n").write(toFile: folder + "/losses.txt", atomically: true, encoding: .utf8)
    }
    print("wrote \(folder): loss \(loss)")
}

/// Validation loss of a checkpoint on a corpus (normalised as the checkpoint says), with the standard protocol.
func evaluateCheckpoint(_ options: [String: String]) throws {
    guard let path = options["model"] else { throw UsageError(description: "eval needs --model FILE") }
    let checkpoint = try Checkpoint.load(from: path)
    let model = try CharLSTM(config: checkpoint.config, parameters: checkpoint.parameters)
    let corpus = try Corpus.load(path: options["corpus"] ?? "../shared/data/tinyshakespeare.txt",
                                 normalization: checkpoint.vocabulary.normalization)
    guard corpus.vocabulary == checkpoint.vocabulary else {
        throw UsageError(description: "the corpus's vocabulary differs from the model's")
    }
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let T: Int = try number(options, "seq", 100)
    let start = Date()
    let evaluation = try evaluate(model: model, dataset: dataset, steps: T, batch: 64, workspace: model.makeWorkspace(steps: T, batch: 64))
    print(String(format: "validation loss %.4f nats/char, %.4f bits/char, perplexity %.3f over %d characters (%.1f s)",
                 evaluation.nats, evaluation.bits, evaluation.perplexity, evaluation.characters, Date().timeIntervalSince(start)))
}

let arguments = CommandLine.arguments.dropFirst()
do {
    switch arguments.first {
    case "quality": try quality(try parseOptions(arguments.dropFirst()))
    case "eval": try evaluateCheckpoint(try parseOptions(arguments.dropFirst()))
    case "dump-step": try dumpStep(try parseOptions(arguments.dropFirst()))
    case "train-speed": try trainSpeed(try parseOptions(arguments.dropFirst()))
    case "generate-speed": try generateSpeed(try parseOptions(arguments.dropFirst()))
    case "load-speed": try loadSpeed(try parseOptions(arguments.dropFirst()))
    case "train-profile": try trainProfile(try parseOptions(arguments.dropFirst()))
    case "gemm-speed": try gemmSpeed(try parseOptions(arguments.dropFirst()))
    default:
        throw UsageError(description: "usage: charlm-bench quality [--corpus PATH] [--steps N] [--eval-every N] ...")
    }
} catch {
    FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
    exit(error is UsageError ? 2 : 1)
}
