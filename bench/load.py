"""Load test: N annotators label through the served studio's JSON API at once.

Starts `grm-studio serve` (uvicorn on a loopback port) over a store: a
throw-away PostgreSQL server by default, a throw-away SQLite file, or
--database-url. It imports a dataset of --items generated items and makes N
annotator accounts, then runs N HTTP clients, as a script would: each signs in
once (POST /login; a 503 "busy" or 429 is retried after its Retry-After, as a
client should, and counted), and once all are signed in, each loops for
--seconds: the next item of the unlabelled queue, a label on it (a correction
of one of its earlier labels once the queue is empty), and every
--undo-every'th label an undo. Each client keeps what the server acknowledged:
every label id, every undo and what it restored, and its own current label per
item.

Then the store is audited against the clients (`audit`): every acknowledged
label is stored exactly once, nothing is stored that was not acknowledged (an
undo that withdrew a label stores a retracted row the answer has no id for: it
is matched to the undo), each annotator's current label per item is the one
its client holds, and no request failed. Prints requests, labels/s and
p50/p95/p99 latency; exits 1 if anything is off.

    .venv/bin/python -m bench.load          # 20 annotators, 2 minutes, PostgreSQL
    .venv/bin/python -m bench.load --annotators 100 --seconds 300 --database postgresql
    .venv/bin/python -m bench.load --annotators 5 --seconds 20 --database-url sqlite:////tmp/x.db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.reward_clients import run_blocking
from core.store.accounts import set_account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.schema import Annotation, Annotator

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("next", "label", "undo")  # the timed requests of the labelling loop
SIGN_IN_PATIENCE_S = 300.0  # a client gives up signing in after this long
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Client:
    """One annotator's HTTP client and what the server told it."""

    name: str
    index: int
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"sign_in": [], **{k: [] for k in KINDS}})
    acknowledged: list[int] = field(default_factory=list)  # ids of labels answered 201
    undone: dict[int, int | None] = field(default_factory=dict)  # undone id -> restored id
    current: dict[int, int] = field(default_factory=dict)  # item -> my current label id
    responses: dict[int, int] = field(default_factory=dict)  # item -> how many it has
    errors: list[str] = field(default_factory=list)
    sign_in_retries: Counter[int] = field(default_factory=Counter)  # status -> retries

    @property
    def password(self) -> str:
        return f"{self.name}-pw-123"


@dataclass(frozen=True)
class Audit:
    """The store checked against what the clients were told."""

    stored: int  # label rows of these annotators
    lost: tuple[int, ...]  # acknowledged label ids (or restored ones) not stored
    duplicated: tuple[int, ...]  # ids acknowledged more than once
    unacknowledged: tuple[int, ...]  # stored rows no answer accounts for
    wrong_current: tuple[str, ...]  # (annotator, item) whose current label differs

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unacknowledged or self.wrong_current)


@dataclass(frozen=True)
class LoadReport:
    annotators: int
    seconds: float  # of the labelling loop, after every sign-in
    items: int
    requests: int
    labels_acknowledged: int
    undos: int
    sign_in_retries: Counter[int]  # answers retried after Retry-After, by status
    audit: Audit
    errors: tuple[str, ...]
    latency_ms: dict[str, tuple[float, float, float]]  # kind -> p50, p95, p99
    server_log: str  # the server's last lines, when something failed

    @property
    def ok(self) -> bool:
        return not self.errors and self.audit.ok

    def lines(self) -> list[str]:
        a = self.audit
        lines = [
            (f"{self.annotators} annotators for {self.seconds:.0f} s on {self.items} items: "
             f"{self.requests} requests ({self.requests / self.seconds:.1f}/s), "
             f"{self.labels_acknowledged} labels acknowledged "
             f"({self.labels_acknowledged / self.seconds:.1f}/s), {self.undos} undos"),
            (f"  sign-in: {self.annotators} clients, {self.sign_in_retries.total()} retries "
             f"after Retry-After ({self.sign_in_retries[503]} on 503 busy, "
             f"{self.sign_in_retries[429]} on 429 too many failures)"),
        ]
        for kind, (p50, p95, p99) in self.latency_ms.items():
            lines.append(f"  {kind:8} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   p99 {p99:8.1f} ms")
        lines.append(
            f"  errors: {len(self.errors)}; stored rows: {a.stored}; lost: {len(a.lost)}; "
            f"duplicated: {len(a.duplicated)}; stored but not acknowledged: "
            f"{len(a.unacknowledged)}; wrong current label: {len(a.wrong_current)}")
        lines += [f"    {e}" for e in self.errors[:10]]
        for what, values in (("lost", a.lost), ("duplicated", a.duplicated),
                             ("not acknowledged", a.unacknowledged),
                             ("wrong current", a.wrong_current)):
            if values:
                lines.append(f"    {what}: {', '.join(map(str, values[:10]))}")
        if self.server_log:
            lines += ["  server log (last lines):", self.server_log]
        return lines


