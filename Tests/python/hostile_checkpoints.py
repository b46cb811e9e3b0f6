#!/usr/bin/env python3
"""Hostile checkpoints against the PyTorch reference (scripts/torch_reference.py). Every kind of damaged or crafted
file that charlm's own tests make (Tests/CharLMTests/CheckpointTests.swift) and the kinds an attack on the reference
found (duplicate keys, deep nesting, huge numbers, a million tiny tensors, huge header lengths, NaN and infinity,
wrong dtypes, truncations, random byte edits) go through the real entry point (`logits`, `eval`, `generate`, `train
--init-from`) in a subprocess with a time limit. A refused file must end the run with status 1 and one line on stderr,
`torch_reference.py: error: ...` (saying what charlm would say, where the case names it), with no traceback; a valid
file must load and give the results it gave before (the committed fixtures' logits and greedy text); no run may take
more memory than loading torch and a tiny model does. The last line is `hostile: N passed, N failed`; the status is 0
only when nothing failed. Swift's tests run this when CHARLM_TORCH_PYTHON names a python with torch
(Tests/CharLMShellTests/PyTorchHostileFileTests.swift).

  python3 Tests/python/hostile_checkpoints.py [--python PYTHON] [--jobs 2] [--time-limit 300] [--only TEXT]
                                              [--keep FOLDER]

The files are made here with the standard library alone; the python named by --python (default: this one) runs the
reference and needs torch."""
import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "torch_reference.py")
FIXTURES = os.path.join(ROOT, "Tests", "CharLMTests", "Fixtures")
SHELL_FIXTURES = os.path.join(ROOT, "Tests", "CharLMShellTests", "Fixtures")
ERROR = "torch_reference.py: error: "
#: The text the tiny fixtures were trained on (commands/fixtures.py); its 23 characters are their vocabulary.
TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
PROMPT = "Whether 'tis"
#: A run that reads a tiny model should stay near what importing torch takes; allocating from a hostile config
#: would not.
MAXIMUM_RSS_BYTES = 2_000_000_000


# MARK: safetensors files, made and edited with the standard library

@dataclass
class Tensor:
    name: str
    dtype: str
    shape: list
    data: bytes


@dataclass
class File:
    """A safetensors file as metadata (string -> string) and tensors in data order."""
    metadata: dict
    tensors: list

    def serialized(self):
        header = {"__metadata__": self.metadata} if self.metadata else {}
        offset = 0
        for tensor in self.tensors:
            header[tensor.name] = {"dtype": tensor.dtype, "shape": tensor.shape,
                                   "data_offsets": [offset, offset + len(tensor.data)]}
            offset += len(tensor.data)
        raw = json.dumps(header, separators=(",", ":")).encode()
        return header_bytes(raw + b" " * (-(8 + len(raw)) % 8)) + b"".join(t.data for t in self.tensors)

    def json(self, key):
        return json.loads(self.metadata[key])

    def edited(self, change):
        """A copy changed by `change(copy)`."""
        copy = File(dict(self.metadata), [Tensor(t.name, t.dtype, list(t.shape), t.data) for t in self.tensors])
        change(copy)
        return copy

    def tensor(self, name):
        return next(t for t in self.tensors if t.name == name)


def header_bytes(raw):
    return struct.pack("<Q", len(raw)) + raw


def raw_file(header, data=b""):
    """A file from a header text and data bytes, as charlm's test builds its damaged ones."""
    return header_bytes(header.encode() if isinstance(header, str) else header) + data


def read_file(path):
    with open(path, "rb") as f:
        data = f.read()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    start = 8 + length
    tensors = [Tensor(name, d["dtype"], d["shape"], data[start + d["data_offsets"][0]:start + d["data_offsets"][1]])
               for name, d in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])]
    return File(metadata, tensors)


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def set_f32(tensor, index, value):
    data = bytearray(tensor.data)
    data[4 * index:4 * index + 4] = struct.pack("<f", value)
    tensor.data = bytes(data)


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def shapes(cell, V, E, H, L):
    """The model's tensors in state_dict order, as charlm names them."""
    rows = GATES[cell] * H
    table = [("embedding.weight", [V, E])]
    for k in range(L):
        table += [(f"{cell}.weight_ih_l{k}", [rows, E if k == 0 else H]), (f"{cell}.weight_hh_l{k}", [rows, H]),
                  (f"{cell}.bias_ih_l{k}", [rows]), (f"{cell}.bias_hh_l{k}", [rows])]
    return table + [("fc.weight", [V, H]), ("fc.bias", [V])]


def checkpoint(cell="lstm", E=6, H=12, L=2, vocab=None, seed=1, full=True):
    """A valid charlm checkpoint as charlm writes one (Checkpoint.swift): seeded small weights; with `full`, Adam's
    moments and the training, optimizer, sampling, corpus and settings metadata after 3 steps."""
    vocab = vocab or sorted(set(TEXT))
    generator = random.Random(seed)
    count = lambda shape: math.prod(shape)
    table = shapes(cell, len(vocab), E, H, L)
    tensors = [Tensor(name, "F32", shape, f32([generator.uniform(-0.3, 0.3) for _ in range(count(shape))]))
               for name, shape in table]
    config = {"vocab_size": len(vocab), "embed": E, "hidden": H, "layers": L, "dropout": 0.0, "cell": cell,
              "lowercase": False, "ascii": False}
    metadata = {"vocab": json.dumps(vocab), "config": json.dumps(config)}
    if full:
        for moment, low in (("exp_avg", -0.01), ("exp_avg_sq", 0.0)):
            tensors += [Tensor(f"optim.{moment}.{name}", "F32", shape,
                               f32([generator.uniform(low, 0.01) for _ in range(count(shape))]))
                        for name, shape in table]
        metadata.update({
            "format": "charlm", "format_version": "1",
            "optimizer": json.dumps({"type": "adam", "step": 3, "lr": 0.002, "beta1": 0.9, "beta2": 0.999,
                                     "eps": 1e-8}),
            "training": json.dumps({"seq": 10, "batch": 4, "lr": 0.002, "clip": 5.0, "warmup": 0, "decay": 0,
                                    "weight_decay": 0.0, "val_fraction": 0.1, "step": 3, "epoch": 0.04,
                                    "generator": "0123456789abcdef" * 4, "loss_history": [3.1, 3.0, 2.9],
                                    "validation_history": [[3, 2.95]]}),
            "sampling": json.dumps({"temperature": 0.7, "top_k": 5, "top_p": 0.9}),
            "corpus": json.dumps({"characters": 3320, "fnv1a64": "2e59f00f4f77812f", "name": "text.txt"}),
            "settings": json.dumps({"eval": "250", "length": "300"}),
        })
    return File(metadata, tensors)


