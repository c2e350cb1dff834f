"""422 answers that keep pydantic's list of `{type, loc, msg, input}` but never echo much input.

FastAPI's own handler echoes every input whole (a 100 KB string comes back as 100 KB, once per
error) and renders lone surrogates (`"\\ud800"`, valid JSON, not valid UTF-8) into a body that
cannot be encoded, which crashes the answer. Here every echoed string is escaped to valid UTF-8
and cut to a short prefix, containers too large to show are shown as a cut repr, `ctx` keeps
only short scalars, and at most `MAX_ERRORS` errors are listed. No Python object repr is ever
shown: pydantic names a union's members after their validators in `loc`, and a constrained
validator's name can hold `<function … at 0x…>` (an address tells a client nothing, and tells an
attacker about the process); such a repr is reduced to the object's name.
"""

import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_INPUT_CHARS = 100
MAX_MSG_CHARS = 300
MAX_ERRORS = 20


def _short_repr() -> reprlib.Repr:
    """A repr that stops at a few levels and items, so showing a huge input costs little."""
    short = reprlib.Repr()
    short.maxlevel, short.maxdict, short.maxlist = 3, 5, 5
    short.maxstring = short.maxother = 40
    return short


_REPR = _short_repr()
# `<function max_length_validator at 0x7f…>`, `<foo.Bar object at 0x7f…>`: the name is kept.
_OBJECT_REPR = re.compile(r"<(?:[^<>]*?\s)??([^<>\s]+)(?: object)? at 0x[0-9a-fA-F]+>")


def described(text: str, limit: int = MAX_INPUT_CHARS) -> str:
    """pydantic's own words (a `msg`, a `loc` part, a `ctx` value): safe text without reprs.
    Cut first, so the pattern only ever scans a short string whatever a client sent."""
    return safe_text(without_reprs(text[: 4 * limit]), limit)


def without_reprs(text: str) -> str:
    """`text` with every object repr replaced by the object's name (inner ones first)."""
    while "at 0x" in text:
        shorter = _OBJECT_REPR.sub(r"\1", text)
        if shorter == text:
            break
        text = shorter
    return text


class _TooLarge(Exception):
    """A container's copy would spend more than its budget of characters."""


def safe_text(value: str, limit: int = MAX_INPUT_CHARS) -> str:
    """Valid UTF-8 (lone surrogates become the text `\\udXXX`), cut to `limit` chars + `…`."""
    cut = value[:limit] + "…" if len(value) > limit else value
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def preview(value: object) -> object:
    """What an error may echo of an input: scalars and small containers as they are (with
    their text made safe), anything else as a short cut repr."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if len(str(value)) <= MAX_INPUT_CHARS else safe_text(str(value))
    if isinstance(value, str):
        return safe_text(value)
    try:
        return _small_copy(value, [MAX_INPUT_CHARS])
    except _TooLarge:
        return safe_text(_REPR.repr(value))


def _small_copy(value: object, budget: list[int]) -> object:
    """A copy of a JSON-like value with safe text, raising _TooLarge once it grows past budget."""
    budget[0] -= 2
    if budget[0] < 0:
        raise _TooLarge
    if value is None or isinstance(value, bool | int | float):
        budget[0] -= len(str(value))
        return value
    if isinstance(value, str):
        budget[0] -= len(value)
        if budget[0] < 0:
            raise _TooLarge
        return safe_text(value)
    if isinstance(value, Mapping):
        return {
            safe_text(str(_small_copy(k, budget))): _small_copy(v, budget) for k, v in value.items()
        }
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_small_copy(v, budget) for v in value]
    raise _TooLarge  # bytes, models, anything else: shown as a repr


def _small_ctx(ctx: Mapping[str, Any]) -> dict[str, object] | None:
    """pydantic's ctx (`le`, `max_length`, …) when every value is a short scalar."""
    kept: dict[str, object] = {}
    for key, value in ctx.items():
        if isinstance(value, str):
            if len(value) > MAX_INPUT_CHARS:
                return None
            kept[str(key)] = described(value)
        elif value is None or isinstance(value, bool | int | float):
            kept[str(key)] = value
        else:  # an exception object (`error`) is already said in `msg`
            return None
    return kept


def public_error(error: Mapping[str, Any]) -> dict[str, object]:
    public: dict[str, object] = {
        "type": str(error.get("type", "value_error")),
        "loc": [
            part if isinstance(part, int) else described(str(part)) for part in error.get("loc", ())
        ],
        "msg": described(str(error.get("msg", "")), MAX_MSG_CHARS),
    }
    if "input" in error:
        public["input"] = preview(error["input"])
    ctx = error.get("ctx")
    small = _small_ctx(ctx) if isinstance(ctx, Mapping) else None
    if small:
        public["ctx"] = small
    return public


def _without_null_members(errors: Sequence[Any]) -> list[Mapping[str, Any]]:
    """A field typed `X | None` that fails is reported once per union member: X's error under
    a `loc` ending in X's schema name (`function-after[storable(), constrained-str]`, `bool`)
    and `none_required` under one ending in `none`. A null would have been accepted, so only
    X's error says anything: it is kept, at the field's own `loc`."""
    mappings = [e for e in errors if isinstance(e, Mapping)]
    nullable = {
        tuple(e["loc"][:-1])
        for e in mappings
        if e.get("type") == "none_required" and tuple(e.get("loc", ()))[-1:] == ("none",)
    }
    if not nullable:
        return mappings
    kept: list[Mapping[str, Any]] = []
    for error in mappings:
        loc = tuple(error.get("loc", ()))
        if loc[:-1] not in nullable:
            kept.append(error)
        elif error.get("type") != "none_required":
            kept.append({**error, "loc": loc[:-1]})
    return kept


def public_errors(errors: Sequence[Any]) -> list[dict[str, object]]:
    errors = _without_null_members(errors)
    shown = [public_error(e) for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        shown.append(
            {
                "type": "too_many_errors",
                "loc": [],
                "msg": f"{len(errors) - MAX_ERRORS} more errors not shown",
            }
        )
    return shown


async def validation_failed(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": public_errors(exc.errors())}, status_code=422)
