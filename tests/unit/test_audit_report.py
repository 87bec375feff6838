"""The chaos audit's arithmetic (``billfold.audit.report``): each payment against its order, the
clawback rule ``floor(g * r / p)``, and every kind of drift it names."""

from __future__ import annotations

from billfold.audit.report import Booked, Payment, compare


def _payment(**kw: object) -> Payment:
    values: dict[str, object] = {
        "stripe_id": "cs_1",
        "item_kind": "package",
        "item": "popular",
        "account_id": "acct_1",
        "paid": 1499,
        "currency": "usd",
        "grants": {"credits": 1500},
    }
    values.update(kw)
    return Payment(**values)  # type: ignore[arg-type]


def _booked(**kw: object) -> Booked:
    values: dict[str, object] = {
        "order_id": "ord_1",
        "stripe_id": "cs_1",
        "account_id": "acct_1",
        "status": "fulfilled",
        "amount": 1499,
        "refunded_amount": 0,
        "disputed_amount": 0,
        "granted": {"credits": 1500},
        "clawed": {},
        "held": {},
    }
    values.update(kw)
    return Booked(**values)  # type: ignore[arg-type]


def test_given_partial_refunds_and_a_lost_dispute_the_clawback_is_floor_of_the_share() -> None:
    # 1500 credits for 1499: refunds of 300 and 200 take floor(1500 * 500 / 1499) = 500.
    payment = _payment(refunds=[300, 200])
    assert payment.clawed() == {"credits": 500}
    # ...and losing a dispute of the other 999 takes everything, never more.
    payment.dispute, payment.dispute_outcome = 999, "lost"
    assert payment.clawed() == {"credits": 1500}
    payment.dispute_outcome = "won"
    assert payment.clawed() == {"credits": 500}


def test_given_books_that_agree_the_comparison_is_clean() -> None:
    payment = _payment(refunds=[300])
    order = _booked(refunded_amount=300, clawed={"credits": 300})
    result = compare([payment], [order], {("acct_1", "credits"): (1200, 0, 0)}, {})
    assert result.problems == []
    [group] = result.groups
    assert group.clean
    line = group.units["credits"]
    assert (line.granted_expected, line.clawed_expected, line.clawed_actual) == (1500, 300, 300)
    assert group.to_json()["money_refunded"] == {"expected": 300, "actual": 300}


def test_every_kind_of_drift_is_named() -> None:
    refunded = _payment(stripe_id="cs_1", refunds=[1499])
    missing = _payment(stripe_id="cs_2", account_id="acct_2")
    disputed = _payment(stripe_id="cs_3", dispute=1499, dispute_outcome="won")
    books = [
        _booked(order_id="ord_1", stripe_id="cs_1", refunded_amount=1499, status="fulfilled"),
        _booked(order_id="ord_3", stripe_id="cs_3", held={"credits": 1500}, amount=1000),
        _booked(order_id="ord_9", stripe_id="cs_9"),
    ]
    result = compare(
        [refunded, missing, disputed], books, {("acct_1", "credits"): (3000, 0, 0)}, {"tokens": 5}
    )
    drift = result.drift
    assert drift["refunded_not_clawed_back"] == 2  # status not refunded, 0 of 1500 clawed back
    assert drift["paid_not_granted"] == 1
    assert drift["disputed_not_held"] == 1  # a hold left after the dispute was won
    assert drift["amount_mismatch"] == 1  # 1000 booked for 1499 paid
    assert drift["granted_without_payment"] == 2  # ord_9, and 5 tokens from no order
    assert drift["balance_mismatch"] == 2  # acct_1 has 3000, expected 1500; acct_2 nothing
    assert not any(g.clean for g in result.groups)
