"""The PyTorch reference behind scripts/torch_reference.py, by concern.

  models.py      the char model (Embedding -> LSTM, GRU or RNN -> Linear) and what it computes after a prompt
  text.py        charlm's normalisation, corpus loading and prompt encoding, the corpus fingerprint
  training.py    charlm's training protocol: batches of windows, one step, schedule, AdamW groups, settings, validation
  checkpoint.py  charlm's safetensors files: model tensors, Adam's moments, metadata
  commands/      one module a group of commands (training, using a model, speed, fixtures); cli.py puts them in a table
  cli.py         the command line: the command table, the parser made from it, the dispatch

Every module imports torch; safetensors is imported where a file is read or written, so `train` without --save runs
with torch alone.
"""
