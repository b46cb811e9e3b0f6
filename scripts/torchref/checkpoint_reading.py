"""Reading a charlm checkpoint as if the file were hostile, as charlm reads it (Sources/CharLM/Files/SafeTensors.swift
and CheckpointReading.swift), in charlm's words: every number of the safetensors header is checked before it is used;
the metadata is strict JSON (strict_json.py); the vocabulary, the config's sizes and its cell are what charlm accepts
(settings.py); every model tensor is present with the shape that the config and the vocabulary give before any tensor
is made, and the memory the model needs is asked for then; values are finite; Adam's moments and the optimizer,
training, sampling, corpus and settings metadata are what charlm would resume from. The first problem found is a
CheckpointError naming the file; a file that is missing or too large for the memory is a CommandError.

Both families are read: the recurrent (lstm, gru, rnn; charlm's RecurrentConfig.read) and the transformer (config
"arch": "transformer"; TransformerConfig.read), whose tied head may be in the file as `transformer.wte.weight`, as
`lm_head.weight` or as both (equal), for the model and for each of Adam's moments. Tensors that are neither the
model's nor its moments are ignored with a note, as charlm ignores them. Writing files is checkpoint.py's."""
import math
import os
import re
import stat
from collections import namedtuple
from dataclasses import dataclass

import torch

from . import memory, strict_json
from .errors import CheckpointError, CommandError, abbreviated, visible
from .settings import (CELLS, GATES, MAXIMUM_STEP, MAXIMUM_VOCABULARY, TRANSFORMER, float32, is_integer, is_number,
                       problem, shown, training_problem)

#: The largest header accepted (the reference implementation's limit, and charlm's).
MAXIMUM_HEADER_LENGTH = 100_000_000
#: The most tensors a header may describe. A recurrent model has at most 67 (16 layers), 201 with Adam's moments;
#: parsing millions of tiny entries would take Python minutes, so a header opening more objects than twice this
#: (braces inside metadata strings count too) is refused before it is parsed.
MAXIMUM_TENSORS = 10_000
#: The most dimensions a tensor may have (SafeTensorsFile.maximumDimensions).
MAXIMUM_DIMENSIONS = 8
OPTIMIZER_PREFIX = "optim."
MOMENTS = ("exp_avg", "exp_avg_sq")
#: A tied tensor's other names: nanoGPT's head is its token embedding, and its state_dict holds it under both.
TIED = {"transformer.wte.weight": ("lm_head.weight",)}
_INT64_MAX = 2**63 - 1

#: Bytes per element of every dtype the format defines.
ELEMENT_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
                 "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}
#: The dtypes charlm reads, each made float32 as charlm makes it (exactly, but F64 rounded to nearest).
READABLE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}

Entry = namedtuple("Entry", "name dtype shape begin end")
Entry.__doc__ = "One tensor a header describes: dtype, shape, and its bytes [begin, end) in the data."


@dataclass
class Checkpoint:
    """A checked charlm file, every part of it usable as it is."""
    vocab: list          # one-character strings, in index order
    config: dict         # the file's config: embed, hidden, layers, lowercase, ascii (and dropout, cell, vocab_size);
                         # a transformer's: arch, embed, layers, heads, context, bias, lowercase, ascii (and dropout, ...)
    cell: str            # lstm, gru or rnn: the config's "cell"; absent, the tensors' module name; else lstm;
                         # "transformer" for a transformer
    model: dict          # the model's tensors by state_dict name, float32 (a tied tensor once, under its own name)
    exp_avg: dict        # Adam's moments by model tensor name; empty when the file has none
    exp_avg_sq: dict
    optimizer: dict      # the `optimizer` metadata (step, lr, beta1, beta2, eps, weight_decay); None without moments
    training: dict       # the `training` metadata, or None
    passthrough: dict    # `sampling`, `settings`, `corpus` (None when absent), to be written back as they came
    notes: list          # what a user should hear: tensors ignored


def read_checkpoint(path):
    """The checked contents of the charlm checkpoint at `path`."""
    data = read_bytes(path)
    metadata, entries, start = parse_header(data, path)
    return _Reader(path, data, metadata, entries, start).checkpoint()


