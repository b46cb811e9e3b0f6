"""The PyTorch reference behind scripts/torch_reference.py, by concern.

  models.py              the char model (Embedding -> LSTM, GRU or RNN -> Linear), what it computes after a prompt
  text.py                charlm's normalisation, corpus loading and prompt encoding, the corpus fingerprint
  training.py            charlm's training protocol: windows, one step, schedule, AdamW groups, validation
  checkpoint.py          charlm's safetensors files: writing them, and a model from a file that was read
  checkpoint_reading.py  reading one as if it were hostile, with charlm's checks and charlm's words
  strict_json.py         metadata JSON as charlm takes it: no duplicate keys, NaN, huge numbers or deep nesting
  settings.py            the ranges charlm declares for its settings, and its files' limits
  memory.py              what the machine can hold, asked before allocating from a size a file or a user gave
  errors.py              the one-line errors (cli.run prints them, status 1) and how a file's strings are quoted
  commands/              one module a group of commands (training, using a model, speed, fixtures)
  cli.py                 the command line: the command table, the parser, the dispatch, errors to exit status

The model, text, training, reading and command modules import torch; errors, settings, strict_json and memory do
not (the entry point says with them that torch is missing). safetensors is imported where a file is written, so
`train` without --save runs with torch alone. Tests/python/hostile_checkpoints.py runs hostile files through it all.
"""
