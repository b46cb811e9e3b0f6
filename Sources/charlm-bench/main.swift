// charlm-bench: measurements that are too slow or too machine-dependent for unit tests.
//
//   charlm-bench quality [--corpus PATH] [--steps N] [--eval-every N] [--seed N] [--embed E] [--hidden H]
//                        [--layers L] [--seq T] [--batch B] [--lr X] [--clip X] [--dropout P]
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
    let totalSteps: Int = try number(options, "steps", 1000)
    let evalEvery: Int = try number(options, "eval-every", 250)
    let seed: UInt64 = try number(options, "seed", 1337)
    let settings = TrainingSettings(
        steps: try number(options, "seq", 100), batch: try number(options, "batch", 64),
        learningRate: try number(options, "lr", 2e-3), clip: try number(options, "clip", 5))

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
          + "clip \(settings.clip); BLAS threads \(BLAS.threadCount)")
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
        if step % evalEvery == 0 || step == totalSteps {
            let evaluation = try trainer.evaluate()
            let tokensPerSecond = Double(step * settings.steps * settings.batch) / trainingSeconds
            print(String(format: "%4d  %10.4f  %8.4f  %7.4f  %9.1f  %18.0f", step, recentLoss / Double(recentCount),
                         evaluation.nats, evaluation.bits, Date().timeIntervalSince(start), tokensPerSecond))
            fflush(nil)
            recentLoss = 0
            recentCount = 0
        }
    }
}

let arguments = CommandLine.arguments.dropFirst()
do {
    switch arguments.first {
    case "quality": try quality(try parseOptions(arguments.dropFirst()))
    default:
        throw UsageError(description: "usage: charlm-bench quality [--corpus PATH] [--steps N] [--eval-every N] ...")
    }
} catch {
    FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
    exit(error is UsageError ? 2 : 1)
}