def read_bytes(path):
    """The bytes of the regular file at `path`, once five times its size (the bytes, the tensors made from them, the
    model) is known to fit in memory."""
    shown = visible(path, limit=None)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise CommandError(f"'{shown}' is a directory: name a checkpoint file")
        if not stat.S_ISREG(info.st_mode):
            raise CommandError(f"'{shown}' is not a regular file: name a checkpoint file")
        memory.check(5 * info.st_size, f"reading the {memory.format_bytes(info.st_size)} file '{shown}'",
                     "it needs a machine with more memory")
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CommandError(f"no such file '{shown}': check the path") from None
    except OSError as error:
        raise CommandError(f"cannot read '{shown}': {error.strerror or error}") from None


def parse_header(data, path):
    """The `__metadata__` (string -> string) and the tensors' entries (by name) of safetensors bytes, and the offset
    where their data starts: every check of charlm's SafeTensorsFile.parse, in its order and words."""
    def bad(problem):
        return CheckpointError(path, problem)
    if len(data) < 8:
        raise bad(f"it is {len(data)} bytes long; a safetensors file starts with an 8-byte header length")
    length = int.from_bytes(data[:8], "little")
    if length > MAXIMUM_HEADER_LENGTH:
        raise bad(f"its header length {length} is above the {MAXIMUM_HEADER_LENGTH}-byte limit")
    start = 8 + length
    if start > len(data):
        raise bad(f"its header length {length} runs past the end of the file ({len(data)} bytes)")
    if length < 2 or data[8] != ord("{"):
        raise bad("its header does not start with '{'")
    # A pathological header (millions of tiny arrays or keys) takes some 40 times its size while parsed.
    memory.check(40 * length, f"parsing a {length}-byte checkpoint header", "this file's header is unusually large")
    raw = memoryview(data)[8:start]
    # Braces inside strings (a name may hold them) are not objects: they are taken off, one string at a time, only
    # when the braces alone pass the limit (re.sub's copy of a header of 1.2 million objects took 1.2 GB).
    objects = data.count(b"{", 8, start)
    if objects > 2 * MAXIMUM_TENSORS:
        objects -= sum(match.group().count(b"{") for match in re.finditer(rb'"(?:[^"\\]|\\.)*"', raw))
    if objects > 2 * MAXIMUM_TENSORS:
        raise bad(f"its header opens {objects} JSON objects; a charlm checkpoint describes at most "
                  f"{MAXIMUM_TENSORS} tensors, one object each")
    try:
        text = str(raw, "utf-8")
    except UnicodeDecodeError:
        raise bad("its header is not valid UTF-8") from None
    try:
        header = strict_json.parse(text)
    except strict_json.JSONError as error:
        raise bad(f"its header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    described = len(header) - ("__metadata__" in header)
    if described > MAXIMUM_TENSORS:
        raise bad(f"its header describes {described} tensors; a charlm checkpoint has at most {MAXIMUM_TENSORS}")

    metadata, entries = {}, []
    for name, value in header.items():
        if name == "__metadata__":
            if not isinstance(value, dict):
                raise bad("`__metadata__` is not a JSON object")
            for key, item in value.items():
                if not isinstance(item, str):
                    raise bad(f"metadata `{visible(key)}` is not a string")
                metadata[key] = item
            continue
        shown = visible(name)
        if not isinstance(value, dict):
            raise bad(f"tensor '{shown}' is not described by a JSON object")
        dtype = value.get("dtype")
        if not isinstance(dtype, str):
            raise bad(f"tensor '{shown}' has no dtype")
        size = ELEMENT_SIZES.get(dtype)
        if size is None:
            raise bad(f"tensor '{shown}' has unknown dtype '{visible(dtype)}'")
        shape = _non_negative_integers(value.get("shape"))
        if shape is None:
            raise bad(f"tensor '{shown}' has no valid shape (a list of non-negative integers)")
        if len(shape) > MAXIMUM_DIMENSIONS:
            raise bad(f"tensor '{shown}' has {len(shape)} dimensions; charlm reads at most {MAXIMUM_DIMENSIONS}")
        offsets = _non_negative_integers(value.get("data_offsets"))
        if offsets is None or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise bad(f"tensor '{shown}' has no valid data_offsets (two non-negative integers, begin <= end)")
        count = 1
        for dimension in shape:
            count *= dimension
            if count > _INT64_MAX:
                raise bad(f"tensor '{shown}' has a shape too large to exist")
        if count * size > _INT64_MAX or count * size != offsets[1] - offsets[0]:
            raise bad(f"tensor '{shown}' has shape {_shape_text(shape)} of {dtype} but {offsets[1] - offsets[0]} "
                      "bytes of data")
        entries.append(Entry(name, dtype, shape, offsets[0], offsets[1]))

    # The tensors must tile the data exactly: no gap, no overlap, nothing after the last.
    data_length = len(data) - start
    entries.sort(key=lambda entry: (entry.begin, entry.end, entry.name))
    covered = 0
    for entry in entries:
        if entry.begin > covered:
            raise bad(f"the data has a gap before tensor '{visible(entry.name)}' (bytes {covered}..<{entry.begin})")
        if entry.begin < covered:
            raise bad(f"tensor '{visible(entry.name)}' overlaps the tensor before it")
        covered = entry.end
    if covered > data_length:
        raise bad(f"the tensors need {covered} bytes of data but the file has {data_length} (truncated?)")
    if covered < data_length:
        raise bad(f"the file has {data_length - covered} bytes after the last tensor")
    for entry in entries:
        if entry.dtype not in READABLE:
            raise bad(f"tensor '{visible(entry.name)}' has dtype {entry.dtype}; charlm reads F32, F16, BF16 and F64")
    return metadata, {entry.name: entry for entry in entries}, start


def _non_negative_integers(value):
    """A JSON array of non-negative integers (no fractions, no booleans) as a list, or None."""
    if not isinstance(value, list) or not all(is_integer(item) and item >= 0 for item in value):
        return None
    return value


def _shape_text(shape):
    return abbreviated(str(shape), 60)


def model_shapes(cell, V, E, H, L):
    """The model's tensors in state_dict order, name -> shape (charlm's RecurrentLayout table): embedding.weight
    (V, E); per layer k <cell>.weight_ih_lk (G*H, E or H), weight_hh_lk (G*H, H), bias_ih_lk and bias_hh_lk (G*H);
    fc.weight (V, H), fc.bias (V); G is the cell's gate count."""
    rows = GATES[cell] * H
    shapes = {"embedding.weight": [V, E]}
    for k in range(L):
        shapes[f"{cell}.weight_ih_l{k}"] = [rows, E if k == 0 else H]
        shapes[f"{cell}.weight_hh_l{k}"] = [rows, H]
        shapes[f"{cell}.bias_ih_l{k}"] = [rows]
        shapes[f"{cell}.bias_hh_l{k}"] = [rows]
    shapes["fc.weight"] = [V, H]
    shapes["fc.bias"] = [V]
    return shapes


def transformer_shapes(V, E, L, C, bias):
    """nanoGPT's GPT in state_dict order, name -> shape (charlm's TransformerLayout table): transformer.wte.weight
    (V, E), the head tied to it (TIED); transformer.wpe.weight (C, E); per block i transformer.h.{i}.ln_1 (E),
    attn.c_attn (3E, E), attn.c_proj (E, E), ln_2 (E), mlp.c_fc (4E, E), mlp.c_proj (E, 4E); transformer.ln_f (E);
    each `.bias` only with `bias` (LayerNorms (E), linears their rows)."""
    shapes = {"transformer.wte.weight": [V, E], "transformer.wpe.weight": [C, E]}

    def add(name, weight):
        shapes[name + ".weight"] = weight
        if bias:
            shapes[name + ".bias"] = weight[:1]
    for i in range(L):
        block = f"transformer.h.{i}."
        add(block + "ln_1", [E])
        add(block + "attn.c_attn", [3 * E, E])
        add(block + "attn.c_proj", [E, E])
        add(block + "ln_2", [E])
        add(block + "mlp.c_fc", [4 * E, E])
        add(block + "mlp.c_proj", [E, 4 * E])
    add("transformer.ln_f", [E])
    return shapes


def names_of(name):
    """The names a tensor may have in a file: its own, then its tied aliases."""
    return (name,) + TIED.get(name, ())


def _character(c):
    """A vocabulary character as charlm quotes it: 'a', '\\n', "'", 'U+7'."""
    named = {"\n": "'\\n'", "\t": "'\\t'", "\r": "'\\r'", "'": "\"'\""}
    return named.get(c) or f"'{visible(c)}'"


class _Reader:
    """One file being read, section by section (charlm's CheckpointReader), each step checking every value before
    anything is made from it."""

    def __init__(self, path, data, metadata, entries, start):
        self.path = path
        self.data = data
        self.metadata = metadata
        self.entries = entries
        self.start = start
        self.notes = []

    def bad(self, problem):
        return CheckpointError(self.path, problem)

    def checkpoint(self):
        vocab = self.vocabulary()
        config = self.config()
        if self.is_transformer():
            cell = TRANSFORMER
            E, L, NH, C, bias = self.transformer_architecture(len(vocab))
            shapes = transformer_shapes(len(vocab), E, L, C, bias)
            self.check_present(shapes, "", cell)
            memory.check(memory.transformer_model_bytes(len(vocab), E, L, C, bias),
                         f"a transformer of E {E}, L {L}, context {C}, V {len(vocab)}", "it needs a machine with more memory")
        else:
            cell, E, H, L = self.architecture(len(vocab))
            shapes = model_shapes(cell, len(vocab), E, H, L)
            self.check_present(shapes, "", cell)
            memory.check(memory.model_bytes(cell, len(vocab), E, H, L), f"a model of E {E}, H {H}, L {L}, V {len(vocab)}",
                         "it needs a machine with more memory")
        model = self.values(shapes, "")
        self.check_format_version()
        optimizer, exp_avg, exp_avg_sq = self.optimizer(shapes)
        self.note_ignored_tensors(shapes)
        training = self.training()
        passthrough = {"sampling": self.sampling(), "settings": self.settings(), "corpus": self.corpus()}
        return Checkpoint(vocab, config, cell, model, exp_avg, exp_avg_sq, optimizer, training, passthrough,
                          self.notes)

    def json(self, key):
        """The metadata entry `key` as JSON, or None when absent."""
        text = self.metadata.get(key)
        if text is None:
            return None
        try:
            return strict_json.parse(text)
        except strict_json.JSONError as error:
            raise self.bad(f"metadata `{key}` is not valid JSON ({error})") from None

    # vocab and config

    def config(self):
        """The config object (whose lowercase and ascii belong to the vocabulary)."""
        config = self.json("config")
        if not isinstance(config, dict):
            raise self.bad("it has no `config` metadata (a JSON object with embed, hidden, layers, lowercase, ascii)")
        return config

    def vocabulary(self):
        vocab = self.json("vocab")
        if vocab is None:
            raise self.bad("it has no `vocab` metadata (a JSON array of one-character strings in index order)")
        if not isinstance(vocab, list):
            raise self.bad("metadata `vocab` is not a JSON array")
        for index, entry in enumerate(vocab):
            if not isinstance(entry, str) or len(entry) != 1:
                raise self.bad(f"vocabulary entry {index} is not a one-character string")
        config = self.config()
        for key in ("lowercase", "ascii"):
            if not isinstance(config.get(key), bool):
                raise self.bad(f"config `{key}` is missing or not true/false")
        if not vocab:
            raise self.bad("its vocabulary is unusable: the vocabulary is empty: it needs at least one character")
        if len(vocab) > MAXIMUM_VOCABULARY:
            raise self.bad(f"its vocabulary is unusable: the vocabulary has {len(vocab)} entries; charlm supports at "
                           f"most {MAXIMUM_VOCABULARY:,}")
        if len(set(vocab)) != len(vocab):
            seen = set()
            twice = next(c for c in vocab if c in seen or seen.add(c))
            raise self.bad(f"its vocabulary is unusable: the vocabulary lists the character {_character(twice)} twice")
        if "vocab_size" in config and config["vocab_size"] != len(vocab):
            size = config["vocab_size"]
            raise self.bad(f"config says vocab_size {size if is_integer(size) else '?'} but `vocab` has {len(vocab)} "
                           "entries")
        return vocab

    def is_transformer(self):
        """Whether the config's `arch` names the transformer; an `arch` that names neither family is refused (a cell's
        name as `arch` is the recurrent family's)."""
        config = self.config()
        if "arch" not in config:
            return False
        arch = config["arch"]
        if isinstance(arch, str) and arch in CELLS:
            return False
        if arch != TRANSFORMER:
            found = f'"{visible(arch, 20)}"' if isinstance(arch, str) else "not a string"
            known = ", ".join(f'"{name}"' for name in (TRANSFORMER,) + CELLS)
            raise self.bad(f"config `arch` is {found}; charlm knows {known}")
        return True

    def transformer_architecture(self, vocabulary_size):
        """E, L, NH, C and bias of a transformer's config (TransformerConfig.read, its order and words), each within
        its setting's range and the heads dividing embed."""
        config = self.config()
        if not isinstance(config.get("bias"), bool):
            raise self.bad("config `bias` is missing or not true/false")
        for key in ("embed", "layers", "heads", "context"):
            if not is_integer(config.get(key)):
                raise self.bad(f"config `{key}` is missing or not an integer")
        if "dropout" in config and not is_number(config["dropout"]):
            raise self.bad("config `dropout` is not a number")
        for key in ("embed", "layers", "heads", "context", "dropout"):
            value = float32(config.get(key, 0)) if key == "dropout" else config[key]
            found = problem(key, value, shown(value))
            if found:
                raise self.bad(f"its config is unusable: {found}")
        E, NH = config["embed"], config["heads"]
        if E % NH:
            raise self.bad(f"its config is unusable: heads must be a divisor of embed ({E}), as each head takes an "
                           f"equal share of the embedding; got '{NH}'")
        return E, config["layers"], NH, config["context"], config["bias"]

    def architecture(self, vocabulary_size):
        """The cell and the sizes E, H, L of the config (RecurrentConfig.read), each within its setting's range."""
        config = self.config()
        if "dropout" in config and not is_number(config["dropout"]):
            raise self.bad("config `dropout` is not a number")
        known = ", ".join(f'"{cell}"' for cell in CELLS)
        if "cell" in config:
            cell = config["cell"]
            if not isinstance(cell, str) or cell not in CELLS:
                found = f'"{visible(cell, 20)}"' if isinstance(cell, str) else "not a string"
                raise self.bad(f"config `cell` is {found}; charlm knows {known}")
        else:
            # Files from before cells had a name are LSTMs; a PyTorch export without the key names its module.
            present = [cell for cell in CELLS if f"{cell}.weight_ih_l0" in self.entries]
            if len(present) > 1:
                raise self.bad(f"it holds the tensors of several cells ({', '.join(c + '.*' for c in present)}) and "
                               f"its config does not say which it is: add \"cell\" ({known}) to `config`")
            cell = present[0] if present else "lstm"
        for key in ("embed", "hidden", "layers"):
            if not is_integer(config.get(key)):
                raise self.bad(f"config `{key}` is missing or not an integer")
        for key in ("embed", "hidden", "layers", "dropout"):
            value = float32(config.get(key, 0)) if key == "dropout" else config[key]
            found = problem(key, value, shown(value))
            if found:
                raise self.bad(f"its config is unusable: {found}")
        return cell, config["embed"], config["hidden"], config["layers"]

    # tensors

    def check_present(self, shapes, prefix, cell):
        """Every tensor of `shapes` under `prefix` is in the file with its shape: checked before any is made, so what
        is made is no larger than the data the file holds, whatever its config claims."""
        for name, shape in shapes.items():
            entries = self.present(name, prefix)
            if not entries:
                raise self.bad(f"tensor '{visible(prefix + name)}' is missing" + ("" if prefix else self.hint(cell)))
            # A tied alias of another shape is a tensor that differs (values() says so), as in charlm.
            entry = entries[0]
            if entry.shape != shape:
                raise self.bad(f"tensor '{visible(entry.name)}' has shape {_shape_text(entry.shape)}; config and "
                               f"vocab say {_shape_text(shape)}")

    def present(self, name, prefix):
        """The entries under `prefix` of tensor `name` and of its tied aliases that the file holds."""
        return [self.entries[prefix + n] for n in names_of(name) if prefix + n in self.entries]

    def hint(self, cell):
        """What to add when a model tensor is missing: the file holds another cell's tensors, or a transformer
        with bias on has no biases."""
        if cell == TRANSFORMER:
            if self.config().get("bias") is True and "transformer.ln_f.bias" not in self.entries:
                return "; the config says bias on but the file has no biases (was it trained with bias off?)"
            return ""
        other = next((c for c in CELLS if c != cell and f"{c}.weight_ih_l0" in self.entries), None)
        return f"; the config says cell {cell} but the tensors are those of cell {other} ({other}.*)" if other else ""

    def values(self, shapes, prefix, non_negative=False):
        """The tensors of `shapes` under `prefix` (checked present) by name without it, float32, each finite (and
        not negative, for Adam's second moment)."""
        tensors = {}
        for name in shapes:
            entry, *tied = self.present(name, prefix)
            tensor = self.tensor(entry)
            for other in tied:
                if other.shape != entry.shape or not torch.equal(self.tensor(other), tensor):
                    raise self.bad(f"tensors '{visible(entry.name)}' and '{visible(other.name)}' are one tied tensor "
                                   "but differ")
            flat = tensor.reshape(-1)
            wrong = ~torch.isfinite(flat)
            if non_negative:
                wrong |= flat < 0
            if bool(wrong.any()):
                index = int(wrong.nonzero()[0])
                value = float(flat[index])
                what = "NaN" if math.isnan(value) else "an infinite value" if math.isinf(value) else "a negative value"
                raise self.bad(f"tensor '{visible(entry.name)}' has {what} at element {index}")
            tensors[name] = tensor
        return tensors

    def tensor(self, entry):
        """The values of `entry` as a float32 tensor of its shape. Little-endian, as the format is and as every
        machine PyTorch runs on is."""
        raw = bytearray(memoryview(self.data)[self.start + entry.begin:self.start + entry.end])  # aligned, writable
        if not raw:
            return torch.zeros(entry.shape)
        return torch.frombuffer(raw, dtype=READABLE[entry.dtype]).reshape(entry.shape).float()

    def note_ignored_tensors(self, shapes):
        names = {alias for name in shapes for alias in names_of(name)}
        known = names | {f"{OPTIMIZER_PREFIX}{moment}.{name}" for moment in MOMENTS for name in names}
        ignored = sorted(name for name in self.entries if name not in known)
        if ignored:
            listed = ", ".join(visible(name) for name in ignored[:5]) + (f" and {len(ignored) - 5} more"
                                                                        if len(ignored) > 5 else "")
            self.notes.append(f"ignored tensors charlm does not use: {listed}")

    # format

    def check_format_version(self):
        version = self.metadata.get("format_version")
        if self.metadata.get("format") == "charlm" and version is not None and version != "1":
            raise self.bad(f"it is charlm format version {visible(version)}; this charlm reads version 1")

    # optimizer

    def optimizer(self, shapes):
        """Adam's state, all or nothing: the `optimizer` metadata and both moments of every model tensor when the
        file has any `optim.` tensor; (None, {}, {}) when it has none."""
        if not any(name.startswith(OPTIMIZER_PREFIX) for name in self.entries):
            return None, {}, {}
        meta = self.json("optimizer")
        step = meta.get("step") if isinstance(meta, dict) else None
        if not is_integer(step) or step < 0:
            raise self.bad("it has optimizer tensors but no valid `optimizer` metadata with a step count")
        if step > MAXIMUM_STEP:
            raise self.bad(f"optimizer `step` is {step}; charlm counts to at most {MAXIMUM_STEP}")
        if "type" in meta and meta["type"] not in ("adam", "adamw"):
            raise self.bad("optimizer `type` is not adam or adamw: charlm's moments are Adam's")
        # Adam's settings as charlm holds them, float32; absent keys keep charlm's defaults.
        settings = {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
        for key in settings:
            if key in meta:
                value = meta[key]
                if not is_number(value) or not math.isfinite(float32(value)):
                    raise self.bad(f"optimizer `{key}` is not a number")
                settings[key] = float32(value) + 0.0  # -0 becomes 0
        beta1, beta2, eps, lr, wd = (float32(settings[k]) for k in ("beta1", "beta2", "eps", "lr", "weight_decay"))
        # Adam diverges (or divides by zero) outside these: beta in [0, 1), eps and lr above 0.
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and eps > 0 and lr > 0 and 0 <= wd <= 10):
            got = ", ".join(f"{name} {shown(value)}" for name, value in
                            (("beta1", beta1), ("beta2", beta2), ("eps", eps), ("lr", lr), ("weight_decay", wd)))
            raise self.bad("its optimizer settings are unusable: beta1 and beta2 must be from 0 up to but not "
                           f"including 1, eps and lr above 0, weight_decay from 0 to 10; got {got}")
        moments = []
        for moment in MOMENTS:
            prefix = f"{OPTIMIZER_PREFIX}{moment}."
            self.check_present(shapes, prefix, None)
            moments.append(self.values(shapes, prefix, non_negative=moment == "exp_avg_sq"))
        return meta, moments[0], moments[1]

    # training

    def training(self):
        """The `training` metadata, checked as charlm's TrainingState is read; None when absent."""
        json = self.json("training")
        if json is None:
            return None
        json = json if isinstance(json, dict) else {}

        def integer(key):
            if not is_integer(json.get(key)):
                raise self.bad(f"training `{key}` is missing or not an integer")
            return json[key]

        def number(key):
            if not is_number(json.get(key)):
                raise self.bad(f"training `{key}` is missing or not a number")
            return json[key]

        def optional(key, check, kind):
            if key not in json:
                return 0
            if not check(json[key]):
                raise self.bad(f"training `{key}` is not {kind}")
            return json[key]

        settings = {"seq": integer("seq"), "batch": integer("batch"), "lr": float32(number("lr")),
                    "clip": float32(number("clip")), "warmup": optional("warmup", is_integer, "an integer"),
                    "decay": optional("decay", is_integer, "an integer"),
                    "weight_decay": float32(optional("weight_decay", is_number, "a number")) + 0.0}
        found = training_problem(settings)
        if found:
            raise self.bad(f"its training settings are unusable: {found}")
        generator = json.get("generator")
        if not isinstance(generator, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", generator):
            raise self.bad("training `generator` is missing or not a valid generator state")
        fraction = number("val_fraction")
        if not 0 <= fraction < 1:
            raise self.bad("training `val_fraction` must be >= 0 and < 1")
        step = integer("step")
        if step < 0:
            raise self.bad("training `step` is negative")
        if step > MAXIMUM_STEP:
            raise self.bad(f"training `step` is {step}; charlm counts to at most {MAXIMUM_STEP}")

        def listed(key):
            value = json.get(key, [])
            if not isinstance(value, list):
                raise self.bad(f"training `{key}` is not a list")
            return value
        history = listed("loss_history")
        if not all(is_number(loss) for loss in history):
            raise self.bad("training `loss_history` holds something other than a finite number")
        if len(history) > step:
            raise self.bad(f"training `loss_history` has {len(history)} losses for {step} steps")
        for point in listed("validation_history"):
            if not (isinstance(point, list) and len(point) == 2 and is_integer(point[0]) and 0 <= point[0] <= step
                    and is_number(point[1])):
                raise self.bad("training `validation_history` holds something other than [step, loss] pairs with a "
                               f"step from 0 to the training step ({step}) and a finite loss")
        return json

    # sampling, corpus, settings

    def sampling(self):
        json = self.json("sampling")
        if json is None:
            return None
        json = json if isinstance(json, dict) else {}
        temperature, top_k, top_p = json.get("temperature"), json.get("top_k"), json.get("top_p")
        if not (is_number(temperature) and is_integer(top_k) and is_number(top_p)):
            raise self.bad("metadata `sampling` needs temperature, top_k and top_p")
        for name, value in (("temp", float32(temperature)), ("topk", top_k), ("topp", float32(top_p))):
            found = problem(name, value, shown(value))
            if found:
                raise self.bad(f"its sampling settings are unusable: {found}")
        return json

    def corpus(self):
        json = self.json("corpus")
        if json is None:
            return None
        json = json if isinstance(json, dict) else {}
        characters, fingerprint = json.get("characters"), json.get("fnv1a64")
        if not (is_integer(characters) and characters >= 0 and isinstance(fingerprint, str)
                and re.fullmatch(r"[0-9a-fA-F]{1,16}", fingerprint)):
            raise self.bad("metadata `corpus` needs characters and fnv1a64")
        return json

    def settings(self):
        json = self.json("settings")
        if json is None:
            return None
        if not isinstance(json, dict):
            raise self.bad("metadata `settings` is not a JSON object")
        for key, value in json.items():
            if not isinstance(value, str):
                raise self.bad(f"setting `{visible(key)}` is not a string")
        return json