@dataclass(frozen=True)
class Row:
    """A stored label row, as the audit reads it."""

    id: int
    annotator: str
    item_id: int
    supersedes_id: int | None
    retracted: bool


def audit(clients: Iterable[Client], rows: Iterable[Row]) -> Audit:
    """Check `rows` (every label row of the clients' annotators) against what the
    clients were told. Current labels are worked out here from the chains
    (a row no other row supersedes, not retracted), not by the store's query."""
    clients = list(clients)
    rows = list(rows)
    by_id = {r.id: r for r in rows}
    told = Counter(i for c in clients for i in c.acknowledged)
    told.update(i for c in clients for i in c.undone.values() if i is not None)
    withdrawn = {i for c in clients for i, restored in c.undone.items() if restored is None}
    superseded = {r.supersedes_id for r in rows if r.supersedes_id is not None}
    unacknowledged = [
        r.id for r in rows
        if r.id not in told and not (r.retracted and r.supersedes_id in withdrawn)
    ]
    stored_current = {(r.annotator, r.item_id): r.id for r in rows
                      if r.id not in superseded and not r.retracted}
    held_current = {(c.name, item): i for c in clients for item, i in c.current.items()}
    wrong = [f"{who}/item {item}" for who, item in sorted(stored_current.keys() | held_current.keys())
             if stored_current.get((who, item)) != held_current.get((who, item))]
    return Audit(
        stored=len(rows),
        lost=tuple(sorted(i for i in told if i not in by_id)),
        duplicated=tuple(sorted(i for i, n in told.items() if n > 1)),
        unacknowledged=tuple(sorted(unacknowledged)),
        wrong_current=tuple(wrong),
    )


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0] * 1000 if values else float("nan")
        return v, v, v
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


async def _sign_in(client: Client, http: httpx.AsyncClient, rng: random.Random) -> bool:
    """POST /login until it answers 303, retrying 503/429 after Retry-After."""
    form = {"name": client.name, "password": client.password}
    began = time.perf_counter()
    while True:
        answer = await http.post("/login", data=form)
        if answer.status_code == 303:
            client.latencies["sign_in"].append(time.perf_counter() - began)
            return True
        waited = time.perf_counter() - began
        if answer.status_code not in (429, 503) or waited > SIGN_IN_PATIENCE_S:
            client.errors.append(f"{client.name}: sign-in answered {answer.status_code} "
                                 f"after {waited:.0f} s")
            return False
        client.sign_in_retries[answer.status_code] += 1
        after = float(answer.headers.get("retry-after", "1"))
        await asyncio.sleep(after + rng.uniform(0, 0.5))  # jitter: no thundering herd


async def _label_once(client: Client, http: httpx.AsyncClient, rng: random.Random,
                      dataset: str, undo_every: int) -> None:
    """One turn: the next item (or an earlier one to correct), a label, maybe an undo."""
    start = time.perf_counter()
    answer = await http.get("/api/v1/queues/unlabelled/next", params={"dataset": dataset})
    client.latencies["next"].append(time.perf_counter() - start)
    if answer.status_code == 200:
        item = answer.json()
        item_id = item["item_id"]
        client.responses[item_id] = len(item["responses"])
    elif answer.status_code == 204 and client.current:
        item_id = rng.choice(sorted(client.current))  # queue done: correct an earlier label
    elif answer.status_code == 204:
        await asyncio.sleep(0.5)  # nothing of mine to correct yet
        return
    else:
        client.errors.append(f"{client.name}: next answered {answer.status_code} {answer.text[:200]}")
        return
    best = rng.choice([*range(client.responses[item_id]), None])  # None: a tie
    body = {"item_id": item_id, "best": best, "note": client.name}
    start = time.perf_counter()
    made = await http.post("/api/v1/labels", json=body)
    client.latencies["label"].append(time.perf_counter() - start)
    if made.status_code != 201:
        client.errors.append(f"{client.name}: label answered {made.status_code} {made.text[:200]}")
        return
    label = made.json()
    client.acknowledged.append(label["id"])
    if label["supersedes_id"] != client.current.get(item_id):
        client.errors.append(f"{client.name}: label {label['id']} supersedes "
                             f"{label['supersedes_id']}, not {client.current.get(item_id)}")
    client.current[item_id] = label["id"]
    if (len(client.acknowledged) + client.index) % undo_every:
        return
    start = time.perf_counter()
    undone = await http.post(f"/api/v1/labels/{label['id']}/undo")
    client.latencies["undo"].append(time.perf_counter() - start)
    if undone.status_code != 200:
        client.errors.append(f"{client.name}: undo answered {undone.status_code} {undone.text[:200]}")
        return
    restored = undone.json()["restored"]
    client.undone[label["id"]] = restored["id"] if restored else None
    if restored:
        client.current[item_id] = restored["id"]
    else:
        del client.current[item_id]


