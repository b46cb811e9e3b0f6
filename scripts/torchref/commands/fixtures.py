"""The fixtures charlm's tests replay (Tests/CharLMTests/Fixtures), for any --cell: `fixture-checkpoint` (a tiny
trained model as a charlm file, with the logits and greedy text PyTorch computes) and `fixture-training` (a run of
training steps with every batch, loss and parameter). The LSTM's files regenerate byte for byte as they always did."""
import json
import os
import shlex

import torch

from ..checkpoint import save_charlm
from ..models import CELLS, CharRNN, greedy, logits_after
from ..text import encode, tokenize
from ..training import make_optimizer, random_windows, training_step


def checkpoint_arguments(parser):
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--cell", choices=CELLS, default="lstm",
                        help="lstm (default: torch-tiny.*), gru or rnn (torch-gru-tiny.*, torch-rnn-tiny.*)")
    parser.add_argument("--seed", type=int, default=11)


def training_arguments(parser):
    parser.add_argument("--out", required=True)
    parser.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--clip", type=float, default=0.5)
    parser.add_argument("--wd", type=float, default=0.0, help="AdamW weight decay on the weight matrices (0: Adam)")


def made_by(command, args):
    """A fixture's "made_by": for the LSTM the words it always had (its fixtures regenerate byte for byte); for the
    other cells the exact command line that made it."""
    if args.cell == "lstm":
        return f"scripts/torch_reference.py {command}, torch " + torch.__version__
    return "python3 scripts/torch_reference.py " + shlex.join(args.argv) + ", torch " + torch.__version__


