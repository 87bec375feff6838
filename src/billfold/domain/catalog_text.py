"""How a catalog problem is worded: values and key paths as they appear in the TOML file.

The catalog's constructors (:mod:`billfold.domain.catalog`) describe what is wrong with a value; the
loader names the file. Both write values and key paths the way a person wrote them in TOML, with
these helpers, so a message points at the exact spot: ``packages."my pack".price: ..., got 4.99``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from billfold.domain import errors

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _quote(text: str) -> str:
    # JSON escapes the ASCII control characters; these Unicode line breaks it leaves alone.
    quoted = json.dumps(text, ensure_ascii=False)
    return (
        quoted.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def format_key(segment: str) -> str:
    """A key as it would be written in a TOML key path: bare if it can be, quoted otherwise."""
    return segment if _BARE_KEY.fullmatch(segment) else _quote(segment)


def show(value: object) -> str:
    """A value as it appears in an error message: TOML-like, always on one line."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _join(prefix: str, field_path: str) -> str:
    if not field_path:
        return prefix
    if not prefix or field_path.startswith("["):
        return prefix + field_path
    return f"{prefix}.{field_path}"


def invalid(where: str, field_path: str, problem: str) -> errors.CatalogError:
    """A CatalogError about the value at ``field_path`` inside the object at ``where``.

    ``details["path"]`` is the key path as far as the object knows it: absolute for units, packages,
    plans and the catalog (they know their ids), relative for grants and custom amounts (they do
    not know where they sit). ``details["problem"]`` is what is wrong, without the path.
    """
    path = _join(where, field_path)
    return errors.CatalogError(f"{path or 'catalog'}: {problem}", path=path, problem=problem)
