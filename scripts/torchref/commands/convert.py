"""The `convert-nanogpt` command: a checkpoint of karpathy/nanoGPT's train.py (`out/ckpt.pt`: model_args, the model's
state_dict, iter_num, the optimizer's state_dict, config) and its dataset's `meta.pkl` (the character vocabulary of
data/shakespeare_char/prepare.py: stoi, itos, vocab_size) into charlm's file: the transformer's tensors under their
state_dict names (the `_orig_mod.` prefix of a compiled model stripped), config and vocabulary, Adam's moments and step
when the optimizer is in nanoGPT's two groups, and the training settings charlm resumes with when `config` has them.

What is trusted: nothing in either file. ckpt.pt is read with torch.load(weights_only=True), PyTorch's unpickler
that makes tensors and plain containers and refuses every other object, so a crafted pickle cannot run code; meta.pkl
is read by an unpickler that refuses every class, so it yields only dicts, lists, strings and numbers. Every value is
then checked as charlm checks its own files (sizes within charlm's ranges and the memory, shapes, finite values,
Adam's settings), and the file written is read back as charlm reads it before the command reports success."""
import json
import math
import os
import pickle
import random
import stat
import warnings

import torch

from .. import memory
from ..checkpoint import writer
from ..checkpoint_reading import OPTIMIZER_PREFIX, names_of, read_checkpoint, transformer_shapes
from ..errors import CommandError, visible
from ..settings import MAXIMUM_STEP, MAXIMUM_VOCABULARY, TRANSFORMER, is_integer, is_number, problem, training_problem

#: A character-level meta.pkl is a few kilobytes; one past this is not one.
MAXIMUM_META_BYTES = 50_000_000
#: nanoGPT's model_args, and charlm's name for each size.
MODEL_ARGS = (("n_embd", "embed"), ("n_layer", "layers"), ("n_head", "heads"), ("block_size", "context"))
COMPILED_PREFIX = "_orig_mod."


def arguments(parser):
    parser.add_argument("ckpt", help="nanoGPT's checkpoint (out/ckpt.pt)")
    parser.add_argument("meta", help="its dataset's meta.pkl (stoi, itos): a character vocabulary")
    parser.add_argument("out", help="the charlm file to write (.safetensors)")


class _Problem(CommandError):
    """A problem of one input file, named with it."""

    def __init__(self, path, kind, problem):
        super().__init__(f"'{visible(path, limit=None)}' is not a usable {kind}: {problem}")


def check_replaceable(out, inputs):
    """Refuses an output that is one of the inputs, or an existing non-empty file that is not a safetensors file:
    the conversion replaces only a checkpoint (never the nanoGPT checkpoint itself, a text, anything else)."""
    shown = visible(out, limit=None)
    if os.path.isdir(out):
        raise CommandError(f"'{shown}' is a directory: name the file to write")
    if not os.path.exists(out):
        return
    for path in inputs:
        if os.path.exists(path) and os.path.samefile(out, path):
            raise CommandError(f"'{shown}' is one of the files being converted: name a new file to write")
    try:
        with open(out, "rb") as f:
            start = f.read(9)
        size = os.path.getsize(out)
    except OSError:
        return  # what cannot be read is said when it is written
    if size > 0 and not (len(start) == 9 and start[8:9] == b"{" and int.from_bytes(start[:8], "little") <= size - 8):
        raise CommandError(f"'{shown}' exists and is not a safetensors checkpoint, so it is not replaced: name a new "
                           f"file, or remove that one first")


