"""Read the catalog from TOML (and write it back), with one-line errors that name the key.

Every mistake raises :class:`errors.CatalogError` with a message such as::

    catalog.toml: packages.starter.price: must be a positive integer in minor units of usd, got 4.99

Unknown keys are mistakes too: a misspelt ``expires_in_day`` must not silently grant forever. The
shape of the file (tables, arrays, required and unknown keys) is checked here; the values are
checked by the constructors in :mod:`billfold.domain.catalog`, whose errors are re-worded with the
file name and the full key path.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

from billfold.domain import catalog as cat
from billfold.domain import errors
from billfold.domain.catalog_text import format_key, show

BUNDLED_CATALOG: Final = "example_catalog.toml"

_TOP_KEYS: Final = ("policy", "units", "packages", "plans")
_POLICY_KEYS: Final = ("refund",)
_UNIT_KEYS: Final = ("decimals", "low_balance")
_PACKAGE_KEYS: Final = (
    "title",
    "currency",
    "price",
    "stripe_price_id",
    "custom_amount",
    "grants",
    "refund_policy",
)
_PACKAGE_REQUIRED: Final = ("title", "currency", "grants")
_CUSTOM_AMOUNT_KEYS: Final = ("min", "max")
UNLIMITED: Final = "unlimited"
_GRANT_KEYS: Final = ("unit", "amount", "priority", "expires_in_days", "kind")
_ALLOWANCE_KEYS: Final = ("unit", "amount", "priority", "expires_in_days", "kind", "rollover")
_GRANT_REQUIRED: Final = ("unit", "amount")
_PLAN_KEYS: Final = (
    "title",
    "default",
    "rank",
    "stripe_price_ids",
    "price",
    "currency",
    "interval",
    "features",
    "limits",
    "allowance",
    "grace_period_days",
    "refund_policy",
)

Path_ = tuple[str | int, ...]


def load_catalog(path: str | os.PathLike[str] | None = None) -> cat.Catalog:
    """Load the catalog at ``path``, or the bundled example when ``path`` is None."""
    if path is None:
        text = resources.files("billfold").joinpath(BUNDLED_CATALOG).read_text("utf-8")
        return parse_catalog(text, source=BUNDLED_CATALOG)
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise _fail(source, (), "catalog file not found") from None
    except IsADirectoryError:
        raise _fail(source, (), "is a directory, not a catalog file") from None
    except PermissionError:
        raise _fail(source, (), "catalog file cannot be read: permission denied") from None
    except OSError as exc:
        raise _fail(source, (), f"catalog file cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(source, (), "is not UTF-8 text") from None
    return parse_catalog(text, source=source)


def parse_catalog(text: str, *, source: str = "catalog.toml") -> cat.Catalog:
    """Parse catalog TOML; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, (), f"is not valid TOML: {_one_line(str(exc))}") from None
    return catalog_from_mapping(data, source=source)


