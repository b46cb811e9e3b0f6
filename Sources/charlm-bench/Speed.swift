// The speed figures `scripts/bench` collects, one measurement per process so each reports its own peak memory.
// Each mode prints one JSON object on one line; `scripts/bench` runs them, and PyTorch's twins, and makes the table.
//
//   charlm-bench train-speed --embed E --hidden H --layers L --seq T --batch B [--steps N] [--warmup N]
//   charlm-bench generate-speed --hidden H [--embed E] [--layers L] [--length N] [--warmup N]
//   charlm-bench load-speed --corpus PATH

import CharLM
import Foundation

/// Peak resident set size of this process so far, in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024  // Linux reports kilobytes
}

/// Resident set size now, in bytes (from /proc; 0 where unavailable).
func currentResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let fields = line.split(separator: " ")
        if fields.count >= 2, let kilobytes = Int(fields[1]) { return kilobytes * 1024 }
    }
    return 0
}

func printJSON(_ fields: [(String, Any)]) {
    let body = fields.map { key, value -> String in
        switch value {
        case let text as String: return "\"\(key)\": \"\(text)\""
        case let number as Double: return "\"\(key)\": \(String(format: "%.6g", number))"
        default: return "\"\(key)\": \(value)"
        }
    }
    print("{" + body.joined(separator: ", ") + "}")
    fflush(nil)
}

/// The benchmark corpus's vocabulary when it is present, else 65 (its size), so speed never depends on the file.
func benchmarkCorpus(_ options: [String: String]) throws -> Corpus {
    let path = options["corpus"] ?? "../shared/data/tinyshakespeare.txt"
    if FileManager.default.fileExists(atPath: path) { return try Corpus.load(path: path, normalization: .raw) }
    var generator = SeededGenerator(seed: 5)
    let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n.,;:!?'-&$3")
    let text = String((0..<200_000).map { _ in letters[generator.nextIndex(below: letters.count)] })
    return try Corpus.make(text: text, normalization: .raw)
}

/// Training tokens per second (B*T per full step: batch, forward, loss, backward, clipping, Adam) after warm-up.
func trainSpeed(_ options: [String: String]) throws {
    let corpus = try benchmarkCorpus(options)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = ModelConfig(
        vocabularySize: corpus.vocabulary.count, embeddingSize: try number(options, "embed", 64),
        hiddenSize: try number(options, "hidden", 256), layerCount: try number(options, "layers", 2))
    let settings = TrainingSettings(steps: try number(options, "seq", 100), batch: try number(options, "batch", 64))
    let (warmup, steps): (Int, Int) = (try number(options, "warmup", 3), try number(options, "steps", 20))
    var generator = SeededGenerator(seed: 1)
    let model = try CharLSTM(config: config, generator: &generator)
    let trainer = try Trainer(model: model, dataset: dataset, settings: settings, seed: 2)
    for _ in 0..<warmup { try trainer.trainStep() }
    let start = Date()
    var lastLoss = 0.0
    for _ in 0..<steps { lastLoss = try trainer.trainStep() }
    let seconds = Date().timeIntervalSince(start)
    printJSON([("impl", "charlm"), ("figure", "train"), ("hidden", config.hiddenSize), ("seq", settings.steps),
               ("batch", settings.batch), ("steps", steps), ("seconds", seconds),
               ("tokens_per_s", Double(steps * settings.steps * settings.batch) / seconds), ("last_loss", lastLoss),
               ("peak_rss_mb", Double(peakResidentBytes()) / 1_048_576)])
}

/// Generated characters per second at batch 1 with temperature sampling, after a warm-up prompt.
func generateSpeed(_ options: [String: String]) throws {
    let corpus = try benchmarkCorpus(options)
    let config = ModelConfig(
        vocabularySize: corpus.vocabulary.count, embeddingSize: try number(options, "embed", 64),
        hiddenSize: try number(options, "hidden", 256), layerCount: try number(options, "layers", 2))
    let (warmup, length): (Int, Int) = (try number(options, "warmup", 50), try number(options, "length", 2000))
    var generator = SeededGenerator(seed: 1)
    let model = try CharLSTM(config: config, generator: &generator)
    let textGenerator = TextGenerator(model: model)
    let prompt = (0..<warmup).map { corpus.tokens[$0 % corpus.tokens.count] }
    _ = try textGenerator.generate(prompt: prompt, count: 10, settings: SamplingSettings(temperature: 0.8),
                                   primer: corpus.primer, generator: &generator)
    let start = Date()
    let output = try textGenerator.generate(prompt: prompt, count: length, settings: SamplingSettings(temperature: 0.8),
                                            primer: corpus.primer, generator: &generator)
    let seconds = Date().timeIntervalSince(start)
    printJSON([("impl", "charlm"), ("figure", "generate"), ("hidden", config.hiddenSize), ("characters", output.count),
               ("seconds", seconds), ("chars_per_s", Double(output.count) / seconds),
               ("peak_rss_mb", Double(peakResidentBytes()) / 1_048_576)])
}

