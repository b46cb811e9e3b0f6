// What every model family answers, whatever it is inside. The trainer (Training/), the generator and the evaluator
// (Generation/, Training/Evaluation.swift), checkpoints (Files/), the memory model (Support/Resources.swift) and the
// shell talk to a model only through these protocols; what a family keeps inside (a recurrent state, n-gram counts,
// attention caches) stays in its folder under Models/.
//
//   ModelArchitecture      the settings of one model: its family, its tensors (named views with flags), what its
//                          buffers cost in memory, how its checkpoint `config` reads and writes; it makes the model
//   LanguageModel          inference: scores of windows (evaluation) and a decoder (generation)
//   TrainableLanguageModel a LanguageModel with flat parameters and gradients, and a forward and backward pass
//   ModelPass              the buffers of one forward and backward pass over (T, B) tokens
//   Decoder                feeds a prompt, then one token per sequence per step, keeping whatever state it needs
//
// Shapes: V vocabulary, T steps, B sequences (time-major buffers, (T, B) tokens and (T, B, V) scores), as everywhere.

/// Inference: what every model answers, trained or counted.
public protocol LanguageModel: AnyObject {
    /// V: the characters the model scores.
    var vocabularySize: Int { get }
    /// One line for `model` and `load`: "LSTM, E 64, H 256, L 2, V 65: 876,929 parameters".
    var summary: String { get }
    /// A scorer for evaluation windows of up to T steps, B at a time (Training/Evaluation.swift runs the protocol).
    func makeScorer(length T: Int, batch B: Int, context: ComputeContext) throws -> WindowScorer
    /// A decoder for `batch` sequences generated together, or nil when this model generates only one at a time
    /// (the generator then runs the samples one after another).
    ///
    /// - Parameter weights: the precision a batch-1 decoder may read its weights in; families without a choice ignore
    ///   it.
    func makeDecoder(batch: Int, context: ComputeContext, weights: GenerationWeights) throws -> Decoder?
}

/// Scores evaluation windows: B sequences of T tokens, each from an empty state (the evaluation protocol).
public protocol WindowScorer: AnyObject {
    /// (T, B) input tokens, time-major, filled by the caller.
    var inputs: UnsafeMutablePointer<Int32> { get }
    /// (T, B) the token that follows each input.
    var targets: UnsafeMutablePointer<Int32> { get }
    /// The sum over the T * B predictions of -ln p(target), each window from an empty state.
    func crossEntropySum(length T: Int, batch B: Int) -> Double
}

/// Generation: B sequences, each fed the same prompt, then advanced one token at a time.
public protocol Decoder: AnyObject {
    /// B: sequences advanced together.
    var batch: Int { get }
    /// Feeds `prompt` (tokens already checked against V, not empty) to every sequence from an empty state; Ctrl-C is
    /// heard between chunks of a long prompt.
    func start(prompt: [Int], cancellation: Cancellation) throws
    /// (B, V) each sequence's scores for its next token, after `start` or `advance`.
    var logits: UnsafePointer<Float> { get }
    /// Appends `tokens[b]` to sequence b, for every b.
    func advance(_ tokens: UnsafePointer<Int32>)
}

/// Whether a forward pass draws dropout masks.
public enum ForwardMode {
    /// Evaluation and generation: no dropout.
    case inference
    /// Training: dropout masks drawn from the generator (when the model's dropout is above zero).
    case training
}

/// A model the trainer can train: flat parameters and gradients laid out by its architecture's table.
public protocol TrainableLanguageModel: LanguageModel {
    /// The settings it was made from; `architecture.parameters` names every tensor in the flat buffers.
    var architecture: any ModelArchitecture { get }
    /// Every parameter, laid out by `architecture.parameters`.
    var parameters: FloatBuffer { get }
    /// dLoss/dparameter, same layout; backward accumulates here.
    var gradients: FloatBuffer { get }
    /// Buffers for passes of up to T steps over B sequences, run on `context`'s threads.
    func makePass(length T: Int, batch B: Int, context: ComputeContext) -> ModelPass
}

