"""The errors the reference reports in one line, and how what a file or a user supplied is quoted in them. cli.run
prints a CommandError as `torch_reference.py: error: MESSAGE` and exits with status 1; nothing a file holds may
reach the user as a traceback. No torch here: the entry point uses it to say that torch is missing."""
import importlib.util
import sys
import unicodedata

PROGRAM = "torch_reference.py"
INSTALL = "python3 -m pip install torch numpy safetensors"
MODULES = ("torch", "numpy", "safetensors")


class CommandError(Exception):
    """What the command was given cannot be used (an option, a corpus, a file, the memory it needs): one line."""


class CheckpointError(CommandError):
    """A file that is not a usable charlm checkpoint: its path and the first problem found, in charlm's words."""

    def __init__(self, path, problem):
        super().__init__(f"'{visible(path, limit=None)}' is not a usable charlm checkpoint: {problem}")
        self.path = path
        self.problem = problem


def absent(names):
    """Those of the modules `names` this Python cannot import (found without importing them)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def install_message(names):
    """The one line saying that this Python lacks the modules `names`, and how to install what the reference needs.
    (Without numpy, torch warns at every import, so the reference asks for it with torch.)"""
    return f"{PROGRAM}: error: {sys.executable} has no {' or '.join(names)}: {INSTALL}"


def missing_module(error):
    """install_message for a ModuleNotFoundError of torch, numpy or safetensors, or None for any other module."""
    name = (error.name or "").partition(".")[0]
    return install_message([name]) if name in MODULES else None


def abbreviated(text, limit=40):
    """`text` cut to `limit` characters with "…" in the middle (charlm's `abbreviated`)."""
    if len(text) <= limit:
        return text
    return text[:limit // 2] + "…" + text[len(text) - (limit // 2 - 1):]


def visible(text, limit=60):
    """`text` abbreviated to `limit` characters (None: whole), with control, format, separator and surrogate code
    points spelled U+XXXX, so that a name a file supplies cannot break a message's one line or reach a terminal as a
    control sequence (charlm's `spelledVisibly`)."""
    text = abbreviated(text, limit) if limit else text
    return "".join(f"U+{ord(c):X}" if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F
                   or unicodedata.category(c) in ("Cf", "Cs", "Zl", "Zp") else c for c in text)
