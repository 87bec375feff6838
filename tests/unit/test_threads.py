"""Kept threads: one pool from round to round, a new one when the size changes or after close."""

from __future__ import annotations

from billfold.service.threads import KeptThreads


def test_the_pool_is_kept_between_rounds_and_replaced_when_its_size_changes() -> None:
    kept = KeptThreads("test-kept")
    first = kept.get(2)
    assert kept.get(2) is first
    assert list(first.map(lambda x: x * 2, [1, 2, 3])) == [2, 4, 6]
    resized = kept.get(3)
    assert resized is not first
    assert resized.submit(lambda: "still works").result() == "still works"
    kept.close()
    kept.close()  # a second close has nothing to do
    again = kept.get(3)
    assert again is not resized
    assert again.submit(lambda: 7).result() == 7
    kept.close()
