#!/usr/bin/env python3
"""nanoGPT's side of charlm's transformer interop tests (Tests/CharLMShellTests/TransformerInteropTests.swift), with
nanoGPT's GPT as scripts/torchref/nanogpt.py writes it anew from karpathy/nanoGPT model.py. Each command prints one
JSON object.

  read-charlm FILE IDS      a charlm transformer file into nanoGPT's GPT by a strict load_state_dict of its tensors
                            as safetensors gives them (Adam's `optim.*` moments dropped), nothing else in between;
                            prints the (T, V) logits of the token ids IDS (comma-separated) and the state_dict's keys
  make-ckpt FOLDER          what nanoGPT's train.py and data/shakespeare_char/prepare.py leave behind, at a tiny size:
                            FOLDER/meta.pkl (stoi, itos, vocab_size) and FOLDER/ckpt.pt (model_args, the model's
                            state_dict under a compiled model's `_orig_mod.` names, the AdamW state of
                            configure_optimizers' groups after 7 steps, iter_num 7, best_val_loss, config); prints the
                            (T, V) logits of a prompt's ids, and iter_num

Needs torch and safetensors; the Swift tests run it only with CHARLM_TORCH_PYTHON set."""
import json
import os
import pickle
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from torchref.nanogpt import GPT, GPTConfig  # noqa: E402

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 3
PROMPT = "Before we proceed"


def read_charlm(path, ids):
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        config = json.loads(f.metadata()["config"])
        state = {name: f.get_tensor(name) for name in f.keys() if not name.startswith("optim.")}
    model = GPT(GPTConfig(block_size=config["context"], vocab_size=config["vocab_size"], n_layer=config["layers"],
                          n_head=config["heads"], n_embd=config["embed"], dropout=config.get("dropout", 0.0),
                          bias=config["bias"]))
    model.load_state_dict(state, strict=True)  # every key nanoGPT's GPT has, and no other
    model.eval()
    with torch.no_grad():
        x = torch.tensor([ids])
        logits, _ = model(x, x)  # with targets, nanoGPT's forward gives every position's logits
    print(json.dumps({"keys": list(model.state_dict().keys()), "logits": logits[0].tolist()}))


def make_ckpt(folder):
    # data/shakespeare_char/prepare.py's vocabulary and meta.pkl
    chars = sorted(set(TEXT))
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    with open(os.path.join(folder, "meta.pkl"), "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, f)
    data = torch.tensor([stoi[c] for c in TEXT])
    # train.py: model_args, GPT, configure_optimizers' AdamW, clipping at grad_clip, a few iterations
    torch.manual_seed(1337)
    model_args = dict(n_layer=2, n_head=2, n_embd=16, block_size=24, bias=True, vocab_size=len(chars), dropout=0.0)
    model = GPT(GPTConfig(**model_args))
    config = {"batch_size": 4, "block_size": 24, "gradient_accumulation_steps": 1, "learning_rate": 3e-3,
              "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.99, "grad_clip": 1.0, "decay_lr": True,
              "warmup_iters": 2, "lr_decay_iters": 50, "min_lr": 3e-4, "max_iters": 50, "dataset": "tiny_char"}
    optimizer = model.configure_optimizers(config["weight_decay"], config["learning_rate"],
                                           (config["beta1"], config["beta2"]))
    iterations = 7
    for _ in range(iterations):
        ix = torch.randint(len(data) - 24, (4,))
        x = torch.stack([data[i:i + 24] for i in ix])
        y = torch.stack([data[i + 1:i + 25] for i in ix])
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    # A compiled model's state_dict names every tensor under `_orig_mod.` (train.py saves it so).
    state = {"_orig_mod." + name: tensor for name, tensor in model.state_dict().items()}
    torch.save({"model": state, "optimizer": optimizer.state_dict(), "model_args": model_args,
                "iter_num": iterations, "best_val_loss": torch.tensor(2.5), "config": config},
               os.path.join(folder, "ckpt.pt"))
    model.eval()
    ids = [stoi[c] for c in PROMPT]
    with torch.no_grad():
        x = torch.tensor([ids])
        logits, _ = model(x, x)
    print(json.dumps({"ids": ids, "logits": logits[0].tolist(), "iter_num": iterations}))


if __name__ == "__main__":
    if sys.argv[1] == "read-charlm":
        read_charlm(sys.argv[2], [int(i) for i in sys.argv[3].split(",")])
    else:
        make_ckpt(sys.argv[2])
