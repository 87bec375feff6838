"""The depth check on a webhook body: brackets outside strings deeper than ``MAX_DEPTH`` refuse
the body, whatever shortcuts the check takes (held to the plain count, bracket by bracket)."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from billfold.adapters.stripe import webhooks as w

STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def reference(text: str) -> bool:
    depth = 0
    for char in STRINGS.sub("", text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if depth > w.MAX_DEPTH:
            return True
    return False


def nested(depth: int, *, siblings: int = 0) -> str:
    """A valid JSON document ``depth`` levels deep, with ``siblings`` shallow objects beside."""
    inner: object = 1
    for level in range(depth - 1):
        inner = [inner] if level % 2 else {"k": inner, "s": "[{"}
    return json.dumps({"deep": inner, "wide": [{"a": [i]} for i in range(siblings)]})


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@given(st.integers(1, 3 * w.MAX_DEPTH), st.integers(0, 80))
def test_a_json_document_is_too_deep_exactly_when_it_nests_past_the_limit(
    depth: int, siblings: int
) -> None:
    text = nested(depth, siblings=siblings)
    assert w._too_deep(text) == (depth_of(json.loads(text)) > w.MAX_DEPTH)
    assert w._too_deep(text) == reference(text)


@given(st.text(alphabet='[]{}"\\ ab', max_size=400))
def test_any_text_is_judged_as_the_bracket_by_bracket_count_judges_it(text: str) -> None:
    assert w._too_deep(text) == reference(text)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"s": "[" * 500, "t": "{" * 500})
    assert not w._too_deep(text)
    assert w._too_deep("[" * (w.MAX_DEPTH + 1))
