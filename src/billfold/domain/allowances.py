"""Allowances: what a paid subscription invoice grants, per line, from the plan its price sells.

- a period's invoice (``subscription_create``, ``subscription_cycle``, a $0 trial invoice
  included) grants each paid subscription line's plan allowance (times the line's quantity),
  expiring at the end of the service period that line pays for (``lines.data[].period``, never the
  invoice's ``period_*``), at the allowance's priority;
- ``rollover`` keeps unused allowance for one more period: ``"all"`` never expires, a number ``N``
  puts ``N`` of it in a lot that expires at the end of the next period (spent last, since the
  soonest expiry is spent first, so at most ``N`` unused carries over); a period that is a calendar
  month or year is followed by the next calendar month or year from the same anchor day (Jan 31 ->
  Feb 28 -> Mar 31), as Stripe bills, anything else by a period of the same length;
- an upgrade billed at once (``subscription_update``) grants the prorated difference of the
  allowances, rounded down: the new plan's allowance for the part of the period its proration line
  pays for, less the old plan's for the part its credit line gives back; a downgrade grants nothing
  now (the next period's invoice grants the new allowance);
- ``amount = "paid"`` in a money unit adds the invoice's ``amount_paid`` to that wallet;
- an invoice billed for any other reason grants nothing by itself: it is kept for an operator.

Every grant's key is derived from the invoice and the line (``invoice:<id>:<line id>:<n>``), so
``invoice.paid`` and ``invoice.payment_succeeded`` (and a re-fetch) grant it once.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from billfold.domain import catalog as cat
from billfold.domain import facts

PERIOD_REASONS: Final = frozenset({"subscription_create", "subscription_cycle"})
UPDATE_REASON: Final = "subscription_update"
KNOWN_REASONS: Final = PERIOD_REASONS | {UPDATE_REASON}


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowanceGrant:
    key: str
    unit: str
    amount: int
    priority: int
    expires_at: int | None
    plan: str


PlanOf = Callable[[facts.InvoiceLineFact], cat.Plan | None]
"""The plan a line's price sells (the caller knows the catalog and the stored subscription)."""


def for_invoice(
    invoice: facts.InvoicePaid,
    plan_of: PlanOf,
    *,
    period_length: int | None,
) -> tuple[tuple[AllowanceGrant, ...], str | None]:
    """(the grants, a problem for an operator or None)."""
    reason = invoice.billing_reason
    if reason not in KNOWN_REASONS and not _trial_or_manual_period(invoice, reason):
        return (), f"billing reason {reason!r} is not one billfold grants an allowance for"
    grants: list[AllowanceGrant] = []
    plans: dict[str, cat.Plan] = {}
    for line in invoice.lines:
        if not line.is_subscription or line.proration:
            continue
        plan = plan_of(line)
        if plan is None:
            continue
        plans[plan.id] = plan
        grants += _period_grants(invoice.invoice_id, line, plan, period_length)
    if reason == UPDATE_REASON:
        grants += _upgrade(invoice, plan_of, period_length)
    for plan in plans.values():
        grants += _paid(invoice, plan)
    if not grants and not plans and not _prorations(invoice):
        return (), "no line of this invoice is a plan's subscription line"
    return tuple(grants), None


def _trial_or_manual_period(invoice: facts.InvoicePaid, reason: str | None) -> bool:
    """A subscription invoice without a billing reason (older payloads) that bills a period."""
    return reason is None and any(ln.is_subscription and not ln.proration for ln in invoice.lines)


