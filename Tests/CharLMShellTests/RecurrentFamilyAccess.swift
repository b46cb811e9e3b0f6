// The recurrent family behind the model interface, for tests that look at its internals: files and models these
// tests make are recurrent, so a cast that fails is a failing test.

import CharLM

extension Checkpoint {
    /// The recurrent architecture of a file these tests wrote or loaded.
    var config: RecurrentConfig { architecture as! RecurrentConfig }

    init(config: RecurrentConfig, vocabulary: Vocabulary, parameters: [Float], optimizer: OptimizerState? = nil,
         training: TrainingState? = nil, sampling: SamplingSettings? = nil, corpus: CorpusFingerprint? = nil,
         settings: [String: String] = [:]) {
        self.init(architecture: config, vocabulary: vocabulary, parameters: parameters, optimizer: optimizer,
                  training: training, sampling: sampling, corpus: corpus, settings: settings)
    }
}

extension TrainableLanguageModel {
    /// The recurrent model these tests made.
    var recurrent: RecurrentModel { self as! RecurrentModel }
    var config: RecurrentConfig { recurrent.config }
    var layout: RecurrentLayout { recurrent.layout }
}
