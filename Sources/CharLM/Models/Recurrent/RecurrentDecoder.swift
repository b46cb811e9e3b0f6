// The recurrent family's decoder (Models/LanguageModel.swift): a prompt is fed through the training pass's code in
// chunks of 256 characters (batch 1), carrying the state; then each step advances by one character per sequence,
// on the stepper (Stepper.swift: fused product and cell, bf16, batched samples; every kind of layer), or, where the
// stepper's copy of the weights would not fit in memory, on a batch-1 forward pass per character.

/// Feeds a prompt, then one character per step, carrying the recurrent state.
final class RecurrentDecoder: Decoder {
    let model: RecurrentModel
    let batch: Int
    /// Prompts are fed in chunks of at most this many characters.
    private let chunk = 256
    /// Feeds prompts (many characters per pass), and steps where there is no stepper.
    private let workspace: ModelWorkspace
    /// Steps, one character per sequence; nil where its copy of the weights would not fit in memory, and `workspace`
    /// steps instead (batch 1 only).
    private let stepper: Stepper?
    /// (B, V) the prompt's scores, one copy per sequence, until the first step.
    private let promptLogits: FloatBuffer
    /// Where the latest scores are.
    private(set) var logits: UnsafePointer<Float>

    init(model: RecurrentModel, batch B: Int, context: ComputeContext, weights: GenerationWeights) throws {
        let config = model.config
        if B > 1 {
            try MemoryBudget.check(Double(Stepper.bytes(config: config, batch: B)), for: "\(B) samples at once",
                                   hint: "lower `samples`")
            // made before the prompt is fed, while the budget just checked still holds
            stepper = Stepper(config: config, batch: B)
        } else {
            let fits = Double(Stepper.bytes(config: config, batch: 1)) < MemoryBudget.usableBytes / 2
            stepper = fits ? Stepper(config: config, batch: 1, weights: weights) : nil
        }
        self.model = model
        batch = B
        workspace = model.makeWorkspace(length: chunk, batch: 1, context: context)
        promptLogits = FloatBuffer(count: B * config.vocabularySize)
        logits = UnsafePointer(promptLogits.pointer)
    }

    func start(prompt tokens: [Int], cancellation: Cancellation) throws {
        let V = model.config.vocabularySize
        var unused = SeededGenerator(seed: 0)
        var start = 0
        var lastRow = 0
        while start < tokens.count {
            try cancellation.check()
            let T = min(chunk, tokens.count - start)
            for t in 0..<T { workspace.inputs[t] = Int32(tokens[start + t]) }
            model.forward(length: T, batch: 1, workspace: workspace, mode: .inference, generator: &unused,
                          carryState: start > 0, reuseDerivedWeights: start > 0)
            workspace.carryState(length: T, batch: 1)
            lastRow = T - 1
            start += T
        }
        for b in 0..<batch {
            (promptLogits.pointer + b * V).update(from: workspace.logits.pointer + lastRow * V, count: V)
        }
        logits = UnsafePointer(promptLogits.pointer)
        if let stepper {
            // The parameters may have changed since the last call (training in between): copy them again.
            stepper.refresh(from: model, context: workspace.context)
            stepper.loadState(from: workspace)
        }
    }

    func advance(_ tokens: UnsafePointer<Int32>) {
        if let stepper {
            stepper.step(tokens: tokens, context: workspace.context)
            logits = UnsafePointer(stepper.logits.pointer)
            return
        }
        var unused = SeededGenerator(seed: 0)
        workspace.inputs[0] = tokens[0]
        // The parameters cannot change between steps, so the input table that `start` built is reused.
        model.forward(length: 1, batch: 1, workspace: workspace, mode: .inference, generator: &unused,
                      carryState: true, reuseDerivedWeights: true)
        workspace.carryState(length: 1, batch: 1)
        logits = UnsafePointer(workspace.logits.pointer)
    }
}