def convert_nanogpt(args):
    check_replaceable(args.out, (args.ckpt, args.meta))
    save_file = writer()  # a missing safetensors is said before the work
    vocab = read_meta(args.meta)
    checkpoint = read_ckpt(args.ckpt)

    def bad(problem):
        return _Problem(args.ckpt, "nanoGPT checkpoint", problem)

    if not isinstance(checkpoint, dict):
        raise bad(f"it holds a {type(checkpoint).__name__}, not the dict nanoGPT's train.py saves")
    config = model_config(checkpoint.get("model_args"), len(vocab), bad)
    V, E, L, C, bias = len(vocab), config["embed"], config["layers"], config["context"], config["bias"]
    memory.check(3 * memory.transformer_model_bytes(V, E, L, C, bias),
                 f"a transformer of E {E}, L {L}, context {C}, V {V}", "it needs a machine with more memory")
    shapes = transformer_shapes(V, E, L, C, bias)
    notes = []
    model = model_tensors(checkpoint.get("model"), shapes, bad, notes)
    tensors = {alias: tensor.clone() for name, tensor in model.items() for alias in names_of(name)}
    metadata = {"format": "charlm", "format_version": "1", "vocab": json.dumps(vocab), "config": json.dumps(config)}
    optimizer = optimizer_state(checkpoint.get("optimizer"), shapes, bad, notes)
    if optimizer is not None:
        meta, exp_avg, exp_avg_sq = optimizer
        for moment, values in (("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
            tensors.update({f"{OPTIMIZER_PREFIX}{moment}.{alias}": tensor.clone()
                            for name, tensor in values.items() for alias in names_of(name)})
        metadata["optimizer"] = json.dumps(meta)
    iteration = checkpoint.get("iter_num")
    training = training_settings(checkpoint.get("config"), iteration, config, notes)
    if training is not None:
        metadata["training"] = json.dumps(training)
    save_file(tensors, args.out, metadata=metadata)
    read_checkpoint(args.out)  # what was written is what charlm reads
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {args.out}: transformer, E {E}, L {L}, heads {config['heads']}, context {C}, V {V}"
          + (", bias" if bias else "") + (f", AdamW at step {optimizer[0]['step']}" if optimizer else ", no optimizer")
          + (f", training step {training['step']}" if training else ""))


def regular_file_size(path, kind):
    """The size of the regular file at `path`, or a CommandError naming it."""
    shown = visible(path, limit=None)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CommandError(f"no such file '{shown}': check the path") from None
    except OSError as error:
        raise CommandError(f"cannot read '{shown}': {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CommandError(f"'{shown}' is not a regular file: name the {kind}")
    return info.st_size


def read_ckpt(path):
    """The checkpoint's contents by torch.load(weights_only=True) onto the CPU, once four times its size fits."""
    size = regular_file_size(path, "nanoGPT checkpoint (out/ckpt.pt)")
    memory.check(4 * size, f"reading the {memory.format_bytes(size)} file '{visible(path, limit=None)}'",
                 "it needs a machine with more memory")
    try:
        with warnings.catch_warnings():  # torch warns of pickle protocols it did not write; the outcome is said below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _Problem(path, "nanoGPT checkpoint", "torch.load(weights_only=True) refused it: it holds objects other "
                       "than tensors and plain data (what a pickle that runs code holds; nothing was run)") from None
    except Exception as error:  # a damaged zip or pickle fails in many ways, each said in one line
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise _Problem(path, "nanoGPT checkpoint", f"torch.load(weights_only=True) refused it "
                       f"({visible(first, limit=120)})") from None


class _DataOnly(pickle.Unpickler):
    """An unpickler that makes no object of any class: dicts, lists, tuples, strings and numbers only."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it asks for {module}.{name}; a meta.pkl holds only dicts, strings and numbers")


def read_meta(path):
    """The vocabulary of nanoGPT's character meta.pkl, in index order: itos's characters for 0..V-1, checked against
    stoi and vocab_size when present."""
    def bad(problem):
        return _Problem(path, "nanoGPT meta.pkl", problem)
    size = regular_file_size(path, "meta.pkl")
    if size > MAXIMUM_META_BYTES:
        raise bad(f"it is {memory.format_bytes(size)}; a character vocabulary's meta.pkl is a few kilobytes")
    try:
        with open(path, "rb") as f:
            meta = _DataOnly(f).load()
    except OSError as error:
        raise CommandError(f"cannot read '{visible(path, limit=None)}': {error.strerror or error}") from None
    except Exception as error:  # any damage to a pickle, said in one line
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise bad(f"it cannot be unpickled as plain data ({visible(first, limit=120)})") from None
    if not isinstance(meta, dict):
        raise bad(f"it holds a {type(meta).__name__}, not the dict of stoi, itos and vocab_size prepare.py writes")
    itos = meta.get("itos")
    if not isinstance(itos, dict):
        raise bad("it has no `itos` dict: convert-nanogpt takes a character vocabulary (nanoGPT's "
                  "data/shakespeare_char/prepare.py), not GPT-2's tokens")
    count = len(itos)
    if not 1 <= count <= MAXIMUM_VOCABULARY:
        raise bad(f"its vocabulary has {count} entries; charlm supports 1 to {MAXIMUM_VOCABULARY:,}")
    if sorted(key for key in itos if is_integer(key)) != list(range(count)):
        raise bad(f"`itos` is not keyed by the indices 0 to {count - 1}")
    vocab = [itos[index] for index in range(count)]
    for index, character in enumerate(vocab):
        if not isinstance(character, str) or len(character) != 1 or 0xD800 <= ord(character) <= 0xDFFF:
            raise bad(f"`itos` entry {index} is not one character")
    if len(set(vocab)) != count:
        raise bad("`itos` lists a character twice")
    stoi = meta.get("stoi")
    if stoi is not None and stoi != {character: index for index, character in enumerate(vocab)}:
        raise bad("`stoi` is not the inverse of `itos`")
    size = meta.get("vocab_size", count)
    if size != count:
        raise bad(f"vocab_size is {visible(str(size), 20)} but `itos` has {count} characters")
    return vocab


def model_config(model_args, vocab_size, bad):
    """charlm's transformer config from nanoGPT's model_args: n_embd, n_layer, n_head, block_size, bias, dropout as
    embed, layers, heads, context, bias, dropout, each within charlm's range; vocab_size must be the meta.pkl's."""
    if not isinstance(model_args, dict):
        raise bad("it has no `model_args` dict (nanoGPT's n_layer, n_head, n_embd, block_size, bias, vocab_size)")
    config = {"arch": TRANSFORMER, "vocab_size": vocab_size}
    for key, name in MODEL_ARGS:
        value = model_args.get(key)
        if not is_integer(value):
            raise bad(f"model_args `{key}` is missing or not an integer")
        found = problem(name, value)
        if found:
            raise bad(f"charlm cannot hold its model: {found} (model_args `{key}`)")
        config[name] = value
    if config["embed"] % config["heads"]:
        raise bad(f"model_args n_head {config['heads']} does not divide n_embd {config['embed']}")
    if not isinstance(model_args.get("bias"), bool):
        raise bad("model_args `bias` is missing or not true/false")
    dropout = model_args.get("dropout", 0.0)
    if not is_number(dropout) or problem("dropout", dropout):
        raise bad("model_args `dropout` is not a number from 0 up to but not including 1")
    if model_args.get("vocab_size") != vocab_size:
        raise bad(f"model_args vocab_size is {visible(str(model_args.get('vocab_size')), 20)} but the meta.pkl has "
                  f"{vocab_size} characters: give the meta.pkl of the dataset it was trained on")
    config.update(bias=model_args["bias"], dropout=float(dropout), lowercase=False, ascii=False)
    return config


def finite_float(tensor, name, shape, bad, non_negative=False):
    """`tensor` as float32 once it is a floating tensor of `shape` with finite values (and none negative)."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise bad(f"`{visible(name)}` is not a floating-point tensor")
    if list(tensor.shape) != shape:
        raise bad(f"tensor '{visible(name)}' has shape {list(tensor.shape)}; model_args and meta.pkl say {shape}")
    values = tensor.detach().float().contiguous()
    wrong = ~torch.isfinite(values.reshape(-1))
    if non_negative:
        wrong |= values.reshape(-1) < 0
    if bool(wrong.any()):
        index = int(wrong.nonzero()[0])
        raise bad(f"tensor '{visible(name)}' has a non-finite{' or negative' if non_negative else ''} value at "
                  f"element {index}")
    return values


def model_tensors(state_dict, shapes, bad, notes):
    """The model's tensors by charlm's names from nanoGPT's state_dict (`_orig_mod.` stripped): every one present
    with its shape and finite, the head equal to the token embedding; the attention's causal-mask buffers (`.attn.bias`
    of the non-flash path) and anything else left out with a note."""
    if not isinstance(state_dict, dict) or not all(isinstance(key, str) for key in state_dict):
        raise bad("it has no `model` state_dict")
    stripped = {}
    for key, value in state_dict.items():
        name = key[len(COMPILED_PREFIX):] if key.startswith(COMPILED_PREFIX) else key
        if name in stripped:
            raise bad(f"its state_dict has '{visible(name)}' both with and without the {COMPILED_PREFIX} prefix")
        stripped[name] = value
    tensors = {}
    for name, shape in shapes.items():
        present = [alias for alias in names_of(name) if alias in stripped]
        if not present:
            raise bad(f"tensor '{visible(name)}' is missing from its state_dict")
        tensors[name] = finite_float(stripped[present[0]], present[0], shape, bad)
        for alias in present[1:]:
            other = stripped[alias]
            if not isinstance(other, torch.Tensor) or list(other.shape) != shape or not torch.equal(
                    other.detach().float(), tensors[name]):
                raise bad(f"tensors '{present[0]}' and '{alias}' are one tied tensor but differ")
    known = {alias for name in shapes for alias in names_of(name)}
    masks = [name for name in stripped if name.endswith(".attn.bias") and name not in known]
    ignored = sorted(name for name in stripped if name not in known and name not in masks)
    if ignored:
        notes.append("left out tensors charlm does not use: " + ", ".join(visible(n) for n in ignored[:5])
                     + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else ""))
    return tensors