async def _drive(clients: list[Client], base: str, seconds: float, dataset: str,
                 undo_every: int) -> float:
    """Sign every client in, then let them all label for `seconds` from the moment
    the last one is in; returns the labelling time."""
    everyone_in = asyncio.Barrier(len(clients))
    began: list[float] = []

    async def annotate(client: Client) -> None:
        rng = random.Random(client.index)
        async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S) as http:
            try:
                signed = await _sign_in(client, http, rng)
            except httpx.HTTPError as err:
                client.errors.append(f"{client.name}: sign-in: {type(err).__name__}: {err}")
                signed = False
            await everyone_in.wait()
            began.append(time.monotonic())
            deadline = began[0] + seconds
            while signed and time.monotonic() < deadline:
                try:
                    await _label_once(client, http, rng, dataset, undo_every)
                except httpx.HTTPError as err:
                    client.errors.append(f"{client.name}: {type(err).__name__}: {err}")

    await asyncio.gather(*(annotate(c) for c in clients))
    return time.monotonic() - began[0]


def _write_items(path: Path, n: int, tag: str) -> None:
    with path.open("w") as out:
        for i in range(n):
            record = {"input": f"Load test {tag}, question {i}: which answer is better?",
                      "output_1": f"Answer A to question {i}.",
                      "output_2": f"Answer B to question {i}, a little longer.", "label": 1}
            out.write(json.dumps(record) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_load(database_url: str, annotators: int = 20, seconds: float = 120.0, *,
             items: int = 2000, undo_every: int = 10) -> LoadReport:
    """Serve the studio on `database_url`, drive it with `annotators` clients for
    `seconds`, and audit the store. Names and the dataset are new each run, so an
    existing store can be used."""
    tag = secrets.token_hex(3)
    dataset = f"load-{tag}"
    engine = make_engine(database_url)
    upgrade(engine)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "items.jsonl"
        _write_items(source, items, tag)
        import_file(engine, source, dataset)
    clients = [Client(f"load-{tag}-{i:03d}", i) for i in range(annotators)]
    for client in clients:
        set_account(engine, client.name, "annotator", client.password)
    port = _free_port()
    env = {**os.environ, "GRM_STUDIO_DATABASE_URL": database_url, "GRADIO_ANALYTICS_ENABLED": "False"}
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, server, log)
            elapsed = run_blocking(_drive(clients, base, seconds, dataset, undo_every))
        finally:
            server.terminate()
            server.wait(timeout=60)
        log.seek(0)
        server_log = log.read().decode(errors="replace")
    with Session(engine) as session:
        rows = [Row(*r) for r in session.execute(
            select(Annotation.id, Annotator.name, Annotation.item_id, Annotation.supersedes_id,
                   Annotation.retracted)
            .join(Annotator).where(Annotator.name.in_([c.name for c in clients])))]
    engine.dispose()
    checked = audit(clients, rows)
    errors = tuple(e for c in clients for e in c.errors)
    latencies: dict[str, list[float]] = {
        kind: [v for c in clients for v in c.latencies[kind]] for kind in ("sign_in", *KINDS)}
    latencies["all"] = [v for kind in KINDS for v in latencies[kind]]
    return LoadReport(
        annotators=annotators,
        seconds=elapsed,
        items=items,
        requests=len(latencies["all"]),
        labels_acknowledged=sum(len(c.acknowledged) for c in clients),
        undos=sum(len(c.undone) for c in clients),
        sign_in_retries=sum((c.sign_in_retries for c in clients), Counter()),
        audit=checked,
        errors=errors,
        latency_ms={kind: _percentiles(v) for kind, v in latencies.items()},
        server_log="" if not errors and checked.ok else _tail(server_log, 40),
    )


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _wait_until_up(base: str, server: subprocess.Popen, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the studio exited: {_tail(log.read().decode(), 30)}")
        try:
            httpx.get(f"{base}/login", timeout=5)
        except httpx.HTTPError:
            time.sleep(0.5)
        else:
            return
    raise RuntimeError("the studio did not answer within 300 s")


def _store(database: str, url: str | None, tmp: str) -> tuple[str, Any]:
    """The database URL to use, and the PostgreSQL server to stop afterwards (or None)."""
    if url is not None:
        return url, None
    if database == "sqlite":
        return f"sqlite:///{tmp}/load.db", None
    from tests.postgres import start_postgres

    server = start_postgres()
    if isinstance(server, str):
        sys.exit(f"cannot start PostgreSQL: {server} (or pass --database-url)")
    return server.url, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0, help="of labelling, after sign-in")
    parser.add_argument("--items", type=int, default=2000, help="items in the generated dataset")
    parser.add_argument("--undo-every", type=int, default=10, help="each client undoes every Nth label")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql",
                        help="a throw-away server or file of this kind (default: postgresql)")
    parser.add_argument("--database-url", help="use this store instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, server = _store(args.database, args.database_url, tmp)
        try:
            report = run_load(url, args.annotators, args.seconds, items=args.items,
                              undo_every=args.undo_every)
        finally:
            if server is not None:
                server.stop()
    print("\n".join(report.lines()))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