/// One forward and backward pass over (T, B) tokens, with its buffers. Made by the model, which it runs.
public protocol ModelPass: WindowScorer {
    /// Largest T and B this pass holds.
    var maxLength: Int { get }
    var maxBatch: Int { get }
    /// The threads and kernels it runs on.
    var context: ComputeContext { get }
    /// (T, B, V) scores of the last forward pass; `loss(gradient: true)` replaces them with dLoss/dscores.
    var logits: FloatBuffer { get }
    /// Forward over `inputs` (T, B) from an empty state: fills `logits`.
    func forward(length T: Int, batch B: Int, mode: ForwardMode, generator: inout SeededGenerator)
    /// Backward for the forward pass just run, given dLoss/dlogits in `logits`; accumulates into the model's
    /// gradients (the caller zeroes them once per step).
    func backward(length T: Int, batch B: Int)
}

extension ModelPass {
    /// Whether a pass of T steps over B sequences fits.
    public func fits(length T: Int, batch B: Int) -> Bool { T <= maxLength && B <= maxBatch }

    /// Mean cross-entropy of the last forward pass against `targets`; with `gradient`, leaves dLoss/dlogits in
    /// `logits` ready for `backward`.
    public func loss(length T: Int, batch B: Int, vocabularySize V: Int, gradient: Bool) -> Double {
        softmaxCrossEntropy(logits: logits.pointer, targets: targets, rows: T * B, classes: V, gradient: gradient)
    }
}

/// The settings of one model, enough to make it, name its tensors, cost it and write its checkpoint `config`.
/// Each family has one type (the recurrent family: `RecurrentConfig`) and a row in `ModelFamilies.readers`.
public protocol ModelArchitecture: Sendable {
    /// V.
    var vocabularySize: Int { get }
    /// What the family calls this kind of model, as `set cell` and a checkpoint's config say it ("lstm").
    var kindName: String { get }
    /// Every tensor in the flat parameter buffer, in the order PyTorch's `state_dict` lists them.
    var parameters: ParameterTable { get }
    /// "LSTM, E 64, H 256, L 2, V 65: 876,929 parameters".
    var summary: String { get }
    /// Throws a readable error for a size out of range.
    func validate() throws
    /// Throws a readable error when the model cannot take windows of T steps (the transformer's context is its
    /// limit); the trainer and evaluation ask before making a pass.
    func checkLength(_ T: Int) throws
    /// Parameters in the model (Double, as every figure below: a hostile config's sizes cannot overflow it).
    var parameterCount: Double { get }
    /// Bytes of the model itself (parameters and gradients).
    var modelBytes: Double { get }
    /// Bytes of one `ModelPass` for T steps of B sequences.
    func passBytes(length T: Int, batch B: Int) -> Double
    /// How messages about memory name this model's size and the settings that make it smaller.
    var sizeNames: ModelSizeNames { get }
    /// What to add to "tensor 'NAME' is missing" when a checkpoint lacks one of this model's tensors (a file whose
    /// config names one kind and whose tensors are another's), or nil.
    func missingTensorHint(tensorNames: Set<String>) -> String?
    /// The checkpoint's `config` entries this family writes (JSON-encoded values), besides the vocabulary's.
    var checkpointConfig: [(key: String, json: String)] { get }
    /// A model with these flat parameters (zeros when nil).
    func makeModel(parameters: [Float]?) throws -> any TrainableLanguageModel
    /// A model initialised as the family's PyTorch reference initialises it, from `generator`.
    func makeModel(generator: inout SeededGenerator) throws -> any TrainableLanguageModel
    /// Whether `other` is the same architecture.
    func isEqual(to other: any ModelArchitecture) -> Bool
}

extension ModelArchitecture {
    /// Windows of any length, for families without a context.
    public func checkLength(_ T: Int) throws {}
}

/// How memory messages name a model's size: "a model of E 64, H 256, L 2, V 65 ... lower hidden, layers or embed";
/// "training with seq 100 and batch 64 (H 256, L 2) ... (or hidden or layers, then `reset`)".
public struct ModelSizeNames: Sendable {
    public let full: String
    public let short: String
    public let allSettings: String
    public let mainSettings: String

    public init(full: String, short: String, allSettings: String, mainSettings: String) {
        self.full = full
        self.short = short
        self.allSettings = allSettings
        self.mainSettings = mainSettings
    }
}

