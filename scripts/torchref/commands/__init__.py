"""The commands, one module a concern: train.py (training, the hand-over with --init-from, torchrun), inference.py
(logits, eval, generate on a charlm file), speed.py (the benchmark twins), fixtures.py (the tests' fixtures). Each
module gives, per command, a function declaring its options and one running it; cli.py lists them in one table."""