def transformer_shapes(V, E, L, C, bias):
    """nanoGPT's GPT in state_dict order as charlm names it (the tied head is added by transformer_checkpoint)."""
    table = [("transformer.wte.weight", [V, E]), ("transformer.wpe.weight", [C, E])]

    def add(name, weight):
        table.append((name + ".weight", weight))
        if bias:
            table.append((name + ".bias", weight[:1]))
    for i in range(L):
        for name, weight in (("ln_1", [E]), ("attn.c_attn", [3 * E, E]), ("attn.c_proj", [E, E]), ("ln_2", [E]),
                             ("mlp.c_fc", [4 * E, E]), ("mlp.c_proj", [E, 4 * E])):
            add(f"transformer.h.{i}.{name}", weight)
    add("transformer.ln_f", [E])
    return table


def transformer_checkpoint(E=8, L=2, NH=2, C=12, bias=False, heads_names=("transformer.wte.weight", "lm_head.weight"),
                           full=True, seed=3):
    """A valid charlm transformer file as charlm writes one: the tied head under each of `heads_names` (equal), and
    with `full` Adam's moments (the head's under the same names) and the metadata of checkpoint()."""
    vocab = sorted(set(TEXT))
    generator = random.Random(seed)
    table = transformer_shapes(len(vocab), E, L, C, bias)
    head = table[0][1]

    def tensors(prefix, low, high):
        out = []
        for name, shape in table:
            data = f32([generator.uniform(low, high) for _ in range(math.prod(shape))])
            names = heads_names if name == "transformer.wte.weight" else (name,)
            out += [Tensor(prefix + alias, "F32", list(shape), data) for alias in names]
        return out
    file = checkpoint("lstm", full=full)
    config = {"arch": "transformer", "vocab_size": len(vocab), "embed": E, "layers": L, "heads": NH, "context": C,
              "bias": bias, "dropout": 0.0, "lowercase": False, "ascii": False}
    file.metadata["config"] = json.dumps(config)
    file.tensors = tensors("", -0.3, 0.3)
    if full:
        file.tensors += tensors("optim.exp_avg.", -0.01, 0.01) + tensors("optim.exp_avg_sq.", 0.0, 0.01)
        file.metadata["optimizer"] = json.dumps({"type": "adamw", "step": 3, "lr": 0.002, "beta1": 0.9,
                                                 "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.1})
    assert head == [len(vocab), E]
    return file


def config_edit(key, value=None, remove=False, raw=None):
    """An edit of the config: `key` set to `value` (or removed), or the config's text replaced by `raw`."""
    def change(file):
        if raw is not None:
            file.metadata["config"] = raw
            return
        config = file.json("config")
        if remove:
            config.pop(key, None)
        else:
            config[key] = value
        file.metadata["config"] = json.dumps(config)
    return change


def json_edit(section, key, value=None, remove=False):
    def change(file):
        data = file.json(section)
        if remove:
            data.pop(key, None)
        else:
            data[key] = value
        file.metadata[section] = json.dumps(data)
    return change


def metadata_edit(key, text):
    def change(file):
        if text is None:
            file.metadata.pop(key, None)
        else:
            file.metadata[key] = text
    return change


# MARK: cases

@dataclass
class Case:
    kind: str
    data: bytes
    corpus: str                     # the corpus file that goes with the file (eval, train)
    commands: tuple = ()            # which commands run it; () means one, in rotation
    expect: str = "refused"         # refused, valid or either (a random edit may leave a usable file)
    says: str = None                # a part of the one-line message, in charlm's words
    check: object = None            # for valid runs: a function (command, stdout) -> problem or None
    path: str = None                # where the file was written (set when written)
    meta: bytes = None              # convert-nanogpt's meta.pkl (the file is then its ckpt.pt)


COMMANDS = ("logits", "eval", "generate", "train")
#: A file a hostile pickle would make in the folder the runs start in, were its code ever run.
PWNED = "PWNED"


def cases(folder, python):
    """Every hostile and valid case, with the corpora they go with (written into `folder`)."""
    text = os.path.join(folder, "text.txt")
    with open(text, "w") as f:
        f.write(TEXT * 40)
    tiny = os.path.join(SHELL_FIXTURES, "tiny.txt")
    out = []

    def add(kind, data, **options):
        out.append(Case(kind, data if isinstance(data, bytes) else data.serialized(), options.pop("corpus", text),
                        **options))

    # Valid files: the committed fixtures give the logits and greedy text PyTorch computed when they were made.
    for stem in ("torch-tiny", "torch-gru-tiny", "torch-rnn-tiny"):
        path = os.path.join(FIXTURES, stem + ".safetensors")
        with open(os.path.join(FIXTURES, stem + "-expected.json")) as f:
            expected = json.load(f)
        add(f"valid: fixture {stem}", read_file(path), commands=COMMANDS, expect="valid",
            check=fixture_check(expected))
    gru = read_file(os.path.join(FIXTURES, "torch-gru-tiny.safetensors"))
    with open(os.path.join(FIXTURES, "torch-gru-tiny-expected.json")) as f:
        gru_expected = json.load(f)
    add("valid: a GRU export without \"cell\" (its tensors name the module)",
        gru.edited(config_edit("cell", remove=True)), commands=("logits", "generate"), expect="valid",
        check=fixture_check(gru_expected))
    with open(os.path.join(SHELL_FIXTURES, "before-issue-12.safetensors"), "rb") as f:
        add("valid: charlm's checkpoint from before issue 12", f.read(), corpus=tiny, commands=COMMANDS, expect="valid")
    for cell in GATES:
        add(f"valid: a full {cell} checkpoint as charlm writes one", checkpoint(cell),
            commands=COMMANDS if cell == "lstm" else ("logits", "train"), expect="valid")
    valid = checkpoint("lstm")  # embed 6, hidden 12, 2 layers: the shapes charlm's own test names
    for dtype, pack in (("F16", lambda v: struct.pack(f"<{len(v)}e", *v)),
                        ("F64", lambda v: struct.pack(f"<{len(v)}d", *v)),
                        ("BF16", lambda v: b"".join(struct.pack("<f", x)[2:] for x in v))):
        def convert(file, dtype=dtype, pack=pack):
            for tensor in file.tensors:
                values = struct.unpack(f"<{len(tensor.data) // 4}f", tensor.data)
                tensor.dtype, tensor.data = dtype, pack(values)
        add(f"valid: every tensor {dtype} (charlm reads F32, F16, BF16, F64)", valid.edited(convert),
            commands=("logits", "train"), expect="valid")
    add("valid: an extra tensor charlm ignores", valid.edited(
        lambda file: file.tensors.append(Tensor("extra.weight", "F32", [2], f32([1, 2])))), expect="valid")
    legacy = valid.edited(json_edit("training", "validation_history", remove=True))
    legacy.metadata["settings"] = json.dumps({"validation_history": "1:nan,1:inf,9:2.0,1:1e308,-1:3,1:2.5"})
    add("valid: the old validation history in `settings`, read leniently", legacy, expect="valid")

    # charlm's eachKindOfDamageGetsItsOwnMessage: the format's damage, each with its own message.
    tensor = '"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
    eight = bytes(8)
    add("three bytes", bytes([1, 2, 3]),
        says="it is 3 bytes long; a safetensors file starts with an 8-byte header length")
    add("header length above the limit", bytes(3) + b"\x7f" + bytes(12), says="above the 100000000-byte limit")
    add("header length past the end", b"\xc8" + bytes(15),
        says="its header length 200 runs past the end of the file (16 bytes)")
    add("header not an object", raw_file("[1,2]"), says="its header does not start with '{'")
    add("header not JSON", raw_file('{"t":'), says="its header is not valid JSON")
    add("a tensor named twice", raw_file("{" + tensor + "," + tensor + "}", eight), says="duplicate key")
    add("unknown dtype", raw_file('{"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', eight),
        says="tensor 't' has unknown dtype 'F33'")
    add("data cut short", raw_file("{" + tensor + "}", bytes(4)),
        says="the tensors need 8 bytes of data but the file has 4 (truncated?)")
    add("shape and bytes disagree", raw_file('{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', eight),
        says="tensor 't' has shape [3] of F32 but 8 bytes of data")
    add("overlapping tensors", raw_file('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                        '"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', eight),
        says="tensor 'u' overlaps the tensor before it")
    add("a gap in the data", raw_file('{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', eight),
        says="the data has a gap before tensor 't' (bytes 0..<4)")
    add("a byte after the last tensor", raw_file("{" + tensor + "}", eight + b"\0"),
        says="the file has 1 bytes after the last tensor")
    add("negative shape", raw_file('{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', eight),
        says="no valid shape")
    add("no vocab", raw_file("{" + tensor + "}", eight), says="it has no `vocab` metadata")
    # ... and the model's: a real checkpoint's tensors with edited metadata.
    add("a character twice in the vocabulary", valid.edited(metadata_edit("vocab", '["a", "a"]')),
        says="lists the character 'a' twice")
    add("a vocabulary entry of two characters", valid.edited(metadata_edit("vocab", '["ab"]')),
        says="vocabulary entry 0 is not a one-character string")
    add("config hidden 13 over hidden-12 tensors", valid.edited(config_edit("hidden", 13)),
        says="has shape [48, 6]; config and vocab say [52, 6]")
    add("a model tensor missing", valid.edited(lambda f: f.tensors.remove(f.tensor("lstm.bias_hh_l1"))),
        says="tensor 'lstm.bias_hh_l1' is missing")
    nan_name = valid.tensors[3].name
    add("NaN in a weight", valid.edited(lambda f: set_f32(f.tensors[3], 2, math.nan)),
        says=f"tensor '{nan_name}' has NaN at element 2", commands=COMMANDS)
    add("-inf in the embedding", valid.edited(lambda f: set_f32(f.tensor("embedding.weight"), 0, -math.inf)),
        says="tensor 'embedding.weight' has an infinite value at element 0")
    add("an optimizer moment missing", valid.edited(lambda f: f.tensors.remove(f.tensor("optim.exp_avg.fc.bias"))),
        says="tensor 'optim.exp_avg.fc.bias' is missing")
    add("format version 9", valid.edited(metadata_edit("format_version", "9")),
        says="it is charlm format version 9; this charlm reads version 1")
    add("valid: the unedited checkpoint", valid, expect="valid")
    # The cell (charlm's cell tests): a name charlm does not know is quoted; a config naming one cell over another's
    # tensors says so; without the key, one cell's tensors decide and two cells' are ambiguous.
    add("cell \"GRU\"", valid.edited(config_edit("cell", "GRU")),
        says='config `cell` is "GRU"; charlm knows "lstm", "gru", "rnn"')
    add("cell 5", valid.edited(config_edit("cell", 5)), says="config `cell` is not a string")
    add("cell named with a control character", valid.edited(config_edit("cell", "gru\n\x1b[2J")),
        says='config `cell` is "gruU+AU+1B[2J"')
    add("cell gru over an LSTM's tensors", valid.edited(config_edit("cell", "gru")),
        says="the config says cell gru but the tensors are those of cell lstm (lstm.*)")
    add("valid: no cell key and an LSTM's tensors", valid.edited(config_edit("cell", remove=True)), expect="valid")

    def moments_renamed(file):
        config_edit("cell", remove=True)(file)
        for t in file.tensors:
            t.name = t.name.replace("optim.exp_avg.lstm.", "optim.exp_avg.gru.")
    add("no cell key, an LSTM's model tensors and a GRU's moments", valid.edited(moments_renamed),
        says="tensor 'optim.exp_avg.lstm.weight_ih_l0' is missing")

    def two_cells(file):
        config_edit("cell", remove=True)(file)
        file.tensors.append(Tensor("gru.weight_ih_l0", "F32", [1], f32([0])))
    add("no cell key and two cells' tensors", valid.edited(two_cells),
        says="it holds the tensors of several cells (lstm.*, gru.*)")
    add("a GRU's tensors under an LSTM's config", gru.edited(config_edit("cell", "lstm")),
        says="the config says cell lstm but the tensors are those of cell gru (gru.*)")
    add("an RNN named a GRU", read_file(os.path.join(FIXTURES, "torch-rnn-tiny.safetensors")).edited(
        config_edit("cell", "gru")), says="the tensors are those of cell rnn (rnn.*)")

    # charlm's aConfigFarLargerThanItsTensors...: 69 GB of model in a few hundred bytes, refused before allocating.
    tiny_tensor = Tensor("embedding.weight", "F32", [2, 4], f32([0.5] * 8))
    for layers in (16, 3):
        config = json.dumps({"embed": 8192, "hidden": 8192, "layers": layers, "lowercase": False, "ascii": False})
        add(f"config embed 8192, hidden 8192, {layers} layers over a (2, 4) tensor",
            File({"vocab": '["a", "b"]', "config": config}, [tiny_tensor]),
            says="tensor 'embedding.weight' has shape [2, 4]; config and vocab say [2, 8192]",
            commands=COMMANDS if layers == 16 else ())
    add("config embed 8192, hidden 8192, 16 layers and no tensors",
        File({"vocab": '["a", "b"]', "config": json.dumps({"embed": 8192, "hidden": 8192, "layers": 16,
                                                           "lowercase": False, "ascii": False})}, []),
        says="tensor 'embedding.weight' is missing")

    # charlm's countersHistoriesAndOptimizerSettingsAreCheckedAtLoad.
    limit = 1_000_000_000_000
    for section, key, value, says in (
            ("training", "step", 2**63 - 1, f"training `step` is {2**63 - 1}; charlm counts to at most {limit}"),
            ("training", "step", 2_000_000_000_000_000, "training `step` is 2000000000000000"),
            ("optimizer", "step", 2**63 - 1, f"optimizer `step` is {2**63 - 1}; charlm counts to at most {limit}"),
            ("optimizer", "beta1", 1.0, "its optimizer settings are unusable: beta1 and beta2"),
            ("optimizer", "eps", 0, "its optimizer settings are unusable"),
            ("optimizer", "beta2", 1e300, "optimizer `beta2` is not a number"),
            ("optimizer", "lr", "fast", "optimizer `lr` is not a number"),
            ("optimizer", "type", "sgd", "optimizer `type` is not adam or adamw: charlm's moments are Adam's"),
            ("training", "loss_history", {"a": 1}, "training `loss_history` is not a list"),
            ("training", "loss_history", [1.0] * 5, "training `loss_history` has 5 losses for 3 steps"),
            ("training", "loss_history", ["a"], "training `loss_history` holds something other than a finite number"),
            ("training", "validation_history", "1:2", "training `validation_history` is not a list"),
            ("training", "validation_history", [[5, 2.0]],
             "holds something other than [step, loss] pairs with a step from 0 to the training step (3)"),
            ("training", "validation_history", [[-1, 2.0]], "training `validation_history` holds"),
            ("training", "validation_history", [[1]], "training `validation_history` holds"),
            ("corpus", "characters", -5, "metadata `corpus` needs characters and fnv1a64"),
            ("corpus", "fnv1a64", "zz", "metadata `corpus` needs characters and fnv1a64"),
            # Training settings outside charlm's ranges.
            ("training", "seq", 0, "its training settings are unusable: seq must be a whole number from 1 to 10000"),
            ("training", "seq", 100_000, "seq must be a whole number from 1 to 10000; got '100000'"),
            ("training", "batch", 0, "batch must be a whole number from 1 to 4096"),
            ("training", "lr", 0, "lr must be a number above 0, at most 1; got '0'"),
            ("training", "lr", 2, "lr must be a number above 0, at most 1"),
            ("training", "clip", -1, "clip must be a number from 0 to 1000000; got '-1'"),
            ("training", "warmup", -1, "warmup must be a whole number from 0 to 10000000"),
            ("training", "decay", 10**8, "decay must be a whole number from 0 to 10000000"),
            ("training", "weight_decay", 11, "wd must be a number from 0 to 10; got '11'"),
            ("training", "generator", "xyz", "training `generator` is missing or not a valid generator state"),
            ("training", "val_fraction", 1.0, "training `val_fraction` must be >= 0 and < 1"),
            ("training", "step", -1, "training `step` is negative"),
            ("training", "step", "5", "training `step` is missing or not an integer"),
            ("training", "step", 10**30, "training `step` is missing or not an integer"),
            ("training", "seq", 10.0, "training `seq` is missing or not an integer"),
            ("sampling", "temperature", -1,
             "its sampling settings are unusable: temp must be a number from 0 to 100; got '-1'"),
            ("sampling", "top_k", 70_000, "topk must be a whole number from 0 to 65535"),
            ("sampling", "top_p", 0, "topp must be a number above 0, at most 1"),
            ("settings", "eval", 250, "setting `eval` is not a string")):
        add(f"{section} {key} {json.dumps(value)[:40]}", valid.edited(json_edit(section, key, value)), says=says)
    add("training lr 0.5 with weight decay 5", valid.edited(lambda f: (json_edit("training", "lr", 0.5)(f),
                                                                    json_edit("training", "weight_decay", 5)(f))),
        says="wd must be below 1/lr (2 with lr 0.5)")
    add("training without a generator", valid.edited(json_edit("training", "generator", remove=True)),
        says="training `generator` is missing")
    add("training not an object", valid.edited(metadata_edit("training", "[1]")),
        says="training `seq` is missing or not an integer")
    add("sampling without top_p", valid.edited(json_edit("sampling", "top_p", remove=True)),
        says="metadata `sampling` needs temperature, top_k and top_p")
    add("settings not an object", valid.edited(metadata_edit("settings", "[1]")),
        says="metadata `settings` is not a JSON object")
    add("optimizer tensors without optimizer metadata", valid.edited(metadata_edit("optimizer", None)),
        says="it has optimizer tensors but no valid `optimizer` metadata with a step count")
    add("a negative second moment", valid.edited(lambda f: set_f32(f.tensor("optim.exp_avg_sq.fc.bias"), 0, -1.0)),
        says="tensor 'optim.exp_avg_sq.fc.bias' has a negative value at element 0")
    add("NaN in a first moment", valid.edited(lambda f: set_f32(f.tensor("optim.exp_avg.fc.weight"), 7, math.nan)),
        says="tensor 'optim.exp_avg.fc.weight' has NaN at element 7")
    whole = valid.serialized()
    add("a checkpoint cut inside its header", whole[:500], says="its header length")

    # charlm's aVocabularyOfAMillionCopiesIsDescribedAsEntries, and the vocabulary's other damage.
    config = json.dumps({"embed": 2, "hidden": 2, "layers": 1, "lowercase": False, "ascii": False})
    add("a vocabulary of 70,000 copies", File({"vocab": json.dumps(["a"] * 70_000), "config": config}, []),
        says="its vocabulary is unusable: the vocabulary has 70000 entries; charlm supports at most 65,535")
    add("a vocabulary of 65,536 characters", File({"vocab": json.dumps([chr(0x10000 + i) for i in range(65_536)]),
                                                   "config": config}, []),
        says="the vocabulary has 65536 entries")
    for kind, vocab_text, says in (("not a list", '"abc"', "metadata `vocab` is not a JSON array"),
                             ("of numbers", "[1, 2]", "vocabulary entry 0 is not a one-character string"),
                             ("empty", "[]", "the vocabulary is empty"),
                             ("an unpaired surrogate", '["\\ud800"]', "unpaired surrogate"),
                             ("not JSON", "[", "metadata `vocab` is not valid JSON"),
                             ("nested 100 deep", "[" * 100 + "]" * 100, "nesting deeper than 64 levels")):
        add(f"vocab {kind}", valid.edited(metadata_edit("vocab", vocab_text)), says=says)
    add("vocab_size disagreeing with the vocabulary", valid.edited(config_edit("vocab_size", 99)),
        says="config says vocab_size 99 but `vocab` has 23 entries")

    # The config: duplicates, huge and non-finite numbers, types and ranges (the attack's config kinds).
    add("a key twice in the config", valid.edited(config_edit(
        None, raw='{"embed": 6, "embed": 600, "hidden": 12, "layers": 2, "lowercase": false, "ascii": false}')),
        says='metadata `config` is not valid JSON (duplicate key "embed")', commands=COMMANDS)
    add("a key twice in the training metadata", valid.edited(metadata_edit(
        "training", valid.metadata["training"].replace('"step": 3', '"step": 3, "step": 900'))),
        says='metadata `training` is not valid JSON (duplicate key "step")')
    config_text = valid.metadata["config"]
    for kind, replacement, says in (
            ("hidden 10**30", '"hidden": ' + "1" + "0" * 30, "config `hidden` is missing or not an integer"),
            ("hidden 2**63 - 1", f'"hidden": {2**63 - 1}',
             f"its config is unusable: hidden must be a whole number from 1 to 8192; got '{2**63 - 1}'"),
            ("hidden 1e400", '"hidden": 1e400', "number 1e400 is out of range"),
            ("hidden of 5000 digits", '"hidden": ' + "9" * 5000, "is out of range"),
            ("hidden NaN", '"hidden": NaN', "NaN is not a JSON number"),
            ("hidden -Infinity", '"hidden": -Infinity', "-Infinity is not a JSON number"),
            ("hidden \"12\"", '"hidden": "12"', "config `hidden` is missing or not an integer"),
            ("hidden 12.0", '"hidden": 12.0', "config `hidden` is missing or not an integer"),
            ("hidden true", '"hidden": true', "config `hidden` is missing or not an integer"),
            ("hidden 0", '"hidden": 0', "hidden must be a whole number from 1 to 8192; got '0'"),
            ("hidden 8193", '"hidden": 8193', "hidden must be a whole number from 1 to 8192; got '8193'")):
        add(f"config {kind}", valid.edited(config_edit(None, raw=config_text.replace('"hidden": 12', replacement))),
            says=says, commands=COMMANDS if kind == "hidden 10**30" else ())
    for key, value, says in (("layers", 0, "layers must be a whole number from 1 to 16"),
                             ("layers", 17, "layers must be a whole number from 1 to 16; got '17'"),
                             ("embed", 8193, "embed must be a whole number from 1 to 8192"),
                             ("dropout", 1.0, "dropout must be a number from 0 up to but not including 1; got '1'"),
                             ("dropout", -0.1, "dropout must be a number from 0 up to but not including 1"),
                             ("dropout", "x", "config `dropout` is not a number"),
                             ("lowercase", "no", "config `lowercase` is missing or not true/false")):
        add(f"config {key} {json.dumps(value)}", valid.edited(config_edit(key, value)), says=says)
    add("config without ascii", valid.edited(config_edit("ascii", remove=True)),
        says="config `ascii` is missing or not true/false")
    add("config not an object", valid.edited(metadata_edit("config", "[1]")), says="it has no `config` metadata")
    add("config nested 50,000 deep", valid.edited(metadata_edit("config", "[" * 50_000 + "]" * 50_000)),
        says="metadata `config` is not valid JSON (nesting deeper than 64 levels)")

    # The header: nesting, duplicates, numbers, descriptions, encodings (the attack's header kinds).
    add("header nested 100,000 deep", raw_file('{"a":' + "[" * 100_000 + "]" * 100_000 + "}"),
        says="its header is not valid JSON (nesting deeper than 64 levels)", commands=COMMANDS)
    add("header nested 65 deep", raw_file('{"a":' + "[" * 64 + "]" * 64 + "}"), says="nesting deeper than 64 levels")
    add("a metadata key twice", raw_file('{"__metadata__":{"vocab":"[\\"a\\"]","vocab":"[\\"b\\"]"}}'),
        says='its header is not valid JSON (duplicate key "vocab")')
    add("__metadata__ twice", raw_file('{"__metadata__":{},"__metadata__":{}}'),
        says='duplicate key "__metadata__"')
    add("a metadata value that is not a string", raw_file('{"__metadata__":{"vocab":["a"]}}'),
        says="metadata `vocab` is not a string")
    add("__metadata__ not an object", raw_file('{"__metadata__":[1]}'), says="`__metadata__` is not a JSON object")
    add("a tensor described by a list", raw_file('{"t":[1]}'), says="tensor 't' is not described by a JSON object")
    add("a tensor without dtype", raw_file('{"t":{"shape":[0],"data_offsets":[0,0]}}'), says="tensor 't' has no dtype")
    add("data_offsets backwards", raw_file('{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', eight),
        says="has no valid data_offsets")
    add("one data offset", raw_file('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', eight),
        says="has no valid data_offsets")
    add("a data offset of 2**64", raw_file('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,%d]}}' % 2**64, eight),
        says="has no valid data_offsets")
    add("a dimension of 10**30", raw_file('{"t":{"dtype":"F32","shape":[%d],"data_offsets":[0,8]}}' % 10**30, eight),
        says="has no valid shape")
    add("a shape of 2**80 elements", raw_file('{"t":{"dtype":"F32","shape":[%d,%d],"data_offsets":[0,8]}}'
                                              % (2**40, 2**40), eight), says="has a shape too large to exist")
    add("a shape of true", raw_file('{"t":{"dtype":"F32","shape":[true,2],"data_offsets":[0,8]}}', eight),
        says="has no valid shape")
    add("a header that is not UTF-8", raw_file(b'{"t\xff":1}'), says="its header is not valid UTF-8")
    add("a one-byte header", raw_file("{"), says="its header does not start with '{'")
    add("an empty file", b"", says="it is 0 bytes long")
    add("a header length of 2**63", struct.pack("<Q", 2**63) + b"{}", says="is above the 100000000-byte limit")
    add("a header length of 99,999,999 in a short file", struct.pack("<Q", 99_999_999) + b"{}",
        says="its header length 99999999 runs past the end of the file (10 bytes)")
    add("a tensor name with a line break and an escape",
        raw_file('{"evil\\n\\u001b[2Jname":{"dtype":"X","shape":[0],"data_offsets":[0,0]}}'),
        says="tensor 'evilU+AU+1B[2Jname' has unknown dtype 'X'")
    add("a tensor name of a million characters",
        raw_file('{"' + "n" * 1_000_000 + '":{"dtype":"X","shape":[0],"data_offsets":[0,0]}}'), says="…")

    # Many tensors: a million tiny ones is refused before its header is parsed; 15,000 after.
    def many(count):
        entries = ",".join(f'"t{i}":{{"dtype":"F32","shape":[1],"data_offsets":[{4 * i},{4 * i + 4}]}}'
                           for i in range(count))
        return raw_file("{" + entries + "}", bytes(4 * count))
    add("1,200,000 tiny tensors", many(1_200_000), says="its header opens 1200001 JSON objects", commands=COMMANDS)
    add("15,000 tiny tensors", many(15_000), says="its header describes 15000 tensors")
    add("valid: 20,005 braces inside a metadata string are not objects",
        checkpoint().edited(metadata_edit("note", "{" * 20_005 + '\\"{')), commands=("logits",), expect="valid")

    # Tensor values and dtypes.
    def with_dtype(name, dtype, pack):
        def change(file):
            t = file.tensor(name)
            values = struct.unpack(f"<{len(t.data) // 4}f", t.data)
            t.dtype, t.data = dtype, pack(values)
        return change
    add("a model tensor of I64", valid.edited(with_dtype("fc.bias", "I64", lambda v: bytes(8 * len(v)))),
        says="tensor 'fc.bias' has dtype I64; charlm reads F32, F16, BF16 and F64")
    add("a model tensor of BOOL", valid.edited(with_dtype("fc.bias", "BOOL", lambda v: bytes(len(v)))),
        says="has dtype BOOL")
    add("a model tensor of F8_E4M3", valid.edited(with_dtype("fc.bias", "F8_E4M3", lambda v: bytes(len(v)))),
        says="has dtype F8_E4M3")
    add("F16 infinity", valid.edited(lambda f: (with_dtype("fc.bias", "F16", lambda v: struct.pack(
        f"<{len(v)}e", *([math.inf] + list(v[1:]))))(f))), says="tensor 'fc.bias' has an infinite value at element 0")
    add("BF16 NaN", valid.edited(with_dtype("fc.bias", "BF16", lambda v: b"\xc0\x7f" + bytes(2 * len(v) - 2))),
        says="tensor 'fc.bias' has NaN at element 0")
    add("F64 beyond float32", valid.edited(with_dtype("fc.bias", "F64", lambda v: struct.pack(
        f"<{len(v)}d", *([1e300] + list(v[1:]))))), says="tensor 'fc.bias' has an infinite value at element 0")

    # Settings that imply more memory than any machine has: refused before the model is made (train).
    wide = [chr(0x4E00 + i) for i in range(2000)]
    wide_text = os.path.join(folder, "wide.txt")
    with open(wide_text, "w") as f:
        f.write("".join(wide) * 56)
    huge_run = checkpoint("lstm", E=2, H=2, L=1, vocab=wide).edited(
        lambda f: (json_edit("training", "seq", 10_000)(f), json_edit("training", "batch", 4096)(f),
                   json_edit("corpus", "characters", 112_000)(f)))
    add("seq 10,000 and batch 4,096 over 2,000 characters (330 GB of logits)", huge_run, corpus=wide_text,
        commands=("train",), says="of memory")
    add("seq 10,000 over a 3,400-character corpus", valid.edited(json_edit("training", "seq", 10_000)),
        commands=("train",), says="it needs at least seq+1 = 10001")

    transformer_cases(add)
    nanogpt_cases(add, folder, python)

    # Truncations and random edits (charlm's everyTruncationAndThousandsOfRandomEdits..., a sample of each).
    small = checkpoint("lstm", H=3).serialized()
    length = struct.unpack("<Q", small[:8])[0]
    for cut in (0, 7, 8, 9, 200, 7 + length, 8 + length, 9 + length, 8 + length + 100, len(small) - 1):
        add(f"cut to {cut} of {len(small)} bytes", small[:cut], says=None)
    generator = random.Random(2024)
    for index in range(12):
        edited = bytearray(small)
        for _ in range(1 + generator.randrange(3)):
            spot = generator.randrange(8 + length) if generator.randrange(2) == 0 else generator.randrange(len(small))
            edited[spot] = generator.randrange(256)
        add(f"random edit {index + 1}", bytes(edited), expect="either")
    digits = [i for i in range(8, 8 + length) if 0x30 <= small[i] <= 0x39]
    for index in range(6):
        edited = bytearray(small)
        edited[generator.choice(digits)] = 0x30 + generator.randrange(10)
        add(f"header digit edit {index + 1}", bytes(edited), expect="either")
    return out


def transformer_cases(add):
    """The transformer's files (charlm's TransformerConfig.read and the tied head), valid and damaged."""
    valid = transformer_checkpoint()
    add("valid: a full transformer checkpoint as charlm writes one", valid, commands=COMMANDS, expect="valid")
    add("valid: a transformer with bias, its head under lm_head.weight only",
        transformer_checkpoint(bias=True, heads_names=("lm_head.weight",)), commands=COMMANDS, expect="valid")
    add("valid: a transformer model only, its head under transformer.wte.weight only",
        transformer_checkpoint(heads_names=("transformer.wte.weight",), full=False), commands=("logits", "train"),
        expect="valid")

    def differ(file):
        set_f32(file.tensor("lm_head.weight"), 5, 0.25)
    add("a transformer whose tied head differs from its embedding", valid.edited(differ),
        says="tensors 'transformer.wte.weight' and 'lm_head.weight' are one tied tensor but differ", commands=COMMANDS)
    add("a transformer whose tied moments differ", valid.edited(
        lambda f: set_f32(f.tensor("optim.exp_avg.lm_head.weight"), 0, 0.5)),
        says="tensors 'optim.exp_avg.transformer.wte.weight' and 'optim.exp_avg.lm_head.weight' are one tied tensor")
    add("a transformer without its head", valid.edited(lambda f: [f.tensors.remove(f.tensor(n)) for n in (
        "transformer.wte.weight", "lm_head.weight")]), says="tensor 'transformer.wte.weight' is missing")
    add("a transformer with NaN in wpe", valid.edited(lambda f: set_f32(f.tensor("transformer.wpe.weight"), 3, math.nan)),
        says="tensor 'transformer.wpe.weight' has NaN at element 3")
    for key, value, says in (
            ("arch", "Transformer", 'config `arch` is "Transformer"; charlm knows "transformer", "lstm", "gru", "rnn"'),
            ("arch", 7, "config `arch` is not a string"),
            ("heads", 3, "heads must be a divisor of embed (8), as each head takes an equal share of the embedding; "
                         "got '3'"),
            ("heads", 0, "heads must be a whole number from 1 to 256; got '0'"),
            ("context", 10_001, "context must be a whole number from 1 to 10000; got '10001'"),
            ("context", 20, "tensor 'transformer.wpe.weight' has shape [12, 8]; config and vocab say [20, 8]"),
            ("embed", 8192, "has shape [23, 8]; config and vocab say [23, 8192]"),
            ("layers", 16, "tensor 'transformer.h.2.ln_1.weight' is missing"),
            ("bias", True, "the config says bias on but the file has no biases (was it trained with bias off?)"),
            ("bias", "off", "config `bias` is missing or not true/false"),
            ("context", 12.5, "config `context` is missing or not an integer")):
        add(f"transformer config {key} {json.dumps(value)}", valid.edited(config_edit(key, value)), says=says)
    add("transformer config without heads", valid.edited(config_edit("heads", remove=True)),
        says="config `heads` is missing or not an integer")
    add("transformer training seq 20 over context 12", valid.edited(json_edit("training", "seq", 20)),
        commands=("train",), says="seq 20 is longer than the model's context 12")


#: Run with the python that has torch: nanoGPT checkpoints with one thing wrong each (convert-nanogpt's cases).
#: argv: FOLDER. Writes FOLDER/ckpt-KIND.pt for each kind, from a valid ckpt.pt made by nanogpt_interop.py.
NANOGPT_VARIANTS = r"""
import copy, math, os, sys, torch
folder = sys.argv[1]
base = torch.load(os.path.join(folder, "ckpt.pt"), weights_only=True)
def variant(kind, change):
    ckpt = copy.deepcopy(base)
    change(ckpt)
    torch.save(ckpt, os.path.join(folder, f"ckpt-{kind}.pt"))
model = lambda c: c["model"]
variant("huge-embed", lambda c: c["model_args"].update(n_embd=100_000))
variant("layers-3", lambda c: c["model_args"].update(n_layer=3))
variant("heads-3", lambda c: c["model_args"].update(n_head=3))
variant("no-model-args", lambda c: c.pop("model_args"))
variant("nan", lambda c: c["model"]["_orig_mod.transformer.h.1.mlp.c_fc.weight"].view(-1).__setitem__(4, math.nan))
variant("wrong-shape", lambda c: c["model"].__setitem__("_orig_mod.transformer.wpe.weight", torch.zeros(30, 16)))
variant("untied", lambda c: c["model"].__setitem__("_orig_mod.lm_head.weight", torch.zeros(30, 16)))
variant("vocab-31", lambda c: c["model_args"].update(vocab_size=31))
variant("no-optimizer", lambda c: c.pop("optimizer"))
variant("three-groups", lambda c: c["optimizer"]["param_groups"].append(
    dict(c["optimizer"]["param_groups"][1], params=[])))
variant("negative-moment", lambda c: c["optimizer"]["state"][0]["exp_avg_sq"].view(-1).__setitem__(0, -1.0))
variant("beta2-1", lambda c: [g.update(betas=(0.9, 1.0)) for g in c["optimizer"]["param_groups"]])
variant("uncompiled", lambda c: c.update(model={k[len("_orig_mod."):]: v for k, v in c["model"].items()}))
torch.save(torch.zeros(3), os.path.join(folder, "ckpt-tensor.pt"))
"""


def nanogpt_cases(add, folder, python):
    """convert-nanogpt's inputs: nanoGPT's ckpt.pt and meta.pkl made by Tests/python/nanogpt_interop.py, and
    variants each with one thing wrong; pickles that would run code (neither may: no PWNED file may appear)."""
    import pickle
    made = os.path.join(folder, "nanogpt")
    os.makedirs(made, exist_ok=True)
    interop = os.path.join(ROOT, "Tests", "python", "nanogpt_interop.py")
    for argv in ([interop, "make-ckpt", made], ["-c", NANOGPT_VARIANTS, made]):
        subprocess.run([python, *argv], check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1"))

    def read(name):
        with open(os.path.join(made, name), "rb") as f:
            return f.read()
    ckpt, meta = read("ckpt.pt"), read("meta.pkl")
    itos = pickle.loads(meta)["itos"]

    def convert(kind, ckpt_bytes, meta_bytes, **options):
        add(kind, ckpt_bytes, meta=meta_bytes, commands=("convert",), **options)
    convert("valid: nanoGPT's ckpt.pt and meta.pkl", ckpt, meta, expect="valid")
    convert("valid: an uncompiled model's ckpt.pt", read("ckpt-uncompiled.pt"), meta, expect="valid")
    add("an output naming the ckpt.pt itself", ckpt, meta=meta, commands=("convert over its ckpt.pt",),
        says="is one of the files being converted: name a new file to write")
    add("an output naming an existing text", ckpt, meta=meta, commands=("convert over a text",),
        says="exists and is not a safetensors checkpoint, so it is not replaced")
    convert("valid: a ckpt.pt without optimizer", read("ckpt-no-optimizer.pt"), meta, expect="valid")
    convert("valid: an optimizer in three groups (left out)", read("ckpt-three-groups.pt"), meta, expect="valid")

    class Payload:  # a pickle that, were it unpickled blindly, would make the PWNED file
        def __init__(self, name):
            self.name = name

        def __reduce__(self):
            return (os.system, (f"touch {PWNED}-{self.name}",))
    convert("a ckpt.pt that is a pickle running a command", pickle.dumps({"model": Payload("ckpt")}), meta,
            says="torch.load(weights_only=True) refused it")
    convert("a meta.pkl running a command", ckpt, pickle.dumps({"itos": Payload("meta")}),
            says="it cannot be unpickled as plain data")
    convert("a ckpt.pt cut in half", ckpt[:len(ckpt) // 2], meta, says="torch.load(weights_only=True) refused it")
    convert("a ckpt.pt of random bytes", bytes(random.Random(5).randrange(256) for _ in range(5000)), meta,
            says="is not a usable nanoGPT checkpoint")
    convert("a ckpt.pt holding a tensor", read("ckpt-tensor.pt"), meta, says="it holds a Tensor, not the dict")
    convert("a meta.pkl of GPT-2's tokens (no itos)", ckpt, pickle.dumps({"vocab_size": 50257}),
            says="it has no `itos` dict")
    convert("a meta.pkl listing a character twice", ckpt, pickle.dumps({"itos": {**itos, 1: itos[0]}}),
            says="`itos` lists a character twice")
    convert("a meta.pkl with a gap in itos", ckpt, pickle.dumps({"itos": {i + 1: c for i, c in itos.items()}}),
            says="`itos` is not keyed by the indices 0 to")
    convert("a meta.pkl of 31 characters for a 30-character model", ckpt,
            pickle.dumps({"itos": {**itos, 30: "é"}}), says="model_args vocab_size is 30 but the meta.pkl has 31")
    convert("a meta.pkl whose stoi disagrees", ckpt, pickle.dumps({"itos": itos, "stoi": {"a": 0}}),
            says="`stoi` is not the inverse of `itos`")
    convert("a meta.pkl that is not a pickle", ckpt, b"\x80\x05garbage", says="it cannot be unpickled as plain data")
    for kind, says in (("huge-embed", "charlm cannot hold its model: embed must be a whole number from 1 to 8192"),
                       ("layers-3", "tensor 'transformer.h.2.ln_1.weight' is missing from its state_dict"),
                       ("heads-3", "model_args n_head 3 does not divide n_embd 16"),
                       ("no-model-args", "it has no `model_args` dict"),
                       ("nan", "tensor 'transformer.h.1.mlp.c_fc.weight' has a non-finite value at element 4"),
                       ("wrong-shape", "tensor 'transformer.wpe.weight' has shape [30, 16]; model_args and meta.pkl "
                                       "say [24, 16]"),
                       ("untied", "tensors 'transformer.wte.weight' and 'lm_head.weight' are one tied tensor but "
                                  "differ"),
                       ("vocab-31", "model_args vocab_size is 31 but the meta.pkl has 30"),
                       ("negative-moment", "exp_avg_sq of transformer.wte.weight' has a non-finite or negative value"),
                       ("beta2-1", "its optimizer settings are unusable")):
        convert(f"a ckpt.pt with {kind}", read(f"ckpt-{kind}.pt"), meta, says=says)


def fixture_check(expected):
    """For a committed fixture: the logits within 1e-5 of those it was made with, the greedy text the same."""
    def check(command, stdout):
        if command == "logits":
            logits = json.loads(stdout)["logits"]
            worst = max(abs(a - b) for a, b in zip(logits, expected["logits"]))
            if len(logits) != len(expected["logits"]) or worst > 1e-5:
                return f"logits differ from the fixture's by {worst}"
        if command == "generate" and stdout != expected["prompt"] + expected["greedy"]:
            return f"greedy text {stdout!r}, the fixture's {expected['prompt'] + expected['greedy']!r}"
        return None
    return check


# MARK: running

def arguments(command, case, folder):
    model = ["--model", case.path]
    if command == "logits":
        return ["logits", *model, "--prompt", PROMPT]
    if command == "eval":
        return ["eval", *model, "--corpus", case.corpus, "--seq", "10", "--batch", "4"]
    if command == "generate":
        return ["generate", *model, "--prompt", PROMPT, "--length", "40"]
    if command == "convert":
        return ["convert-nanogpt", case.path, case.path + ".meta.pkl", case.path + ".out.safetensors"]
    if command == "convert over its ckpt.pt":  # refused, or the nanoGPT checkpoint would be lost
        return ["convert-nanogpt", case.path, case.path + ".meta.pkl", case.path]
    if command == "convert over a text":  # refused, or the text would be lost
        notes = case.path + ".notes.txt"
        with open(notes, "w") as f:
            f.write("keep me\n")
        return ["convert-nanogpt", case.path, case.path + ".meta.pkl", notes]
    return ["train", "--corpus", case.corpus, "--init-from", case.path, "--steps", "1", "--eval-every", "1",
            "--seq", "10", "--batch", "4", "--threads", "1", "--save", case.path + ".trained"]


@dataclass
class Outcome:
    case: Case
    command: str
    problems: list = field(default_factory=list)
    seconds: float = 0.0
    refused: bool = False
    said: str = ""          # the last line on stderr
    peak_bytes: int = 0     # the run's largest resident memory


def run_measured(argv, time_limit, **options):
    """Runs argv to the end and returns (status, stdout, stderr, peak resident bytes); raises
    subprocess.TimeoutExpired after killing it when it takes longer than time_limit. The peak is this child's own
    (os.wait4's rusage), where getrusage(RUSAGE_CHILDREN) gives only the largest of all children so far."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
    output = {}
    readers = [threading.Thread(target=lambda name=name, pipe=pipe: output.__setitem__(name, pipe.read()))
               for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr))]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + time_limit
    timed_out = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if not timed_out and time.monotonic() > deadline:
            process.kill()
            timed_out = True
        time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    for reader in readers:
        reader.join()
    process.stdout.close()
    process.stderr.close()
    if timed_out:
        raise subprocess.TimeoutExpired(argv, time_limit)
    return process.returncode, output.get("stdout", b""), output.get("stderr", b""), usage.ru_maxrss * 1024


def run(python, case, command, folder, time_limit):
    """Runs one case through the entry point and says what was wrong with the run, if anything."""
    outcome = Outcome(case, command)
    began = time.monotonic()
    try:
        status, stdout, stderr, outcome.peak_bytes = run_measured(
            [python, SCRIPT, *arguments(command, case, folder)], time_limit, cwd=folder,
            env=dict(os.environ, OMP_NUM_THREADS="1"))
    except subprocess.TimeoutExpired:
        outcome.problems.append(f"did not finish within {time_limit} s")
        return outcome
    finally:
        outcome.seconds = time.monotonic() - began
    if outcome.peak_bytes > MAXIMUM_RSS_BYTES:
        outcome.problems.append(f"reached {outcome.peak_bytes / 1e9:.2f} GB of memory "
                                f"(at most {MAXIMUM_RSS_BYTES / 1e9:.0f} GB)")
    result = subprocess.CompletedProcess([], status)
    stdout = stdout.decode("utf-8", "replace")
    stderr = stderr.decode("utf-8", "replace")
    if "Traceback" in stdout + stderr:
        outcome.problems.append("printed a traceback: " + (stderr.strip().splitlines() or [""])[-1][:200])
    refused = result.returncode == 1 and stderr.startswith(ERROR)
    outcome.refused = refused
    outcome.said = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if refused:
        if stderr.count("\n") != 1 or not stderr.endswith("\n"):
            outcome.problems.append(f"refused in {stderr.count(chr(10))} lines: {stderr[:300]!r}")
        if case.says and case.says not in stderr:
            outcome.problems.append(f"refused without saying {case.says!r}: {stderr.strip()[:300]!r}")
    if case.expect == "refused" and not refused:
        outcome.problems.append(f"status {result.returncode}, not refused in one line: {stderr.strip()[-300:]!r}")
    elif case.expect == "valid":
        if result.returncode != 0:
            outcome.problems.append(f"a valid file failed, status {result.returncode}: {stderr.strip()[-300:]!r}")
        elif case.check:
            found = case.check(command, stdout)
            if found:
                outcome.problems.append(found)
    elif case.expect == "either" and result.returncode != 0 and not refused:
        outcome.problems.append(f"status {result.returncode}: {stderr.strip()[-300:]!r}")
    return outcome


def missing_torch_runs(python, folder):
    """Without torch (python -I -S leaves site-packages out), --help and a command say in one line how to install
    it. Returns the problems, or None when torch imports even so."""
    probe = subprocess.run([python, "-I", "-S", "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        return None
    problems = []
    for argv in (["--help"], ["logits", "--model", "x.safetensors", "--prompt", "a"]):
        result = subprocess.run([python, "-I", "-S", SCRIPT, *argv], capture_output=True, text=True, cwd=folder)
        if (result.returncode != 1 or result.stderr.count("\n") != 1 or "Traceback" in result.stderr
                or "python3 -m pip install torch numpy safetensors" not in result.stderr):
            problems.append(f"without torch, {' '.join(argv)}: status {result.returncode}, {result.stderr[-300:]!r}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="the python that runs the reference (needs torch)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds one run may take (a busy machine's)")
    parser.add_argument("--only", help="run only the cases whose kind contains this text")
    parser.add_argument("--keep", help="write the files into this folder and keep them")
    parser.add_argument("--verbose", action="store_true", help="a line for every run: status, time, what it said")
    args = parser.parse_args()

    folder = args.keep or tempfile.mkdtemp(prefix="charlm-hostile-")
    os.makedirs(folder, exist_ok=True)
    try:
        chosen = [case for case in cases(folder, args.python) if not args.only or args.only in case.kind]
        runs = []
        for index, case in enumerate(chosen):
            # convert-nanogpt's ckpt.pt must be named .pt: torch.load reads a .safetensors name as safetensors.
            case.path = os.path.join(folder, f"case-{index:03d}" + (".pt" if case.meta else ".safetensors"))
            with open(case.path, "wb") as f:
                f.write(case.data)
            if case.meta is not None:
                with open(case.path + ".meta.pkl", "wb") as f:
                    f.write(case.meta)
            case.data = case.meta = None
            runs += [(case, command) for command in (case.commands or (COMMANDS[index % len(COMMANDS)],))]
        files = len(chosen)
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda item: run(args.python, item[0], item[1], folder, args.time_limit), runs))
        problems = [f"{o.case.kind} [{o.command}]: {p}" for o in outcomes for p in o.problems]
        without_torch = missing_torch_runs(args.python, folder) if not args.only else []
        problems += without_torch or []
        problems += [f"a pickle ran code: {name} appeared" for name in os.listdir(folder) if name.startswith(PWNED)]
        largest = max(outcomes, key=lambda o: o.peak_bytes)
        peak = largest.peak_bytes
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    refused = sum(o.refused for o in outcomes)
    failed = {id(o) for o in outcomes if o.problems}
    slowest = max(outcomes, key=lambda o: o.seconds)
    if args.verbose:
        for o in outcomes:
            print(f"{'FAIL' if o.problems else 'ok  '} {o.seconds:5.1f}s {o.peak_bytes / 1e6:5.0f} MB {o.case.kind} "
                  f"[{o.command}]: {o.said[:160]}")
    for problem in problems:
        print("FAILED " + problem)
    print(f"{files} files, {len(outcomes)} runs in {time.monotonic() - began:.0f} s: {refused} refused in one line, "
          f"{len(outcomes) - refused} ran; slowest {slowest.seconds:.1f} s ({slowest.case.kind} [{slowest.command}]); "
          f"largest run {peak / 1e6:.0f} MB ({largest.case.kind} [{largest.command}]); without torch: "
          + ("not checked (--only)" if args.only else "skipped (torch imports even with -I -S)" if without_torch is None
             else "one line, as it should"))
    extra = len(problems) - sum(len(o.problems) for o in outcomes)
    print(f"hostile: {len(outcomes) - len(failed)} passed, {len(failed) + extra} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