def fixture_checkpoint(args):
    """A tiny model trained briefly, saved as a charlm file, with the logits and greedy text PyTorch computes.
    Files: torch-tiny.safetensors and torch-tiny-expected.json for the LSTM, torch-<cell>-tiny... for the others."""
    torch.manual_seed(args.seed)
    vocab, ids = tokenize("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 4)
    model = CharRNN(len(vocab), 5, 7, 2, cell=args.cell)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        x, y = random_windows(ids, 12, 4)
        training_step(model, optimizer, x, y)
    model.eval()
    stem = "torch-tiny" if args.cell == "lstm" else f"torch-{args.cell}-tiny"
    path = os.path.join(args.out_dir, stem + ".safetensors")
    save_charlm(model, vocab, {"embed": 5, "hidden": 7, "layers": 2, "lowercase": False, "ascii": False}, path)
    prompt = "Whether 'tis"
    expected = {"made_by": made_by("fixture-checkpoint", args),
                "prompt": prompt, "logits": logits_after(model, encode(prompt, vocab, {})).tolist(),
                "greedy": "".join(vocab[i] for i in greedy(model, encode(prompt, vocab, {}), 40))}
    with open(os.path.join(args.out_dir, stem + "-expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {path} and {stem}-expected.json")


def fixture_training(args):
    """Writes a JSON fixture: a small model's initial parameters (state_dict order, flattened), a run of training
    steps (each batch and the loss PyTorch computed before its update, with grad-norm clipping and Adam, or AdamW
    with --wd), and the final parameters. charlm's tests replay the same batches and must match. For gru and rnn
    the cell is a top-level "cell" key (`config` stays all numbers); the LSTM fixture has none."""
    torch.manual_seed(args.seed)
    vocab, ids = tokenize("It is a truth universally acknowledged, that a single man in possession of a good "
                          "fortune, must be in want of a wife.\n")
    V, E, H, L, T, B = len(vocab), 8, 16, 2, 10, 4
    model = CharRNN(V, E, H, L, cell=args.cell)
    flat = lambda: [float(v) for p in model.parameters() for v in p.detach().reshape(-1).tolist()]
    initial = flat()
    optimizer = make_optimizer(model, args.lr, args.wd) if args.wd else torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = []
    for _ in range(args.steps):
        x, y = random_windows(ids, T, B)
        loss, norm = training_step(model, optimizer, x, y, args.clip)
        steps.append({"inputs": x.tolist(), "targets": y.tolist(), "loss": loss.item(), "grad_norm": norm.item()})
    fixture = {"made_by": made_by("fixture-training", args)}
    if args.cell != "lstm":
        fixture["cell"] = args.cell
    fixture.update({"config": {"vocab": V, "embed": E, "hidden": H, "layers": L, "seq": T, "batch": B,
                               "lr": args.lr, "clip": args.clip, "weight_decay": args.wd},
                    "initial_parameters": initial, "steps": steps, "final_parameters": flat()})
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    clipped = sum(step["grad_norm"] > args.clip for step in steps)
    print(f"wrote {args.out}: {len(steps)} steps ({clipped} clipped at {args.clip:g}), "
          f"final loss {steps[-1]['loss']:.6f}")


def transformer_arguments(parser):
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--steps", type=int, default=12)


def fixture_transformer(args):
    """Writes a JSON fixture of nanoGPT's GPT (nanogpt.py) at a tiny size (E 8, 2 layers, 2 heads, block 8), with bias
    off and on: the state_dict's names, the parameters by name (flattened; the tied head under transformer.wte.weight), one batch
    with the logits (B, T, V), loss and gradients PyTorch computes, and a dozen AdamW steps in nanoGPT's groups
    (betas 0.9 and 0.99, weight decay 0.1, gradients clipped at norm 1), each batch's loss and the final parameters.
    The parameters are drawn wider than nanoGPT's initialisation (matrices N(0, 0.3), biases N(0, 0.1), LayerNorm
    weights 1 + N(0, 0.2)) so that the attention is far from uniform."""
    from ..nanogpt import GPT, GPTConfig
    torch.manual_seed(args.seed)
    vocab, ids = tokenize("It is a truth universally acknowledged, that a single man in possession of a good "
                          "fortune, must be in want of a wife.\n")
    V, E, L, NH, C, T, B, lr, clip, wd = len(vocab), 8, 2, 2, 8, 8, 3, 1e-2, 1.0, 0.1
    named = lambda model, values: {name: [float(v) for v in values(p).reshape(-1).tolist()]
                                   for name, p in model.named_parameters()}
    cases = []
    for bias in (False, True):
        model = GPT(GPTConfig(block_size=C, vocab_size=V, n_layer=L, n_head=NH, n_embd=E, dropout=0.0, bias=bias))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() >= 2:
                    p.normal_(0, 0.3)
                elif ".ln_" in name and name.endswith(".weight"):
                    p.normal_(1, 0.2)
                else:
                    p.normal_(0, 0.1)
        case = {"bias": bias, "state_dict_keys": list(model.state_dict().keys()),
                "parameters": named(model, lambda p: p.detach())}
        x, y = random_windows(ids, T, B)
        logits, loss = model(x, y)
        loss.backward()
        case.update({"inputs": x.tolist(), "targets": y.tolist(), "logits": logits.detach().tolist(),
                     "loss": loss.item(), "gradients": named(model, lambda p: p.grad)})
        optimizer = model.configure_optimizers(wd, lr, (0.9, 0.99))
        steps = []
        for _ in range(args.steps):
            x, y = random_windows(ids, T, B)
            _, loss = model(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            steps.append({"inputs": x.tolist(), "targets": y.tolist(), "loss": loss.item(), "grad_norm": norm.item()})
        case.update({"steps": steps, "final_parameters": named(model, lambda p: p.detach())})
        cases.append(case)
    fixture = {"made_by": "python3 scripts/torch_reference.py " + shlex.join(args.argv) + ", torch " + torch.__version__,
               "config": {"vocab": V, "embed": E, "layers": L, "heads": NH, "context": C, "seq": T, "batch": B,
                          "lr": lr, "clip": clip, "weight_decay": wd, "beta1": 0.9, "beta2": 0.99},
               "cases": cases}
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    print(f"wrote {args.out}: bias off and on, {args.steps} AdamW steps each")