def catalog_from_mapping(data: Mapping[str, Any], *, source: str = "catalog.toml") -> cat.Catalog:
    """Build the catalog from already-parsed TOML (a dict of tables)."""
    return _Reader(source).catalog(data)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def catalog(self, data: object) -> cat.Catalog:
        top = self.table((), data)
        self.known_keys((), top, _TOP_KEYS)
        refund: object = "floor"
        if "policy" in top:
            policy = self.table(("policy",), top["policy"])
            self.known_keys(("policy",), policy, _POLICY_KEYS)
            refund = policy.get("refund", "floor")
        units = tuple(
            self.unit(name, body) for name, body in self.section("units", top.get("units"))
        )
        packages = tuple(
            self.package(pid, body) for pid, body in self.section("packages", top.get("packages"))
        )
        plans = tuple(self.plan(pid, body) for pid, body in self.section("plans", top.get("plans")))
        if not packages and not plans:
            raise _fail(self.source, (), "the catalog declares no packages and no plans")
        with self.rephrase(None):
            return cat.Catalog(
                units=units,
                packages=packages,
                plans=plans,
                refund_policy=cast(cat.RefundPolicy, refund),  # checked by Catalog
            )

    def unit(self, name: str, body: object) -> cat.Unit:
        at: Path_ = ("units", name)
        table = self.table(at, body)
        self.known_keys(at, table, _UNIT_KEYS)
        with self.rephrase(None):
            return cat.Unit(
                name=name, decimals=table.get("decimals", 0), low_balance=table.get("low_balance")
            )

    def package(self, package_id: str, body: object) -> cat.Package:
        at: Path_ = ("packages", package_id)
        table = self.table(at, body)
        self.known_keys(at, table, _PACKAGE_KEYS)
        self.required(at, table, _PACKAGE_REQUIRED)
        currency = table["currency"]
        if isinstance(currency, str):
            currency = currency.lower()
        custom: cat.CustomAmount | None = None
        if "custom_amount" in table:
            custom_at = (*at, "custom_amount")
            custom_table = self.table(custom_at, table["custom_amount"])
            self.known_keys(custom_at, custom_table, _CUSTOM_AMOUNT_KEYS)
            self.required(custom_at, custom_table, _CUSTOM_AMOUNT_KEYS)
            with self.rephrase(custom_at):
                custom = cat.CustomAmount(min=custom_table["min"], max=custom_table["max"])
        grants = self.grants((*at, "grants"), table["grants"], default_kind="purchase")
        with self.rephrase(None):
            return cat.Package(
                id=package_id,
                title=table["title"],
                currency=currency,
                price=table.get("price"),
                stripe_price_id=table.get("stripe_price_id"),
                custom_amount=custom,
                grants=grants,
                refund_policy=table.get("refund_policy"),
            )

    def plan(self, plan_id: str, body: object) -> cat.Plan:
        at: Path_ = ("plans", plan_id)
        table = self.table(at, body)
        self.known_keys(at, table, _PLAN_KEYS)
        price_ids = self.array((*at, "stripe_price_ids"), table.get("stripe_price_ids", []))
        features = self.table((*at, "features"), table.get("features", {}))
        limits = {
            name: None if value == UNLIMITED else value
            for name, value in self.table((*at, "limits"), table.get("limits", {})).items()
        }
        allowance = self.grants(
            (*at, "allowance"),
            table.get("allowance", []),
            default_kind="allowance",
            keys=_ALLOWANCE_KEYS,
        )
        currency = table.get("currency")
        with self.rephrase(None):
            return cat.Plan(
                id=plan_id,
                title=table.get("title"),
                default=table.get("default", False),
                rank=table.get("rank"),
                stripe_price_ids=tuple(price_ids),
                price=table.get("price"),
                currency=currency.lower() if isinstance(currency, str) else currency,
                interval=table.get("interval"),
                features=features,
                limits=limits,
                allowance=allowance,
                grace_period_days=table.get("grace_period_days", 0),
                refund_policy=table.get("refund_policy"),
            )

    def grants(
        self,
        at: Path_,
        body: object,
        *,
        default_kind: str,
        keys: Sequence[str] = _GRANT_KEYS,
    ) -> tuple[cat.GrantSpec, ...]:
        result = []
        for index, item in enumerate(self.array(at, body)):
            grant_at = (*at, index)
            table = self.table(grant_at, item)
            self.known_keys(grant_at, table, keys)
            self.required(grant_at, table, _GRANT_REQUIRED)
            with self.rephrase(grant_at):
                result.append(
                    cat.GrantSpec(
                        unit=table["unit"],
                        amount=table["amount"],
                        priority=table.get("priority", 0),
                        expires_in_days=table.get("expires_in_days"),
                        kind=table.get("kind", default_kind),
                        rollover=table.get("rollover", "none"),
                    )
                )
        return tuple(result)

    # -- shape checks ----------------------------------------------------------------------------

    def section(self, name: str, body: object) -> Iterator[tuple[str, object]]:
        if body is None:
            return iter(())
        example = {"units": "[units.credits]", "packages": "[packages.starter]"}.get(
            name, "[plans.pro]"
        )
        table = self.table((name,), body, what=f"a table of tables such as {example}")
        return iter(table.items())

    def table(self, at: Path_, value: object, *, what: str = "a table") -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(self.source, at, f"must be {what}, got {show(value)}")
        return value

    def array(self, at: Path_, value: object) -> list[Any]:
        if not isinstance(value, list):
            raise _fail(self.source, at, f"must be an array, got {show(value)}")
        return value

    def known_keys(self, at: Path_, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    f"did you mean {close[0]}?"
                    if close
                    else f"expected one of: {', '.join(allowed)}"
                )
                raise _fail(self.source, (*at, key), f"unknown key; {hint}")

    def required(self, at: Path_, table: Mapping[str, Any], keys: Sequence[str]) -> None:
        for key in keys:
            if key not in table:
                raise _fail(self.source, (*at, key), "is required")

    @contextmanager
    def rephrase(self, prefix: Path_ | None) -> Iterator[None]:
        """Re-word a domain CatalogError with the file and the full key path.

        ``prefix`` is where a value that does not know its own place (a grant) sits; None when the
        domain object reports an absolute path.
        """
        try:
            yield
        except errors.CatalogError as exc:
            path = str(exc.details.get("path", ""))
            problem = str(exc.details.get("problem", exc.message))
            if prefix is not None:
                base = _format_path(prefix)
                path = base if not path else f"{base}.{path}"
            raise _fail_at(self.source, path, problem) from exc


