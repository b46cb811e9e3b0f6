#!/usr/bin/env python3
"""The reference design in PyTorch: Embedding -> recurrent cell (batch_first=True) -> Linear, cross-entropy, Adam;
and for the transformer nanoGPT's GPT (scripts/torchref/nanogpt.py, karpathy/nanoGPT model.py written anew).

The cell is nn.LSTM (`lstm`, the default), nn.GRU (`gru`: gates r, z, n; b_hn inside the reset product) or nn.RNN
with tanh (`rnn`); its tensors are named after it: lstm.weight_ih_l0, gru.weight_ih_l0 or rnn.weight_ih_l0, ...
Commands that make a model take `--cell lstm|gru|rnn` or `--arch lstm|gru|rnn|transformer`; commands that read a
file take the model from its config ("arch": "transformer"; else "cell"; absent: lstm). A transformer's tensors are
nanoGPT's state_dict (transformer.wte.weight, ..., lm_head.weight, the tied head under both names), its AdamW groups
nanoGPT's (every tensor of 2+ dimensions decayed, embeddings included; biases and LayerNorm weights not), and its
generation recomputes the cropped context for every token, as nanoGPT's generate does.

A tool for side-by-side checks with charlm; never a dependency of the Swift build or of `swift test`.

  train     python3 scripts/torch_reference.py train --corpus FILE [--steps 1000] [--seconds S] [--wall-seconds S]
                [--eval-every 250] [--cell lstm|gru|rnn]
                [--seed 1337] [--embed 64] [--hidden 256] [--layers 2] [--dropout 0] [--seq 100] [--batch 64]
                [--lr 2e-3] [--clip 5] [--warmup 0] [--decay 0] [--wd 0] [--lowercase] [--ascii]
                [--device cpu|cuda] [--threads N] [--init-from FILE] [--save FILE]
                [--arch transformer [--heads 4] [--context 256] [--bias]] [--beta2 0.999]
            --init-from continues a charlm checkpoint: its weights, Adam's moments and step count, the step, the
            learning-rate schedule, cell, dropout, normalisation and histories (the command line's cell, sizes, lr,
            clip, schedule and normalisation are then ignored; --steps counts the steps added). --save writes a
            checkpoint charlm resumes with the optimizer (it carries the same).
            Several GPUs (or CPU processes): torchrun --nproc_per_node=N scripts/torch_reference.py train ...
            (DistributedDataParallel; --batch is the global batch, split evenly between the processes, so a step
            means what it means in charlm; each process draws its own windows; rank 0 validates and saves).
  convert-nanogpt
            python3 scripts/torch_reference.py convert-nanogpt CKPT.pt META.pkl OUT.safetensors
            A checkpoint of nanoGPT's train.py (model_args, the state_dict, a compiled model's `_orig_mod.` prefix
            stripped, the AdamW state in configure_optimizers' two groups, iter_num, config) and its dataset's
            character meta.pkl (itos, stoi) as a charlm transformer file. Nothing in either file is trusted: ckpt.pt
            is read by torch.load(weights_only=True), meta.pkl by an unpickler that makes no object of any class, and
            every value is checked as charlm checks its files.
  logits    python3 scripts/torch_reference.py logits --model FILE --prompt TEXT
            The logits after the prompt, as JSON. (logits, eval, generate: any cell, as the file's config says.)
  eval      python3 scripts/torch_reference.py eval --model FILE --corpus FILE [--seq 100]
            Validation loss of a charlm file (raw text, last 10%, the protocol below).
  generate  python3 scripts/torch_reference.py generate --model FILE --prompt TEXT [--length 200]
            Greedy (temperature 0) continuation.
  train-speed, generate-speed, load-speed
            The twins of `charlm-bench train-speed | generate-speed | load-speed` (same options; the first two also
            take --cell, or --arch transformer with --heads, --context, --bias); each prints one JSON line.
            The transformer's generate-speed takes --generator nanogpt (nanoGPT's generate, recomputing the context
            every character) or kvcache (scripts/torchref/kvcache.py). `scripts/bench` runs them beside charlm's.
  fixture-checkpoint, fixture-training
            The fixtures charlm's tests replay (Tests/CharLMTests/Fixtures), for any --cell.
  fixture-transformer --out FILE
            nanoGPT's GPT (scripts/torchref/nanogpt.py) at a tiny size: logits, loss, gradients and AdamW steps
            (Tests/CharLMTests/Fixtures/torch-transformer.json).

Files are charlm checkpoints: safetensors with PyTorch's state_dict names and `vocab`/`config` metadata (config
"cell" names the cell; files without it, older ones included, are LSTMs, and an LSTM is written without it, as
before). Files that charlm saved also hold `optim.*` tensors (Adam's moments); `train --init-from` reads them, the
other commands skip them.

Training follows charlm's protocol: batches of B windows at uniformly random offsets in the first 90% of the
corpus, every position a target; validation on the last 10% in non-overlapping windows of T inputs, zero state each.
Text is used raw (no lowercasing, no ASCII folding).
"""
import os
import sys

# The package beside this file (torchref/) holds the models, the file format and the commands; it is found from
# this file's folder, whatever folder the script is run from.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torchref.errors import absent, install_message  # noqa: E402 (after the path it needs; imports no torch)


if __name__ == "__main__":
    # Without torch (or numpy), even --help cannot be shown: one line says how to install them. safetensors is asked
    # for where a file is written.
    if absent(("torch", "numpy")):
        sys.exit(install_message(absent(("torch", "numpy"))))
    from torchref.cli import run
    sys.exit(run(sys.argv[1:], description=__doc__))
