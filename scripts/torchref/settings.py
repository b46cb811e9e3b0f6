"""The ranges charlm declares for its settings (Sources/CharLM/Support/SettingDeclarations.swift) and the limits of its
files, so that the reference refuses what charlm refuses, in charlm's words. The command line and the checkpoint
reader both ask here, before any model exists. No torch here."""
import math
import struct
from collections import namedtuple

from .errors import abbreviated


CELLS = ("lstm", "gru", "rnn")
#: The transformer family's `arch` (a config naming a cell as its arch is the recurrent family's).
TRANSFORMER = "transformer"
#: Gate blocks per layer: a layer's weights and biases have GATES[cell] * H rows.
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
#: The most characters a vocabulary may have (Vocabulary.swift).
MAXIMUM_VOCABULARY = 65_535
#: The largest step count a file may hold, training's or the optimizer's (Trainer.maximumStep).
MAXIMUM_STEP = 1_000_000_000_000

Domain = namedtuple("Domain", "low high low_included high_included whole")


def _whole(low, high):
    return Domain(low, high, True, True, True)


def _number(low, high, low_included=True, high_included=True):
    return Domain(low, high, low_included, high_included, False)


#: Each setting's values, by charlm's name for it (a file's `weight_decay` is `wd`, its `val_fraction` is `val`).
DOMAINS = {
    "embed": _whole(1, 8192), "hidden": _whole(1, 8192), "layers": _whole(1, 16),
    "heads": _whole(1, 256), "context": _whole(1, 10_000),
    "dropout": _number(0, 1, high_included=False),
    "seq": _whole(1, 10_000), "batch": _whole(1, 4096), "lr": _number(0, 1, low_included=False),
    "clip": _number(0, 1e6), "warmup": _whole(0, 10_000_000), "decay": _whole(0, 10_000_000), "wd": _number(0, 10),
    "val": _number(0, 1, high_included=False),
    "temp": _number(0, 100), "topk": _whole(0, 65_535), "topp": _number(0, 1, low_included=False),
}


def is_integer(value):
    """Whether `value` is a whole number as JSON gives one (an int, not a bool, not 5.0)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    """Whether `value` is a finite number (int or float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def float32(value):
    """`value` rounded to float32, as charlm's Float(value) rounds it (infinite past float32's range)."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def shown(value):
    """A number as charlm writes it; a float as its shortest float32 decimal (0.9, not 0.8999999761581421), as
    charlm writes the Float it holds."""
    if not isinstance(value, float) or not math.isfinite(value):
        return format_number(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if float32(float(text)) == float32(value):
            return format_number(float(text))
    return format_number(value)


def format_number(value):
    """A number as charlm prints a setting: 0.002, 5, 1000000, 1e-05."""
    if is_integer(value):
        return str(value)
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def rule(domain):
    """"a whole number from 1 to 8192", "a number above 0, at most 1", ... (charlm's `SettingDomain.rule`)."""
    low, high = format_number(domain.low), format_number(domain.high)
    if domain.whole:
        return f"a whole number from {low} to {high}"
    return {(True, True): f"a number from {low} to {high}",
            (True, False): f"a number from {low} up to but not including {high}",
            (False, True): f"a number above {low}, at most {high}",
            (False, False): f"a number above {low} and below {high}"}[domain.low_included, domain.high_included]


def problem(name, value, shown=None):
    """Why `value` is not a value of setting `name`, in charlm's words ("embed must be a whole number from 1 to
    8192; got '0'"), or None when it is one; `shown` is how to write the value (default: as charlm writes a
    number)."""
    domain = DOMAINS[name]
    if domain.whole:
        fits = is_integer(value) and domain.low <= value <= domain.high
    else:
        fits = (is_number(value) and (domain.low < value or (domain.low_included and value == domain.low))
                and (value < domain.high or (domain.high_included and value == domain.high)))
    if fits:
        return None
    if shown is None:
        shown = format_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
    return f"{name} must be {rule(domain)}; got '{abbreviated(shown)}'"


#: A run's settings as the reference and charlm's files name them, and charlm's name for each.
TRAINING_SETTINGS = (("seq", "seq"), ("batch", "batch"), ("lr", "lr"), ("clip", "clip"), ("warmup", "warmup"),
                     ("decay", "decay"), ("weight_decay", "wd"))


def training_problem(settings):
    """The first problem of a run's settings (seq, batch, lr, clip, warmup, decay, weight_decay), or None (charlm's
    `TrainingSettings.validate`)."""
    for key, name in TRAINING_SETTINGS:
        found = problem(name, settings[key], shown(settings[key]))
        if found:
            return found
    lr, wd = settings["lr"], settings["weight_decay"]
    # AdamW multiplies each weight by 1 - lr wd every step: at 1 or more that zeroes or flips every weight.
    if lr * wd >= 1:
        return (f"wd must be below 1/lr ({format_number(1 / lr)} with lr {shown(lr)}), as each step multiplies "
                f"the weights by 1 - lr x wd; got '{shown(wd)}'")
    return None
