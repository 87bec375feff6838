"""Stripe's webhook deliveries in billfold's terms (implements ``service.ports.StripeEvents``).

A delivery is checked over its raw bytes first (``signature.verify``) and only then parsed, as
strict UTF-8 JSON (Stripe sends nothing else: a byte-order mark, UTF-16 or a document nested deeper
than any Stripe object is refused, never half-read). Its envelope must have the ranges the inbox
stores, the same on every database; then the translator reads the billing fact it carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from billfold.adapters.stripe import signature, translate
from billfold.domain import errors, facts
from billfold.domain.records import InboundEvent
from billfold.service.ports import VerifiedEvent

MAX_ID: Final = 255
MAX_TYPE: Final = 128
MAX_API_VERSION: Final = 64
MAX_TIMESTAMP: Final = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_DEPTH: Final = 64
"""Deeper than any Stripe object (they nest a dozen levels at most)."""
_STRINGS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS: Final = re.compile(r"[\[\]{}]")
_PAIRS: Final = re.compile(r"\[\]|\{\}")


class StripeWebhooks:
    def __init__(self, secrets: Sequence[str], *, tolerance: int = 300) -> None:
        self.secrets = list(secrets)
        self.tolerance = tolerance

    @property
    def handled_types(self) -> frozenset[str]:
        return translate.HANDLED_EVENT_TYPES

    def verify(self, raw: bytes, signature_header: str | None) -> VerifiedEvent:
        signature.verify(raw, signature_header, self.secrets, tolerance=self.tolerance)
        text, parsed = parse(raw)
        # One parse for both: the translator only reads the document.
        return VerifiedEvent(event=envelope(parsed, text), fact=translate.translate(parsed))

    def read(self, payload: str) -> facts.Fact:
        try:
            parsed = json.loads(payload)
        except (ValueError, RecursionError):
            return facts.Ignored(reason="the stored payload is not JSON")
        return translate.translate(parsed) if isinstance(parsed, Mapping) else _not_event()


def _not_event() -> facts.Ignored:
    return facts.Ignored(reason="not a Stripe event")


def parse(raw: bytes) -> tuple[str, Mapping[str, Any]]:
    """The body as text and as a JSON object, or InvalidEvent saying why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidEvent("The body is not UTF-8 text.") from None
    if text.startswith("\ufeff"):
        raise errors.InvalidEvent("The body starts with a byte-order mark; Stripe sends none.")
    if _too_deep(text):
        raise errors.InvalidEvent(f"The body nests deeper than {MAX_DEPTH} levels.")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        raise errors.InvalidEvent("The body is not JSON.") from None
    if not isinstance(parsed, Mapping):
        raise errors.InvalidEvent("The body is not a Stripe event.")
    return text, parsed


def envelope(event: Mapping[str, Any], payload: str) -> InboundEvent:
    """The inbox's facts about an event, checked against what the inbox can store."""
    if not translate.is_stripe_event(event):
        raise errors.InvalidEvent("The body is not a Stripe event.")
    event_id, event_type = str(event["id"]), str(event["type"])
    if len(event_id) > MAX_ID or len(event_type) > MAX_TYPE:
        raise errors.InvalidEvent("The event's id or type is longer than a Stripe event's.")
    created = event.get("created")
    if created is not None and not (
        isinstance(created, int) and not isinstance(created, bool) and 0 <= created <= MAX_TIMESTAMP
    ):
        raise errors.InvalidEvent("The event's created time is not a Unix timestamp.")
    api_version = event.get("api_version")
    obj = event["data"]["object"]
    object_id = obj.get("id")
    return InboundEvent(
        id=event_id,
        type=event_type,
        livemode=event.get("livemode") is True,
        api_version=api_version
        if isinstance(api_version, str) and len(api_version) <= MAX_API_VERSION
        else None,
        created=created,
        object_id=object_id if isinstance(object_id, str) and len(object_id) <= MAX_ID else None,
        payload=payload,
    )


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_DEPTH (regular expressions, in C)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # not enough brackets to open that many levels (most events)
    brackets = "".join(_BRACKETS.findall(_STRINGS.sub("", text)))
    if len(brackets) <= MAX_DEPTH:
        return False
    # Each pass removes the innermost pairs: brackets that match are gone after as many passes
    # as they nest deep. Otherwise (too deep, or not matching) they are counted one by one.
    left = brackets
    for _ in range(MAX_DEPTH):
        left, removed = _PAIRS.subn("", left)
        if not left:
            return False
        if not removed:
            break
    depth = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False