def optimizer_state(saved, shapes, bad, notes):
    """(optimizer metadata, exp_avg, exp_avg_sq by name) from nanoGPT's AdamW state_dict, or None with a note when
    there is none or it is not in configure_optimizers' two groups (every 2+-dimensional tensor decayed, the rest
    not, each in named_parameters order). Parameter ids run through the groups in order, as PyTorch numbers them."""
    if saved is None:
        notes.append("the checkpoint has no optimizer state: charlm starts a fresh AdamW")
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) or not isinstance(
            saved.get("param_groups"), list):
        raise bad("its `optimizer` is not an optimizer state_dict (state, param_groups)")
    groups = saved["param_groups"]
    decayed = [name for name, shape in shapes.items() if len(shape) >= 2]
    plain = [name for name, shape in shapes.items() if len(shape) < 2]
    if len(groups) != 2 or not all(isinstance(group, dict) and isinstance(group.get("params"), list)
                                   for group in groups) \
            or [len(group["params"]) for group in groups] != [len(decayed), len(plain)]:
        notes.append("the optimizer is not in nanoGPT's two groups (decayed matrices, the rest): its state is left "
                     "out and charlm starts a fresh AdamW")
        return None
    names = dict(zip(groups[0]["params"] + groups[1]["params"], decayed + plain))
    first, second, steps = {}, {}, set()
    for index, name in names.items():
        state = saved["state"].get(index)
        if not isinstance(state, dict) or not {"step", "exp_avg", "exp_avg_sq"} <= set(state):
            notes.append(f"the optimizer has no moments for '{name}': its state is left out and charlm starts a "
                         "fresh AdamW")
            return None
        step = state["step"]
        step = step.item() if isinstance(step, torch.Tensor) and step.numel() == 1 else step
        if not is_number(step) or step != int(step) or not 0 <= step <= MAXIMUM_STEP:
            raise bad(f"the optimizer's step for '{name}' is not a count from 0 to {MAXIMUM_STEP}")
        steps.add(int(step))
        first[name] = finite_float(state["exp_avg"], f"exp_avg of {name}", shapes[name], bad)
        second[name] = finite_float(state["exp_avg_sq"], f"exp_avg_sq of {name}", shapes[name], bad,
                                    non_negative=True)
    if len(steps) != 1:
        raise bad(f"the optimizer's parameters have different step counts ({', '.join(map(str, sorted(steps)))})")
    group = groups[0]
    betas = group.get("betas")
    values = {"lr": group.get("lr"), "beta1": betas[0] if isinstance(betas, (list, tuple)) and len(betas) == 2 else None,
              "beta2": betas[1] if isinstance(betas, (list, tuple)) and len(betas) == 2 else None,
              "eps": group.get("eps"), "weight_decay": group.get("weight_decay")}
    values = {key: value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
              for key, value in values.items()}
    if not all(is_number(value) for value in values.values()) or not (
            0 <= values["beta1"] < 1 and 0 <= values["beta2"] < 1 and 0 < values["eps"] <= 1 and values["lr"] > 0
            and 0 <= values["weight_decay"] <= 10) or groups[1].get("weight_decay") != 0:
        raise bad("its optimizer settings are unusable: charlm takes beta1 and beta2 from 0 up to but not including "
                  "1, eps above 0 and at most 1, lr above 0, weight_decay from 0 to 10 on the first group and 0 on "
                  "the second")
    meta = dict(type="adamw", step=steps.pop(), **{key: float(value) for key, value in values.items()})
    return meta, first, second


