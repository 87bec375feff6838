"""The combiner on its own: concurrent requests share batches, each gets its own answer, a batch
that fails as a whole is made one by one, and nobody waits when nothing is queued."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from billfold.domain import errors
from billfold.service.combining import Combiner


class Recorder:
    """A batch writer that records its batches and answers each request with its double."""

    def __init__(self, delay: float = 0.0, commit_delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.singles: list[int] = []
        self.delay = delay
        self.commit_delay = commit_delay
        self.fail_batches = False
        self.storage_down = False
        self.lock = threading.Lock()
        self.active = 0
        self.most_active = 0

    def run_batch(
        self, items: Sequence[int], committing: Callable[[], None] = lambda: None
    ) -> list[int | errors.BillfoldError]:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay)
            if self.storage_down:
                raise errors.StorageUnavailable("down")
            if self.fail_batches:
                raise errors.Contention("deadlock")
            if self.commit_delay:
                committing()
                time.sleep(self.commit_delay)
            self.batches.append(list(items))
            return [
                errors.InsufficientBalance(unit="credits", requested=i, available=0)
                if i < 0
                else i * 2
                for i in items
            ]
        finally:
            with self.lock:
                self.active -= 1

    def run_one(self, item: int) -> int:
        self.singles.append(item)
        if item < 0:
            raise errors.InsufficientBalance(unit="credits", requested=item, available=0)
        return item * 2


def submit_all(combiner: Combiner[int, int], items: list[int]) -> list[object]:
    gate = threading.Barrier(len(items))

    def one(item: int) -> object:
        gate.wait()
        try:
            return combiner.submit(item)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_a_lone_request_is_written_at_once_by_its_own_thread() -> None:
    recorder = Recorder()
    combiner = Combiner(recorder.run_batch, recorder.run_one)
    assert combiner.submit(21) == 42
    assert recorder.batches == [[21]]


def test_concurrent_requests_share_batches_and_each_gets_its_own_answer() -> None:
    recorder = Recorder(delay=0.02)
    combiner = Combiner(recorder.run_batch, recorder.run_one, max_batch=8)
    items = [*range(1, 25), -5]
    answers = submit_all(combiner, items)
    for item, answer in zip(items, answers, strict=True):
        if item < 0:
            assert isinstance(answer, errors.InsufficientBalance)
        else:
            assert answer == item * 2
    stats = combiner.stats()
    assert stats.requests == len(items)
    assert stats.largest > 1  # they did share
    assert max(len(b) for b in recorder.batches) <= 8
    assert sorted(i for b in recorder.batches for i in b) == sorted(items)


def test_a_batch_that_fails_as_a_whole_is_made_one_request_at_a_time() -> None:
    recorder = Recorder(delay=0.01)
    recorder.fail_batches = True
    combiner = Combiner(recorder.run_batch, recorder.run_one)
    items = [1, 2, -3, 4]
    answers = submit_all(combiner, items)
    assert answers[:2] == [2, 4]
    assert isinstance(answers[2], errors.InsufficientBalance)
    assert answers[3] == 8
    assert sorted(recorder.singles) == sorted(items)
    assert combiner.stats().fallbacks >= 1


def test_the_database_down_fails_every_request_of_the_batch_without_retrying() -> None:
    recorder = Recorder()
    recorder.storage_down = True
    combiner = Combiner(recorder.run_batch, recorder.run_one)
    with pytest.raises(errors.StorageUnavailable):
        combiner.submit(1)
    assert recorder.singles == []


def test_the_next_batch_starts_when_the_one_before_is_committing_up_to_writers_in_flight() -> None:
    recorder = Recorder(delay=0.02, commit_delay=0.03)
    combiner = Combiner(recorder.run_batch, recorder.run_one, max_batch=2, writers=3)
    answers = submit_all(combiner, list(range(1, 19)))
    assert answers == [i * 2 for i in range(1, 19)]
    assert 1 < recorder.most_active <= 3
    assert combiner.stats().handoffs > 0
    one = Recorder(delay=0.02, commit_delay=0.03)
    single_writer = Combiner(one.run_batch, one.run_one, max_batch=2, writers=1)
    submit_all(single_writer, list(range(1, 9)))
    assert one.most_active == 1
    assert single_writer.stats().handoffs == 0


def _in_background(fn: Callable[[int], int], item: int) -> Future[int]:
    future: Future[int] = Future()

    def run() -> None:
        try:
            future.set_result(fn(item))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def _queued(combiner: Combiner[int, int], item: int) -> Future[int]:
    """Submit ``item`` from a thread of its own, once it waits in the queue (nothing else is)."""
    future = _in_background(combiner.submit, item)
    while combiner.stats().queued < 1:
        time.sleep(0.001)
    return future


def _first_writing_second_queued(
    combiner: Combiner[int, int], batches: list[list[int]]
) -> tuple[Future[int], Future[int]]:
    """Request 1 writing its batch (``batches`` has it), request 2 waiting in the queue."""
    first = _in_background(combiner.submit, 1)
    while not batches:
        time.sleep(0.001)
    return first, _queued(combiner, 2)


def test_a_request_queued_after_the_next_batch_finished_first_is_still_written() -> None:
    """The first batch hands on at its commit; the batch it handed to finishes before it does;
    a request that arrives then waits in the queue. When the first batch ends, no other writer
    is left: it passes the role on, and the request is written (it was left waiting forever)."""
    second_queued = threading.Event()
    first_may_end = threading.Event()
    batches: list[list[int]] = []

    def run_batch(
        items: Sequence[int], committing: Callable[[], None]
    ) -> list[int | errors.BillfoldError]:
        batches.append(list(items))
        if items[0] == 1:
            assert second_queued.wait(10)
            committing()  # request 2 is queued: it writes the next batch now
            assert first_may_end.wait(10)
        return [i * 2 for i in items]

    combiner: Combiner[int, int] = Combiner(run_batch, lambda i: i * 2, writers=2)
    # Daemon threads: a request left waiting fails the test (a timeout), not the whole run.
    first, second = _first_writing_second_queued(combiner, batches)
    second_queued.set()
    assert second.result(timeout=10) == 4  # handed to, written, finished: the first still going
    third = _queued(combiner, 3)
    first_may_end.set()
    assert first.result(timeout=10) == 2
    assert third.result(timeout=10) == 6
    assert batches == [[1], [2], [3]]
    assert combiner.stats().handoffs == 1


def test_a_batch_that_ends_while_the_next_is_committing_starts_the_one_after_at_once() -> None:
    """Two writers: the first batch hands on at its commit; the second is committing too when a
    request queues. When the first ends, nothing is deciding: the queued request writes the third
    batch at once, beside the second's commit (it waited for the second's end before)."""
    gates = {name: threading.Event() for name in ("queued", "first_ends", "second_ends")}
    second_committing = threading.Event()
    batches: list[list[int]] = []

    def run_batch(
        items: Sequence[int], committing: Callable[[], None]
    ) -> list[int | errors.BillfoldError]:
        batches.append(list(items))
        if items[0] == 1:
            assert gates["queued"].wait(10)
            committing()  # request 2 is queued: it writes the next batch now
            assert gates["first_ends"].wait(10)
        elif items[0] == 2:
            committing()  # nothing queued yet: nobody to hand on to
            second_committing.set()
            assert gates["second_ends"].wait(10)
        return [i * 2 for i in items]

    combiner: Combiner[int, int] = Combiner(run_batch, lambda i: i * 2, writers=2)
    first, second = _first_writing_second_queued(combiner, batches)
    gates["queued"].set()
    assert second_committing.wait(10)
    third = _queued(combiner, 3)  # two batches in flight: it waits
    gates["first_ends"].set()
    try:
        assert first.result(timeout=10) == 2
        assert third.result(timeout=10) == 6  # while the second is still committing
    finally:
        gates["second_ends"].set()
    assert second.result(timeout=10) == 4
    assert batches == [[1], [2], [3]]


def test_a_second_batch_does_not_start_while_the_first_is_still_deciding() -> None:
    """Before its commit a batch is still gathering work's worth of queue: a request that arrives
    then waits for it (a writer started at once would write batches of one beside it)."""
    recorder = Recorder(delay=0.03)  # never calls committing
    combiner = Combiner(recorder.run_batch, recorder.run_one, max_batch=64, writers=4)
    answers = submit_all(combiner, list(range(1, 17)))
    assert answers == [i * 2 for i in range(1, 17)]
    assert recorder.most_active == 1
    assert combiner.stats().handoffs == 0
    assert combiner.stats().batches <= 3  # the first request's, then everyone queued meanwhile


def test_handing_on_at_the_commit_works_for_requests_awaited_on_a_loop() -> None:
    recorder = Recorder(delay=0.01, commit_delay=0.02)
    combiner = Combiner(recorder.run_batch, recorder.run_one, max_batch=4, writers=2)
    items = list(range(1, 41))
    answers = asyncio.run(_await_all(combiner, items))
    assert answers == [i * 2 for i in items]
    assert combiner.stats().handoffs > 0
    assert recorder.most_active == 2


def test_an_unexpected_error_in_a_single_request_reaches_only_that_request() -> None:
    def run_batch(
        items: Sequence[int], committing: Callable[[], None]
    ) -> list[int | errors.BillfoldError]:
        raise RuntimeError("bug in the batch path")

    def run_one(item: int) -> int:
        if item == 2:
            raise ZeroDivisionError("only this one")
        return item

    combiner: Combiner[int, int] = Combiner(run_batch, run_one)
    answers = submit_all(combiner, [1, 2, 3])
    assert answers[0] == 1
    assert answers[2] == 3
    assert isinstance(answers[1], ZeroDivisionError)


@pytest.mark.parametrize("bad", [0, -1])
def test_limits_must_be_positive(bad: int) -> None:
    recorder = Recorder()
    with pytest.raises(ValueError, match="at least 1"):
        Combiner(recorder.run_batch, recorder.run_one, max_batch=bad)
    with pytest.raises(ValueError, match="at least 1"):
        Combiner(recorder.run_batch, recorder.run_one, writers=bad)


# --- requests awaited on an event loop (the HTTP routes) -----------------------------------------


async def _await_all(combiner: Combiner[int, int], items: list[int]) -> list[object]:
    async def one(item: int) -> object:
        try:
            return await combiner.submit_async(item)
        except Exception as exc:
            return exc

    return list(await asyncio.gather(*(one(i) for i in items)))


def test_awaited_requests_share_batches_each_gets_its_own_answer_and_the_loop_runs_meanwhile() -> (
    None
):
    recorder = Recorder(delay=0.02)
    combiner = Combiner(recorder.run_batch, recorder.run_one, max_batch=8)
    items = [*range(1, 25), -5]

    async def main() -> tuple[list[object], int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        tick = asyncio.create_task(ticker())
        answers = await _await_all(combiner, items)
        done.set()
        await tick
        return answers, ticks

    answers, ticks = asyncio.run(main())
    for item, answer in zip(items, answers, strict=True):
        if item < 0:
            assert isinstance(answer, errors.InsufficientBalance)
        else:
            assert answer == item * 2
    assert ticks >= 10  # the loop was never blocked while the batches were written
    assert combiner.stats().largest > 1
    assert max(len(b) for b in recorder.batches) <= 8
    assert sorted(i for b in recorder.batches for i in b) == sorted(items)
    combiner.close()


def test_awaited_and_threaded_requests_mix_in_one_queue_and_writers_stay_bounded() -> None:
    recorder = Recorder(delay=0.01)
    combiner = Combiner(recorder.run_batch, recorder.run_one, max_batch=4, writers=2)
    threaded = list(range(1, 21))
    awaited = list(range(101, 141))

    def on_a_loop() -> list[object]:
        return asyncio.run(_await_all(combiner, awaited))

    with ThreadPoolExecutor(2) as pool:
        loop_answers = pool.submit(on_a_loop)
        thread_answers = submit_all(combiner, threaded)
        assert loop_answers.result(timeout=30) == [i * 2 for i in awaited]
    assert thread_answers == [i * 2 for i in threaded]
    assert 1 <= recorder.most_active <= 2
    assert sorted(i for b in recorder.batches for i in b) == sorted(threaded + awaited)
    stats = combiner.stats()
    assert stats.requests == len(threaded) + len(awaited)
    combiner.close()
    assert combiner.submit(5) == 10  # closed: a new writer pool when one is needed again


def test_an_awaited_batch_that_fails_as_a_whole_is_made_one_by_one_and_storage_down_fails_all() -> (
    None
):
    recorder = Recorder(delay=0.01)
    recorder.fail_batches = True
    combiner = Combiner(recorder.run_batch, recorder.run_one)
    answers = asyncio.run(_await_all(combiner, [1, 2, -3, 4]))
    assert answers[:2] == [2, 4]
    assert isinstance(answers[2], errors.InsufficientBalance)
    assert answers[3] == 8
    down = Recorder()
    down.storage_down = True
    failing = Combiner(down.run_batch, down.run_one)
    with pytest.raises(errors.StorageUnavailable):
        asyncio.run(failing.submit_async(1))
    assert down.singles == []


def test_a_request_given_up_by_its_caller_is_still_written_and_answers_nobody() -> None:
    recorder = Recorder(delay=0.05)
    combiner = Combiner(recorder.run_batch, recorder.run_one)

    async def main() -> None:
        task = asyncio.create_task(combiner.submit_async(7))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await combiner.submit_async(8) == 16  # the combiner goes on

    asyncio.run(main())
    assert [7] in recorder.batches
    combiner.close()
