// `save`, `save best` and `restore best`: the session as a checkpoint (the model, its training and optimizer
// state, the settings and the fingerprint of the text), written where SaveTargets.swift allows.

import CharLM
import Foundation

extension Session {
    /// Saves everything to `path` (default: the last path `save` wrote in this session, else charlm.safetensors).
    /// A bare `save` never replaces a file this session did not write (a loaded checkpoint, say): that takes its
    /// name. Returns the path and size.
    @discardableResult
    public func save(to requested: String?) throws -> (String, Int) {
        guard let model, vocabulary != nil else { throw ShellError.needs(.modelToSave) }
        try checkFinite(model, nothing: "nothing was saved: the file could not be loaded again")
        let path = try saves.savePath(requested: requested)
        try ReplaceableKind.checkpoint.checkReplaceable(path, by: "`save`")
        let bytes = sessionCheckpoint(parameters: model.parameters.array).serialized()
        try Checkpoint.write(bytes, to: path)
        saves.lastSavePath = path
        saves.wrote(path)
        savedStep = step
        return (path, bytes.count)
    }

    /// The session as a checkpoint, holding `parameters` and, unless `best` is given, the run's training and optimizer
    /// state. With `best`, the training state ends at the best's step and the optimizer is left out (it was not kept).
    func sessionCheckpoint(parameters: [Float], best: BestParameters? = nil) -> Checkpoint {
        var (training, optimizer) = trainer.map { ($0.state.training, Optional($0.state.optimizer)) }
            ?? (pendingResume?.training, pendingResume?.optimizer)
        if let best {
            optimizer = nil
            if var state = training {
                state.step = best.step
                state.lossHistory = Array(state.lossHistory.prefix(best.step))
                state.validationHistory.removeAll { $0.step > best.step }
                training = state
            }
        }
        var fingerprint = corpus.flatMap { $0.vocabulary == vocabulary ? $0.fingerprint : nil } ?? checkpointCorpus
        if fingerprint != nil && fingerprint == corpus?.fingerprint, let corpusName {
            fingerprint?.name = (corpusName as NSString).lastPathComponent
        }
        return Checkpoint(
            architecture: model!.architecture, vocabulary: vocabulary!, parameters: parameters, optimizer: optimizer,
            training: training, sampling: settings.sampling, corpus: fingerprint, settings: settings.checkpointSettings)
    }

    /// The best parameters of this model's training as a checkpoint (no optimizer state).
    func bestCheckpoint() throws -> Checkpoint {
        guard let best = watch.best else { throw ShellError.needs(.bestModel) }
        return sessionCheckpoint(parameters: best.values.array, best: best)
    }

    /// Writes the best parameters so far to `path` (`save best PATH`). Returns the path and size.
    @discardableResult
    public func saveBest(to requested: String) throws -> (String, Int) {
        guard model != nil else { throw ShellError.needs(.modelToSave) }
        let path = expandingTilde(requested)
        try ReplaceableKind.checkpoint.checkReplaceable(path, by: "`save best`")
        let bytes = try bestCheckpoint().serialized()
        try Checkpoint.write(bytes, to: path)
        saves.wrote(path)
        return (path, bytes.count)
    }

    /// Puts the best parameters so far back into the model; Adam restarts (its moments were not kept). The step
    /// count and histories stay.
    @discardableResult
    /// Returns the best, and whether anything changed (false when the parameters in use are the best already:
    /// no step was trained since it was measured, so Adam keeps its moments).
    public func restoreBest() throws -> (best: BestParameters, changed: Bool) {
        guard let model, let best = watch.best else { throw ShellError.needs(.bestModel) }
        // The parameters in use are the best already (no step since it was measured, or since it was restored).
        let unchanged = model.parameters.count == best.values.count
            && memcmp(model.parameters.pointer, best.values.pointer, 4 * best.values.count) == 0
        if unchanged { return (best, false) }
        model.parameters.copy(from: best.values)
        restoredFrom = best.step
        trainer?.optimizer.restart()
        pendingResume?.optimizer = nil
        watch.restartPatience()
        return (best, true)
    }

}