def training_settings(config, iteration, model, notes):
    """The `training` metadata charlm resumes with, from train.py's `config` and iter_num: seq block_size, batch
    batch_size x gradient_accumulation_steps (the global batch), lr learning_rate, clip grad_clip, warmup and decay
    warmup_iters and lr_decay_iters when decay_lr, wd weight_decay, the step iter_num; None with a note when they are
    missing or outside charlm's ranges. charlm's schedule ends at lr/10, nanoGPT's at min_lr: a note says when they
    differ."""
    if not isinstance(config, dict) or not is_integer(iteration) or not 0 <= iteration <= MAXIMUM_STEP:
        notes.append("the checkpoint has no train.py `config` and iter_num: the file holds no training settings "
                     "(charlm uses its own)")
        return None
    try:
        decay = bool(config["decay_lr"])
        settings = {"seq": min(config["block_size"], model["context"]),
                    "batch": config["batch_size"] * config["gradient_accumulation_steps"],
                    "lr": float(config["learning_rate"]), "clip": float(config["grad_clip"]),
                    "warmup": config["warmup_iters"] if decay else 0, "decay": config["lr_decay_iters"] if decay else 0,
                    "weight_decay": float(config["weight_decay"])}
    except (KeyError, TypeError, ValueError):
        settings = None
    found = "a setting is missing or not a number" if settings is None else training_problem(settings)
    if found:
        notes.append(f"train.py's settings do not fit charlm's ({found}): the file holds no training settings")
        return None
    if decay and is_number(config.get("min_lr")) and not math.isclose(config["min_lr"], settings["lr"] / 10):
        notes.append(f"nanoGPT decays to min_lr {config['min_lr']:g}; charlm's schedule ends at lr/10 "
                     f"({settings['lr'] / 10:g})")
    generator = random.Random(iteration)
    return dict(settings, val_fraction=0.1, step=iteration, epoch=0.0,
                # charlm's batch generator (four xoshiro words): a fresh state.
                generator="".join(f"{generator.getrandbits(64) | 1:016x}" for _ in range(4)),
                loss_history=[], validation_history=[])
