"""Strict JSON for what a file supplies, taken as charlm's reader takes it (Sources/CharLM/Files/JSON.swift): duplicate
keys, NaN and Infinity, numbers beyond a double, unpaired surrogates and nesting deeper than 64 levels are refused,
each with a one-line reason. An integer literal stays an int when it fits in 64 bits (charlm's Int); a longer one is
read as the float it is, a number but never an integer, as in charlm. Object keys keep their file order.

Built on json.loads (its scanner is C): the checks are its hooks and one walk over the result. Nothing here raises
anything but JSONError, whatever the text."""
import json
import math

from .errors import abbreviated

MAXIMUM_DEPTH = 64
_INT64 = range(-2**63, 2**63)


class JSONError(ValueError):
    """Why a JSON text was refused, in one line."""


def parse(text, maximum_depth=MAXIMUM_DEPTH):
    """The value `text` holds; raises JSONError saying what is wrong with it."""
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_int=_integer,
                           parse_float=_float)
    except JSONError:
        raise
    except RecursionError:
        raise JSONError(f"nesting deeper than {maximum_depth} levels") from None
    except ValueError as error:  # json.JSONDecodeError: "Expecting ',' delimiter: line 1 column 9 (char 8)"
        raise JSONError(str(error).partition("\n")[0]) from None
    _check_nesting_and_strings(value, maximum_depth)
    return value


def _object(pairs):
    """An object's pairs as a dict, refusing a key given twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONError(f"duplicate key {json.dumps(abbreviated(key))}")
            seen.add(key)
    return result


def _constant(name):
    raise JSONError(f"{name} is not a JSON number")


def _float(text):
    value = float(text)
    if not math.isfinite(value):
        raise JSONError(f"number {abbreviated(text)} is out of range")
    return value


def _integer(text):
    # 20 characters hold every 64-bit integer; a longer literal is not one, and int() of thousands of digits is slow.
    if len(text) <= 20:
        value = int(text)
        if value in _INT64:
            return value
    return _float(text)


def _check_string(text):
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONError("unpaired surrogate in \\u escape") from None


def _check_nesting_and_strings(value, maximum_depth):
    """Refuses a value nested `maximum_depth` levels or deeper (the top is level 0), and strings holding an unpaired
    surrogate (a \\ud800 escape alone), which no text can be written with. Iterative: no depth can overflow it."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
            continue
        if isinstance(item, dict):
            for key in item:
                _check_string(key)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if children and depth + 1 >= maximum_depth:
            raise JSONError(f"nesting deeper than {maximum_depth} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, str)))
