"""Stripe's form encoding read back: ``line_items[0][price_data][unit_amount]=499``, nested.

The SDK sends lists with indexes (``expand[0]=line_items``), curl users send ``expand[]=...``; both
become lists. Every leaf stays a string until a ``Params`` accessor reads it as what it should be,
and a bad value becomes the error Stripe would answer, naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from billfold.simulator import errors

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_INT = re.compile(r"^-?\d+$")


def parse(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest ``(key, value)`` pairs; dicts whose keys are all indexes become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise errors.invalid(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_PART.findall(match.group(2))]
        node = root
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if part == "":
                # `a[]` appends: give it the next free index.
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise errors.invalid(f"Invalid parameter: {key}", param=key)
                node = child
    return _listify(root)


def _listify(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = _listify_value(value)
    return out


def _listify_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if value and all(k.isdigit() for k in value):
        indexes = sorted(int(k) for k in value)
        if indexes == list(range(len(indexes))):
            return [_listify_value(value[str(i)]) for i in indexes]
    return _listify(value)


class Params:
    """Typed, named access to one (nested) level of request parameters."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self._data = data
        self._prefix = prefix

    def name(self, key: str) -> str:
        return f"{self._prefix}[{key}]" if self._prefix else key

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def names(self) -> list[str]:
        """The parameters sent at this level (``keys``, named so it reads as a list)."""
        return list(self._data)

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        known = set(allowed)
        for key in self._data:
            if key not in known:
                raise errors.parameter_unknown(self.name(key))

    def raw(self, key: str) -> Any:
        """The value as sent: a string, a list or a dict (nested parameters)."""
        return self._data.get(key)

    def _raw(self, key: str, required: bool) -> Any:
        value = self._data.get(key)
        if value is None and required:
            raise errors.parameter_missing(self.name(key))
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self._raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise errors.invalid(f"Invalid string: {self.name(key)}", param=self.name(key))
        if value == "" and required:
            raise errors.invalid(
                f"You passed an empty string for '{self.name(key)}'. We assume empty values are "
                "an attempt to unset a parameter; however '"
                f"{self.name(key)}' cannot be unset. You should remove '{self.name(key)}' from "
                "your request or supply a non-empty value.",
                param=self.name(key),
                code="parameter_invalid_empty",
            )
        return value

    def required_str(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def choice(self, key: str, options: Iterable[str], *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        allowed = list(options)
        if value is not None and value not in allowed:
            raise errors.invalid(
                f"Invalid {self.name(key)}: must be one of {', '.join(allowed)}",
                param=self.name(key),
            )
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        value = self._raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not _INT.match(value):
            raise errors.invalid(
                f"Invalid integer: {value}",
                param=self.name(key),
                code="parameter_invalid_integer",
            )
        number = int(value)
        if minimum is not None and number < minimum:
            raise errors.invalid(
                f"This value must be greater than or equal to {minimum}.",
                param=self.name(key),
            )
        return number

    def boolean(self, key: str) -> bool | None:
        value = self._raw(key, False)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise errors.invalid(f"Invalid boolean: {value}", param=self.name(key))
        return bool(value == "true")

    def nested(self, key: str, *, required: bool = False) -> Params | None:
        value = self._raw(key, required)
        if value is None:
            return None
        if value == "":
            return Params({}, self.name(key))
        if not isinstance(value, dict):
            raise errors.invalid(
                f"Invalid object: {self.name(key)} must be a hash", param=self.name(key)
            )
        return Params(value, self.name(key))

    def items(self, key: str, *, required: bool = False) -> list[Params]:
        """A list of hashes, such as ``line_items``."""
        value = self._raw(key, required)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise errors.invalid(
                f"Invalid array: {self.name(key)} must be an array of hashes",
                param=self.name(key),
            )
        return [Params(v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def strings(self, key: str) -> list[str]:
        """A list of strings, such as ``expand`` or ``types``; a single value counts as one."""
        value = self._raw(key, False)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.invalid(
                f"Invalid array: {self.name(key)} must be an array of strings",
                param=self.name(key),
            )
        return list(value)

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """Metadata as sent, or None when absent: an empty string value unsets that key, an empty
        string for the whole hash unsets every key (see ``apply_metadata``)."""
        value = self._raw(key, False)
        if value is None:
            return None
        if value == "":
            return {}
        if isinstance(value, list):
            # `metadata[0]=x` was read as a list; metadata keys are strings.
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise errors.invalid(
                f"Invalid {self.name(key)}: metadata values must be strings",
                param=self.name(key),
            )
        return dict(value)


def apply_metadata(current: Mapping[str, str], changes: Mapping[str, str] | None) -> dict[str, str]:
    """Stripe's metadata update: keys merge, an empty value removes its key, ``{}`` clears all."""
    if changes is None:
        return dict(current)
    if not changes:
        return {}
    merged = dict(current)
    for key, value in changes.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