/// Load and tokenise time of a (large) corpus file, and the memory the loaded corpus holds per character.
func loadSpeed(_ options: [String: String]) throws {
    guard let path = options["corpus"] else { throw UsageError(description: "load-speed needs --corpus PATH") }
    let before = currentResidentBytes()
    let start = Date()
    let corpus = try Corpus.load(path: path, normalization: .raw)
    let seconds = Date().timeIntervalSince(start)
    let held = currentResidentBytes() - before
    let characters = corpus.tokens.count
    printJSON([("impl", "charlm"), ("figure", "load"), ("characters", characters), ("seconds", seconds),
               ("held_bytes_per_char", Double(held) / Double(characters)),
               ("peak_rss_mb", Double(peakResidentBytes()) / 1_048_576), ("vocabulary", corpus.vocabulary.count)])
    withExtendedLifetime(corpus) {}
}

/// Where a training step's time goes: forward, loss, backward, clipping and Adam timed separately (seconds per step).
func trainProfile(_ options: [String: String]) throws {
    let corpus = try benchmarkCorpus(options)
    let dataset = try Dataset(tokens: corpus.tokens, validationFraction: 0.1)
    let config = ModelConfig(
        vocabularySize: corpus.vocabulary.count, embeddingSize: try number(options, "embed", 64),
        hiddenSize: try number(options, "hidden", 256), layerCount: try number(options, "layers", 2))
    let (T, B): (Int, Int) = (try number(options, "seq", 100), try number(options, "batch", 64))
    let steps: Int = try number(options, "steps", 10)
    var generator = SeededGenerator(seed: 1)
    let model = try CharLSTM(config: config, generator: &generator)
    let optimizer = Adam(parameterCount: model.layout.totalCount, settings: AdamSettings())
    let workspace = model.makeWorkspace(steps: T, batch: B)
    var phases = [Double](repeating: 0, count: 5)
    for step in 0..<(steps + 2) {
        var marks = [Date()]
        dataset.sampleBatch(steps: T, batch: B, generator: &generator, inputs: workspace.inputs, targets: workspace.targets)
        model.forward(steps: T, batch: B, workspace: workspace, mode: .training, generator: &generator)
        marks.append(Date())
        _ = model.loss(steps: T, batch: B, workspace: workspace, gradient: true)
        marks.append(Date())
        model.gradients.zero()
        model.backward(steps: T, batch: B, workspace: workspace)
        marks.append(Date())
        clipGradientNorm(model.gradients, maxNorm: 5)
        marks.append(Date())
        optimizer.update(parameters: model.parameters, gradients: model.gradients)
        marks.append(Date())
        if step >= 2 { for p in 0..<5 { phases[p] += marks[p + 1].timeIntervalSince(marks[p]) } }
    }
    let names = ["forward", "loss", "backward", "clip", "adam"]
    printJSON(zip(names, phases).map { ($0.0 + "_ms", $0.1 * 1000 / Double(steps)) }
              + [("tokens_per_s", Double(steps * T * B) / phases.reduce(0, +))])
}

/// GFLOP/s of BLAS on one product shape: C(m, n) = op(A) op(B), op(B) transposed unless --tb 0, op(A) unless --ta 1.
func gemmSpeed(_ options: [String: String]) throws {
    let (m, n, k): (Int, Int, Int) = (try number(options, "m", 64), try number(options, "n", 1024), try number(options, "k", 256))
    let repeats: Int = try number(options, "repeats", 200)
    let transA: Transpose = options["ta"] == "1" ? .transposed : .none
    let transB: Transpose = options["tb"] == "0" ? .none : .transposed
    let a = FloatBuffer(count: m * k), b = FloatBuffer(count: n * k), c = FloatBuffer(count: m * n)
    for index in 0..<a.count { a.pointer[index] = Float(index % 7) * 0.1 }
    for index in 0..<b.count { b.pointer[index] = Float(index % 5) * 0.1 }
    func run() {
        BLAS.gemm(transA, transB, m: m, n: n, k: k, a: a.pointer, lda: transA == .none ? k : m,
                  b: b.pointer, ldb: transB == .none ? n : k, beta: 1, c: c.pointer, ldc: n)
    }
    for _ in 0..<10 { run() }
    let start = Date()
    for _ in 0..<repeats { run() }
    let seconds = Date().timeIntervalSince(start)
    printJSON([("m", m), ("n", n), ("k", k), ("threads", ComputeThreads.count), ("us_per_call", seconds * 1e6 / Double(repeats)),
               ("gflops", 2 * Double(m * n * k * repeats) / seconds / 1e9)])
}
