"""Dynamic batching of reward requests: many clients, one judge, batched generation.

    batcher = RewardBatcher(lambda jobs: serve_rewards(engine, judge, jobs), config)
    batcher.start()
    result = await batcher.submit(job)        # from any asyncio handler
    batcher.stop()

Requests wait in one queue. The worker thread takes the first, then gathers
more for up to `batch_window_ms`, until `batch_size` judge inputs (a job's
chunks, or its responses when judged alone) are in hand, and serves them in
one call (`serve_rewards` -> `Judge.judge_many`: one batched generation). Only
that thread runs the judge. At most `max_pending` requests wait or run; one
more is refused at once (BusyError: "try again"), never queued without bound.
A request that waits longer than `timeout_s` gets RewardTimeout; if its batch
had not started, it is dropped, else it is judged and saved all the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import Field

from core.errors import BusyError, GRMStudioError
from core.reward import RewardJob, RewardResult
from core.types import Frozen

Serve = Callable[[Sequence[RewardJob]], Sequence[RewardResult | Exception]]


class RewardServerConfig(Frozen):
    """How a reward server batches, bounds and times its requests (`grm-studio serve-reward`)."""

    batch_window_ms: float = Field(
        20.0, ge=0.0, le=60_000.0,
        description="how long the first request of a batch waits for others to join it (ms)")
    batch_size: int = Field(
        16, ge=1, le=4096,
        description="judge inputs (a group's chunks, or single responses) per batched "
        "generation at most; a bigger request is served alone")
    max_pending: int = Field(
        256, ge=1, le=100_000,
        description="requests waiting or being judged at most; one more is answered 503 busy")
    timeout_s: float = Field(
        600.0, gt=0.0, le=86_400.0,
        description="seconds a request may wait for its rewards before it is answered 504")
    max_body_mb: float = Field(
        16.0, gt=0.0, le=1024.0, description="the largest request body, in MiB (413 past it)")
    max_responses: int = Field(
        1024, ge=1, le=100_000, description="responses in one request at most")
    failure_reward: float | None = Field(
        None,
        description="OpenRLHF's /get_reward only: the reward an unscored response gets; "
        "none: such a batch is answered 502 with the reasons (a reward is never a silent 0)")


class RewardTimeout(GRMStudioError):
    """A request waited longer than the server's timeout for its rewards."""


@dataclass
class _Waiting:
    job: RewardJob
    future: concurrent.futures.Future[RewardResult]


@dataclass(frozen=True)
class BatchStats:
    """What the batcher has done so far."""

    batches: int
    requests: int
    failed_batches: int
    requests_per_batch: dict[int, int]  # batch size in requests -> batches of that size
    inputs_per_batch: dict[int, int]  # batch size in judge inputs -> batches of that size


class RewardBatcher:
    """Gathers reward jobs into batches and serves them on one worker thread."""

    def __init__(self, serve: Serve, config: RewardServerConfig) -> None:
        self._serve, self.config = serve, config
        self._queue: queue.Queue[_Waiting | None] = queue.Queue()
        self._pending = threading.BoundedSemaphore(config.max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._by_requests: Counter[int] = Counter()
        self._by_inputs: Counter[int] = Counter()
        self._failed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="reward-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in hand, then stop (requests still queued are not served)."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> BatchStats:
        with self._lock:
            return BatchStats(
                batches=sum(self._by_requests.values()),
                requests=sum(n * c for n, c in self._by_requests.items()),
                failed_batches=self._failed,
                requests_per_batch=dict(sorted(self._by_requests.items())),
                inputs_per_batch=dict(sorted(self._by_inputs.items())))

    async def submit(self, job: RewardJob) -> RewardResult:
        """`job`'s result once its batch is served; BusyError when `max_pending` requests
        are in already, RewardTimeout after `timeout_s`; what serving raised otherwise."""
        if not self._pending.acquire(blocking=False):
            raise BusyError(f"the reward server has {self.config.max_pending} requests in "
                            "hand; try again in a moment")
        future: concurrent.futures.Future[RewardResult] = concurrent.futures.Future()
        future.add_done_callback(lambda _: self._pending.release())
        self._queue.put(_Waiting(job, future))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.config.timeout_s)
        except TimeoutError:
            future.cancel()  # dropped if its batch has not started
            raise RewardTimeout(
                f"no rewards after {self.config.timeout_s:g} s (the judge is busy or slow); "
                "try again, or raise the server's --timeout-s") from None

    def _work(self) -> None:
        carried: _Waiting | None = None
        while True:
            first = carried if carried is not None else self._queue.get()
            if first is None:
                return
            batch, carried = self._gather(first)
            live = [w for w in batch if w.future.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _gather(self, first: _Waiting) -> tuple[list[_Waiting], _Waiting | None]:
        """`first` and what joins it within the window, up to the batch size; the
        request that did not fit starts the next batch."""
        batch, size = [first], first.job.size
        deadline = time.monotonic() + self.config.batch_window_ms / 1000
        while size < self.config.batch_size:
            remaining = deadline - time.monotonic()
            try:
                waiting = self._queue.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                break
            if waiting is None:
                self._queue.put(None)  # stop after this batch
                break
            if size + waiting.job.size > self.config.batch_size:
                return batch, waiting
            batch.append(waiting)
            size += waiting.job.size
        return batch, None

    def _run(self, live: list[_Waiting]) -> None:
        jobs = [w.job for w in live]
        try:
            results: Sequence[RewardResult | Exception] = self._serve(jobs)
        except Exception as err:  # noqa: BLE001 - the judge's failure goes to every request
            results = [err] * len(live)
            with self._lock:
                self._failed += 1
        with self._lock:
            self._by_requests[len(live)] += 1
            self._by_inputs[sum(j.size for j in jobs)] += 1
        for waiting, result in zip(live, results, strict=True):
            if isinstance(result, Exception):
                waiting.future.set_exception(result)
            else:
                waiting.future.set_result(result)
