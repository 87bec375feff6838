from typing import Any

from billfold.service import ledger as L


def test_given_a_grant_when_spending_then_the_balance_drops(uow_factory: Any, clock: Any) -> None:
    ledger = L.Ledger(uow_factory, clock)
    ledger.grant(L.Grant(key="g", account_id="user_1", unit="credits", amount=100))
    result = ledger.spend(L.Spend(key="s", account_id="user_1", unit="credits", amount=30))
    assert result.balance == 70
    assert ledger.balances("user_1")["credits"].available == 70