def _period_grants(
    invoice_id: str, line: facts.InvoiceLineFact, plan: cat.Plan, period_length: int | None
) -> list[AllowanceGrant]:
    out: list[AllowanceGrant] = []
    quantity = max(line.quantity or 1, 1)
    length = line.period_end - line.period_start or period_length or 0
    for index, spec in enumerate(plan.allowance):
        if spec.is_paid:
            continue
        amount = int(spec.amount) * quantity
        key = f"invoice:{invoice_id}:{line.line_id}:{index * 2}"
        if spec.rollover == "all":
            out.append(_grant(key, spec, amount, None, plan))
            continue
        carried = 0 if spec.rollover == "none" else min(int(spec.rollover) * quantity, amount)
        if amount - carried:
            out.append(_grant(key, spec, amount - carried, line.period_end, plan))
        if carried:
            later = f"invoice:{invoice_id}:{line.line_id}:{index * 2 + 1}"
            nxt = next_period_end(line.period_start, line.period_end, length)
            out.append(_grant(later, spec, carried, nxt, plan))
    return out


def next_period_end(start: int, end: int, length: int) -> int:
    """When the period after ``[start, end)`` ends: by the calendar when the period is one calendar
    month or year from ``start``'s day (clamped to the month's last day), else ``end + length``."""
    anchor = datetime.fromtimestamp(start, tz=UTC)
    for months in (1, 12):
        if _add_months(anchor, months).timestamp() == end:
            return int(_add_months(anchor, 2 * months).timestamp())
    return end + length


def _add_months(anchor: datetime, months: int) -> datetime:
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, monthrange(year, month)[1]))


def _prorations(invoice: facts.InvoicePaid) -> list[facts.InvoiceLineFact]:
    return [ln for ln in invoice.lines if ln.is_subscription and ln.proration]


def _upgrade(
    invoice: facts.InvoicePaid, plan_of: PlanOf, period_length: int | None
) -> list[AllowanceGrant]:
    """The prorated difference of the allowances, per unit, rounded down; nothing for a
    downgrade."""
    charges = [ln for ln in _prorations(invoice) if ln.amount > 0]
    credits = [ln for ln in _prorations(invoice) if ln.amount < 0]
    if not charges:
        return []
    length = period_length or max(
        (ln.period_end - ln.period_start for ln in invoice.lines), default=0
    )
    if length <= 0:
        return []
    # Per unit, in units times seconds: exact until the one division at the end.
    totals: dict[str, int] = {}
    priorities: dict[str, int] = {}
    for sign, lines in ((1, charges), (-1, credits)):
        for line in lines:
            plan = plan_of(line)
            if plan is None:
                continue
            seconds = max(line.period_end - line.period_start, 0)
            quantity = max(line.quantity or 1, 1)
            for spec in plan.allowance:
                if spec.is_paid:
                    continue
                share = int(spec.amount) * quantity * seconds
                totals[spec.unit] = totals.get(spec.unit, 0) + sign * share
                priorities.setdefault(spec.unit, spec.priority)
    charge = charges[0]
    new_plan = plan_of(charge)
    out = []
    for index, (unit, total) in enumerate(sorted(totals.items())):
        amount = total // length
        if amount > 0 and new_plan is not None:
            out.append(
                AllowanceGrant(
                    key=f"invoice:{invoice.invoice_id}:{charge.line_id}:u{index}",
                    unit=unit,
                    amount=amount,
                    priority=priorities[unit],
                    expires_at=charge.period_end,
                    plan=new_plan.id,
                )
            )
    return out


def _paid(invoice: facts.InvoicePaid, plan: cat.Plan) -> list[AllowanceGrant]:
    return [
        AllowanceGrant(
            key=f"invoice:{invoice.invoice_id}:paid:{index}",
            unit=spec.unit,
            amount=invoice.amount_paid,
            priority=spec.priority,
            expires_at=None,
            plan=plan.id,
        )
        for index, spec in enumerate(plan.allowance)
        if spec.is_paid and invoice.amount_paid > 0
    ]


def _grant(
    key: str, spec: cat.GrantSpec, amount: int, expires_at: int | None, plan: cat.Plan
) -> AllowanceGrant:
    return AllowanceGrant(
        key=key,
        unit=spec.unit,
        amount=amount,
        priority=spec.priority,
        expires_at=expires_at,
        plan=plan.id,
    )