/// One named tensor inside the flat buffers, with what the optimizer and checkpoints need to know of it.
public struct ParameterView: Equatable, Sendable {
    /// PyTorch's `state_dict` name, e.g. `lstm.weight_ih_l0`.
    public let name: String
    /// Row-major shape, as PyTorch reports it.
    public let shape: [Int]
    /// First element's offset in the flat buffer.
    public let offset: Int
    /// Whether AdamW's weight decay applies to it.
    public let decayed: Bool
    /// Other `state_dict` names of the same tensor (a tied weight): a checkpoint writes it under each, equal, and
    /// reads it from whichever is present.
    public let aliases: [String]
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// The view's range in the flat buffer.
    public var range: Range<Int> { offset..<(offset + count) }

    public init(name: String, shape: [Int], offset: Int, decayed: Bool = false, aliases: [String] = []) {
        self.name = name
        self.shape = shape
        self.offset = offset
        self.decayed = decayed
        self.aliases = aliases
    }
}

/// Every tensor of a model, in order, laid end to end in one flat buffer.
public struct ParameterTable: Equatable, Sendable {
    public let views: [ParameterView]
    /// Total number of parameters (the length of the flat buffers).
    public let totalCount: Int

    /// Lays out tensors one after the other, as `add` is called.
    public struct Builder {
        public private(set) var views: [ParameterView] = []
        private var offset = 0
        public init() {}
        public mutating func add(_ name: String, _ shape: [Int], decayed: Bool = false, aliases: [String] = []) -> ParameterView {
            let view = ParameterView(name: name, shape: shape, offset: offset, decayed: decayed, aliases: aliases)
            offset += view.count
            views.append(view)
            return view
        }
        public var table: ParameterTable { ParameterTable(views: views, totalCount: offset) }
    }

    /// The ranges AdamW's weight decay applies to.
    public var decayedRanges: [Range<Int>] { views.filter(\.decayed).map(\.range) }

    /// The view called `name` (or one of its aliases), or nil.
    public func view(named name: String) -> ParameterView? {
        views.first { $0.name == name || $0.aliases.contains(name) }
    }

    /// A flat buffer laid out by this table: a copy of `values`, which must hold `totalCount` of them, or zeros
    /// when nil.
    public func makeBuffer(_ values: [Float]?) throws -> FloatBuffer {
        guard let values else { return FloatBuffer(count: totalCount) }
        guard values.count == totalCount else {
            throw CharLMError.parameterCountMismatch(expected: totalCount, got: values.count)
        }
        return FloatBuffer(values)
    }
}

/// The families a checkpoint may hold. A family reads its own `config`; nothing in Checkpoint.swift names one.
public enum ModelFamilies {
    /// Reads a checkpoint's config into an architecture: nil when the config is not this family's, a `problem`
    /// (said as "its config ...") when it is and something is wrong.
    public typealias Reader = @Sendable (_ config: CheckpointConfig) throws -> (any ModelArchitecture)?

    /// Every family, asked in order: the transformer first (its config says `"arch": "transformer"`), then the
    /// recurrent family, which reads every other config.
    public static let readers: [Reader] = [{ try TransformerConfig.read($0) }, { try RecurrentConfig.read($0) }]

    /// The architecture `config` describes, asking `families` in order; a problem when none reads it.
    public static func architecture(from config: CheckpointConfig,
                                    families: [Reader] = readers) throws -> any ModelArchitecture {
        for read in families {
            if let architecture = try read(config) { return architecture }
        }
        throw CheckpointProblem("its config names no model family charlm knows")
    }
}

/// What a family reads its architecture from: the checkpoint's `config` object, the vocabulary's size and the names
/// of the tensors in the file (an export without a family key is told apart by its tensors).
public struct CheckpointConfig {
    public let json: JSONValue
    public let vocabularySize: Int
    public let tensorNames: Set<String>

    /// The whole number at `key`, or a problem naming the key.
    public func integer(_ key: String) throws -> Int {
        guard let value = json[key]?.integer else { throw CheckpointProblem("config `\(key)` is missing or not an integer") }
        return value
    }

    /// `dropout`: 0 when absent, or a problem when it is not a number (its range is the architecture's to check).
    public func dropout() throws -> Float {
        guard let value = json["dropout"] else { return 0 }
        guard let number = value.double else { throw CheckpointProblem("config `dropout` is not a number") }
        return Float(number)
    }
}

/// Something wrong in a checkpoint, as the end of "'PATH' is not a charlm checkpoint: ...".
public struct CheckpointProblem: Error {
    public let text: String
    public init(_ text: String) { self.text = text }
}
