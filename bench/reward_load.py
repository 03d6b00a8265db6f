"""Load test of the reward server: N concurrent clients for a bounded time on loopback.

Starts the reward server in this process (uvicorn on 127.0.0.1, a free port)
over a throw-away SQLite store, judging with the rule judge (`bench.rule_judge`:
`--call-ms` a batch plus `--prompt-ms` a prompt, as a model decoding a batch
would take) or, with `--real`, the configured judge (`GRM_STUDIO_MODEL`, e.g.
embedded). N clients each send `POST /v1/reward` requests (a group of G
responses) back to back for `--seconds`. Then it checks the store against what
was answered: every answered request is stored once (its `served_reward` rows,
under its request id, cover each of its responses exactly once), and prints
requests/s, p50/p95 latency and the batch sizes the server formed.

    .venv/bin/python -m bench.reward_load                       # 16 clients, 20 s, rule judge
    .venv/bin/python -m bench.reward_load --clients 4 --seconds 60 --real --k 1
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rule_judge import RuleJudgeBackend
from core.config import Settings
from core.engine import Judge
from core.reward_batcher import RewardServerConfig
from core.reward_clients import run_blocking
from core.store.db import make_engine, upgrade
from core.store.schema import ServedReward
from webapp.reward_server import reward_app


@contextmanager
def served(app: Any, timeout_s: float = 60.0) -> Iterator[str]:
    """Serve the ASGI `app` on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="reward-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the reward server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)


@dataclass
class LoadReport:
    clients: int
    seconds: float
    group: int
    latencies_s: list[float] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # request ids
    errors: list[str] = field(default_factory=list)
    stored_once: int = 0  # answered requests whose rows cover each response exactly once
    misstored: list[str] = field(default_factory=list)
    batcher: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        lat = sorted(self.latencies_s) or [0.0]
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        batches = self.batcher.get("requests_per_batch", {})
        inputs = self.batcher.get("inputs_per_batch", {})
        mean = (sum(int(n) * c for n, c in batches.items()) / max(1, sum(batches.values())))
        answered = len(self.answered)
        return [
            (f"{self.clients} clients for {self.seconds:.0f} s, groups of {self.group}: "
             f"{answered} requests answered, {answered / self.seconds:.1f} requests/s, "
             f"{answered * self.group / self.seconds:.1f} responses/s"),
            f"  latency p50 {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms",
            (f"  batches: {self.batcher.get('batches', 0)}, mean {mean:.1f} requests a batch; "
             f"requests per batch {batches}; judge inputs per batch {inputs}"),
            (f"  stored once: {self.stored_once} of {answered} answered; "
             f"errors: {len(self.errors)}"),
            *[f"    {e}" for e in (self.misstored + self.errors)[:10]],
        ]


async def _client(url: str, until: float, group: int, k: int, seed: int,
                  report: LoadReport) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=600) as client:
        while time.monotonic() < until:
            responses = [" ".join(["word"] * rng.randint(1, 12)) for _ in range(group)]
            body = {"query": f"Say something ({rng.random():.6f}).", "responses": responses,
                    "k": k, "run": "load", "step": seed}
            started = time.monotonic()
            try:
                answer = await client.post(url + "/v1/reward", json=body)
            except httpx.HTTPError as err:
                report.errors.append(f"{type(err).__name__}: {err}")
                continue
            if answer.status_code != 200:
                report.errors.append(f"{answer.status_code}: {answer.text[:200]}")
                continue
            report.latencies_s.append(time.monotonic() - started)
            report.answered.append(answer.json()["request_id"])


def check_stored(engine: Any, report: LoadReport) -> None:
    """Count the answered requests stored once, and name those that are not."""
    covered: dict[str, list[int]] = defaultdict(list)
    with Session(engine) as session:
        for request_id, responses in session.execute(
                select(ServedReward.request_id, ServedReward.responses)):
            covered[request_id].extend(responses)
    for request_id in report.answered:
        if sorted(covered.get(request_id, [])) == list(range(report.group)):
            report.stored_once += 1
        else:
            report.misstored.append(f"request {request_id}: rows cover {covered.get(request_id)}")


def run_load(*, clients: int = 16, seconds: float = 20.0, group: int = 4, k: int = 4,
             real: bool = False, call_ms: float = 30.0, prompt_ms: float = 1.0,
             config: RewardServerConfig | None = None) -> LoadReport:
    report = LoadReport(clients=clients, seconds=seconds, group=group)
    with tempfile.TemporaryDirectory(prefix="grm-reward-load-") as scratch:
        settings = Settings(data_dir=Path(scratch), k=k, max_new_tokens=256)
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
        judge = None if real else Judge(
            RuleJudgeBackend(call_s=call_ms / 1000, prompt_s=prompt_ms / 1000), rescue=True)
        app = reward_app(settings, engine, config or RewardServerConfig(), judge=judge)
        with served(app) as url, httpx.Client(timeout=600) as probe:
            while probe.get(url + "/ready").status_code != 200:  # a real judge loads first
                time.sleep(0.5)
            until = time.monotonic() + seconds

            async def every() -> None:
                await asyncio.gather(*(_client(url, until, group, k, seed, report)
                                       for seed in range(clients)))

            run_blocking(every())
            report.batcher = probe.get(url + "/health").json()["batcher"]
        check_stored(engine, report)
        engine.dispose()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--group", type=int, default=4, help="responses per request")
    parser.add_argument("--k", type=int, default=4, help="samples per judgement")
    parser.add_argument("--real", action="store_true", help="the configured judge, not the rule")
    parser.add_argument("--call-ms", type=float, default=30.0, help="rule judge: ms a batch")
    parser.add_argument("--prompt-ms", type=float, default=1.0, help="rule judge: ms a prompt")
    parser.add_argument("--batch-window-ms", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    config = RewardServerConfig(batch_window_ms=args.batch_window_ms, batch_size=args.batch_size)
    report = run_load(clients=args.clients, seconds=args.seconds, group=args.group, k=args.k,
                      real=args.real, call_ms=args.call_ms, prompt_ms=args.prompt_ms,
                      config=config)
    print("\n".join(report.lines()))
    sys.exit(0 if not report.errors and report.stored_once == len(report.answered) else 1)


if __name__ == "__main__":
    main()