def _format_path(path: Path_) -> str:
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += ("." if text else "") + format_key(segment)
    return text


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _fail(source: str, path: Path_, problem: str) -> errors.CatalogError:
    return _fail_at(source, _format_path(path), problem)


def _fail_at(source: str, path: str, problem: str) -> errors.CatalogError:
    message = f"{source}: {path}: {problem}" if path else f"{source}: {problem}"
    return errors.CatalogError(_one_line(message), source=source, path=path, problem=problem)


# -- writing ---------------------------------------------------------------------------------------


def dumps_catalog(catalog: cat.Catalog) -> str:
    """The catalog as TOML that :func:`parse_catalog` reads back into an equal catalog."""
    out: list[str] = ["[policy]", f"refund = {_toml(catalog.refund_policy)}"]
    for unit in catalog.units:
        out += ["", f"[units.{format_key(unit.name)}]", f"decimals = {unit.decimals}"]
        if unit.low_balance is not None:
            out.append(f"low_balance = {unit.low_balance}")
    for package in catalog.packages:
        out += ["", f"[packages.{format_key(package.id)}]"]
        out.append(f"title = {_toml(package.title)}")
        out.append(f"currency = {_toml(package.currency)}")
        if package.price is not None:
            out.append(f"price = {package.price}")
        if package.custom_amount is not None:
            custom = package.custom_amount
            out.append(f"custom_amount = {{ min = {custom.min}, max = {custom.max} }}")
        if package.stripe_price_id is not None:
            out.append(f"stripe_price_id = {_toml(package.stripe_price_id)}")
        if package.refund_policy is not None:
            out.append(f"refund_policy = {_toml(package.refund_policy)}")
        out += _grants("grants", package.grants)
    for plan in catalog.plans:
        out += ["", f"[plans.{format_key(plan.id)}]"]
        if plan.title is not None:
            out.append(f"title = {_toml(plan.title)}")
        out.append(f"default = {_toml(plan.default)}")
        if plan.rank is not None:
            out.append(f"rank = {plan.rank}")
        out.append(f"stripe_price_ids = [{', '.join(map(_toml, plan.stripe_price_ids))}]")
        for key in ("price", "currency", "interval"):
            value = getattr(plan, key)
            if value is not None:
                out.append(f"{key} = {_toml(value)}")
        out.append(f"features = {_inline(plan.features)}")
        limits = {k: UNLIMITED if v is None else v for k, v in plan.limits.items()}
        out.append(f"limits = {_inline(limits)}")
        out.append(f"grace_period_days = {plan.grace_period_days}")
        if plan.refund_policy is not None:
            out.append(f"refund_policy = {_toml(plan.refund_policy)}")
        out += _grants("allowance", plan.allowance)
    return "\n".join(out) + "\n"


def _grants(key: str, grants: Sequence[cat.GrantSpec]) -> list[str]:
    if not grants:
        return [f"{key} = []"]
    lines = [f"{key} = ["]
    for grant in grants:
        fields: dict[str, object] = {
            "unit": grant.unit,
            "amount": grant.amount,
            "priority": grant.priority,
        }
        if grant.expires_in_days is not None:
            fields["expires_in_days"] = grant.expires_in_days
        fields["kind"] = grant.kind
        if grant.rollover != "none":
            fields["rollover"] = grant.rollover
        lines.append(f"  {_inline(fields)},")
    lines.append("]")
    return lines


def _inline(table: Mapping[str, object]) -> str:
    if not table:
        return "{}"
    items = ", ".join(f"{format_key(k)} = {_toml(v)}" for k, v in table.items())
    return f"{{ {items} }}"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    raise TypeError(f"cannot write {type(value).__name__} as catalog TOML")


def _toml_string(text: str) -> str:
    escaped = []
    for ch in text:
        if ch == '"':
            escaped.append('\\"')
        elif ch == "\\":
            escaped.append("\\\\")
        elif ch < " " or ch == "\x7f":
            escaped.append(f"\\u{ord(ch):04x}")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'
