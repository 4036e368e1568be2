"""Command-line flags generated from a settings dataclass: one ``--field-name`` per field, its
docstring as help, its type parsed (JSON for objects and lists), ``none`` for optional values.

Every flag defaults to ``None`` ("not given"), so the caller applies only what was given on top of
a preset; the help shows beside the field's documentation the value a run will use: the resolved
configuration's (``shown``, e.g. the preset that ``--env`` picks), else the dataclass default.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, fields
from typing import Any, Callable

from paper_code.core.settings import field_docs


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e.msg} at character {e.pos}): {text!r}") from None


def _json_object(text: str) -> dict[str, Any]:
    value = _json(text)
    if not isinstance(value, dict):  # null would read as "not given" and leave the preset's value
        raise argparse.ArgumentTypeError(f"not a JSON object (keyword arguments such as {{\"key\": 1}}): {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    value = _json(text) if text.lstrip().startswith("[") else [p for p in text.split(",") if p.strip()]
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected widths like 64,64 or [64, 64], got {text!r}") from None


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_optional(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null") else parse(text)
    parse_optional.__name__ = getattr(parse, "__name__", "value")
    return parse_optional


#: annotation (as written in the dataclass) -> (parser, metavar)
_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int": (int, "INT"), "float": (float, "FLOAT"), "str": (str, "TEXT"),
    "dict[str, Any]": (_json_object, "JSON"), "LearnerSpec": (_json, "JSON"), "tuple[LearnerSpec, ...]": (_json, "JSON"),
    "tuple[int, ...]": (_int_list, "W,W,..."),
}


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    if hasattr(value, "to_json"):
        return value.to_json()
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def add_config_arguments(parser: argparse._ActionsContainer, cls: type, *, aliases: dict[str, list[str]] | None = None,
                         skip: set[str] = frozenset(), shown: Any = None, label: str | None = None) -> None:
    """A ``--field-name`` flag (dest: the field's name, default None) for each field of ``cls``
    except ``skip``; ``aliases`` adds more option strings to a field's flag. The help ends with
    ``[label: value]``: the value in ``shown`` (a resolved ``cls``), else the dataclass default."""
    docs, aliases = field_docs(cls), aliases or {}
    label = label or ("default" if shown is None else cls.__name__)
    for f in fields(cls):
        if f.name in skip:
            continue
        flags = [f"--{f.name.replace('_', '-')}", *aliases.get(f.name, [])]
        if shown is not None:
            default = getattr(shown, f.name)
        else:
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        doc = docs.get(f.name, "")
        help_text = f"{doc} [{label}: {_shown(default)}]".replace("%", "%%")
        annotation = str(f.type)
        if annotation == "bool":
            parser.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        optional = annotation.endswith(" | None")
        parse, metavar = _PARSERS[annotation.removesuffix(" | None")]
        parser.add_argument(*flags, dest=f.name, type=_optional(parse) if optional else parse, default=None,
                            metavar=metavar, help=help_text)
