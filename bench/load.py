"""Load test: N annotators label through the served studio's API at once.

Starts `grm-studio serve` on a loopback port over a store (a throw-away
PostgreSQL server by default, or --database-url), makes N annotator accounts,
and runs N clients for --seconds: each signs in, asks for its next unlabelled
item and labels it; once its queue is empty it corrects earlier labels. Then
it checks the store against what the server acknowledged: no request failed,
every acknowledged label is stored once, each annotator has one current label
per item. Prints p50/p95 latency and throughput.

    .venv/bin/python -m bench.load                  # 20 annotators, 2 minutes, PostgreSQL
    .venv/bin/python -m bench.load --annotators 5 --seconds 20 --database-url sqlite:////tmp/x.db
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store.accounts import set_account
from core.store.db import make_engine, upgrade
from core.store.labels import is_current
from core.store.schema import Annotation, Annotator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Client:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"next": [], "label": []})
    acknowledged: list[int] = field(default_factory=list)  # label ids the server returned
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    annotators: int
    seconds: float
    requests: int
    labels_acknowledged: int
    labels_stored: int  # of the acknowledged ones
    rows: int  # label rows these annotators have in the store
    errors: tuple[str, ...]
    duplicate_current: int  # (annotator, item) pairs with more than one current label
    p50_ms: dict[str, float]
    p95_ms: dict[str, float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def lines(self) -> list[str]:
        lines = [(
            f"{self.annotators} annotators for {self.seconds:.0f} s: {self.requests} requests, "
            f"{self.throughput:.1f} requests/s, {self.labels_acknowledged} labels acknowledged, "
            f"{self.labels_stored} of them stored, {self.rows} label rows in all"
        )]
        lines += [f"  {kind:5}  p50 {self.p50_ms[kind]:7.1f} ms   p95 {self.p95_ms[kind]:7.1f} ms"
                  for kind in ("next", "label")]
        lines.append(f"  errors: {len(self.errors)}; duplicated current labels: {self.duplicate_current}")
        lines += [f"    {e}" for e in self.errors[:10]]
        return lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def _annotate(client: Client, base: str, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30) as http:
        signed = http.post("/login", data={"name": client.name, "password": f"{client.name}-pw-123"})
        if signed.status_code != 303:
            client.errors.append(f"{client.name}: sign-in answered {signed.status_code}")
            return
        labelled: list[tuple[int, int]] = []  # (item id, responses)
        while time.monotonic() < deadline:
            try:
                start = time.perf_counter()
                answer = http.get("/api/v1/queues/unlabelled/next")
                client.latencies["next"].append(time.perf_counter() - start)
                if answer.status_code == 200:
                    item = answer.json()
                    target = (item["item_id"], len(item["responses"]))
                    labelled.append(target)
                elif answer.status_code == 204 and labelled:
                    target = rng.choice(labelled)  # queue done: correct an earlier label
                else:
                    client.errors.append(f"{client.name}: next answered {answer.status_code}")
                    continue
                body = {"item_id": target[0], "best": rng.randrange(target[1]), "note": client.name}
                start = time.perf_counter()
                made = http.post("/api/v1/labels", json=body)
                client.latencies["label"].append(time.perf_counter() - start)
                if made.status_code == 201:
                    client.acknowledged.append(made.json()["id"])
                else:
                    client.errors.append(f"{client.name}: label answered {made.status_code} {made.text[:200]}")
            except httpx.HTTPError as err:
                client.errors.append(f"{client.name}: {type(err).__name__}: {err}")


def run_load(database_url: str, annotators: int = 20, seconds: float = 120.0) -> LoadReport:
    """Serve the studio on `database_url` and drive it with `annotators` clients."""
    engine = make_engine(database_url)
    upgrade(engine)
    names = [f"load-{i:02d}" for i in range(annotators)]
    for name in names:
        set_account(engine, name, "annotator", f"{name}-pw-123")
    port = _free_port()
    env = {**os.environ, "GRM_STUDIO_DATABASE_URL": database_url,
           "GRADIO_ANALYTICS_ENABLED": "False"}
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, server, log)
            clients = [Client(name) for name in names]
            began = time.monotonic()
            threads = [
                threading.Thread(target=_annotate, args=(c, base, began + seconds, i))
                for i, c in enumerate(clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - began
        finally:
            server.terminate()
            server.wait(timeout=30)
    acknowledged = [i for c in clients for i in c.acknowledged]
    with Session(engine) as session:
        stored = session.scalar(
            select(func.count()).select_from(Annotation).join(Annotator)
            .where(Annotator.name.in_(names), Annotation.id.in_(acknowledged))
        ) if acknowledged else 0
        rows = session.scalar(
            select(func.count()).select_from(Annotation).join(Annotator)
            .where(Annotator.name.in_(names))
        )
        current = session.execute(
            select(Annotation.annotator_id, Annotation.item_id).join(Annotator)
            .where(Annotator.name.in_(names), is_current())
        ).all()
    engine.dispose()
    duplicates = sum(1 for n in Counter(current).values() if n > 1)
    latencies = {kind: [v for c in clients for v in c.latencies[kind]] for kind in ("next", "label")}
    return LoadReport(
        annotators=annotators,
        seconds=elapsed,
        requests=sum(len(v) for v in latencies.values()),
        labels_acknowledged=len(acknowledged),
        labels_stored=stored,
        rows=rows,
        errors=tuple(e for c in clients for e in c.errors),
        duplicate_current=duplicates,
        p50_ms={k: _percentile(v, 50) for k, v in latencies.items()},
        p95_ms={k: _percentile(v, 95) for k, v in latencies.items()},
    )


def _wait_until_up(base: str, server: subprocess.Popen, log: object) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            raise RuntimeError(f"the studio exited: {log.read().decode()[-2000:]}")  # type: ignore[attr-defined]
        try:
            httpx.get(f"{base}/login", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.5)
        else:
            return
    raise RuntimeError("the studio did not answer within 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--database-url", help="default: a throw-away PostgreSQL server")
    args = parser.parse_args()
    server = None
    url = args.database_url
    if url is None:
        from tests.postgres import start_postgres

        server = start_postgres()
        if isinstance(server, str):
            sys.exit(f"cannot start PostgreSQL: {server} (or pass --database-url)")
        url = server.url
    try:
        report = run_load(url, args.annotators, args.seconds)
    finally:
        if server is not None:
            server.stop()
    print("\n".join(report.lines()))
    ok = not report.errors and report.duplicate_current == 0
    ok = ok and report.labels_stored == report.labels_acknowledged == report.rows
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
