"""Retake the README's screenshots (docs/screenshots/) from a fresh studio.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--keep]

It makes a SQLite store in a temporary folder with what a first start makes (the
demo dataset and the shipped judge's stored judgements of it, the shipped judge
registered), an admin account, and a few labels by two annotators on demo items
(so that Annotate and Insights show agreement); serves the studio on a free
loopback port in this process, without loading a model (nothing is judged: the
Judge tab opens a stored demo judgement by `?judgement=ID`); signs in as the
admin in Debian's headless Chromium (Playwright) at 1400 x 900 and saves a
full-page screenshot of each tab: judge, datasets, annotate, insights, training
and rewards .png. insights-compare.png and insights-consistency.png are not
retaken here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ADMIN = ("admin", "screenshot-admin-password")
ANNOTATORS = ("ana", "ben")  # password: NAME-password
LABELLED = 30  # the first demo items the two annotators label
SHOTS = ("judge", "datasets", "annotate", "insights", "training", "rewards")
VIEWPORT = {"width": 1400, "height": 900}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 60_000
MAX_BYTES = 400 * 1024  # a larger screenshot is saved with a palette


def make_store(data_dir: Path) -> tuple[object, int]:
    """The store a first start makes, plus accounts and labels; (settings, the id of
    the demo judgement the Judge tab shows)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from core import Settings
    from core.store import open_store
    from core.store.accounts import set_account
    from core.store.demo import (
        DEMO_DATASET,
        demo_judgements_path,
        ensure_demo_dataset,
        ensure_demo_judgements,
    )
    from core.store.labels import add_label
    from core.store.schema import Dataset, GroundTruth, Item, JudgementRow
    from core.training.registry import register_studio_judge

    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'studio.db'}")
    demo = settings.demo_file
    if demo is None or not demo.is_file():
        raise SystemExit(f"the demo dataset is missing: {demo}")
    engine = open_store(settings)
    ensure_demo_dataset(engine, demo)
    stored = ensure_demo_judgements(engine, demo_judgements_path(demo))
    if not stored:
        raise SystemExit(f"no stored demo judgements in {demo_judgements_path(demo)}")
    register_studio_judge(engine)
    set_account(engine, ADMIN[0], "admin", ADMIN[1])
    for name in ANNOTATORS:
        set_account(engine, name, "annotator", f"{name}-password")

    with Session(engine) as session:
        items = session.execute(
            select(Item.id, Item.n_responses, GroundTruth.best)
            .join(Dataset, Item.dataset_id == Dataset.id)
            .outerjoin(GroundTruth, GroundTruth.item_id == Item.id)
            .where(Dataset.name == DEMO_DATASET).order_by(Item.id).limit(LABELLED)).all()
        # the Judge tab's judgement: a vote that is not a tie
        candidates = session.execute(
            select(JudgementRow.id, GroundTruth.best, Item.query, Item.responses)
            .join(Item, JudgementRow.item_id == Item.id)
            .outerjoin(GroundTruth, GroundTruth.item_id == Item.id)
            .where(JudgementRow.tie.is_(False), JudgementRow.winner.is_not(None))).all()
    if not candidates:
        raise SystemExit("no stored demo judgement has a winner")
    shown = min(candidates, key=lambda c: _rank(engine, c)).id

    # two annotators who mostly agree with the dataset's label and now and then not,
    # so kappa is neither 0 nor 1 and the annotators-disagree queue has items
    for n, (item_id, n_responses, truth) in enumerate(items):
        right = 0 if truth is None else truth
        other = (right + 1) % n_responses
        add_label(engine, item_id, "ana", other if n % 8 == 3 else right)
        add_label(engine, item_id, "ben", other if n % 6 == 5 else right)
    engine.dispose()
    return settings, shown


def _rank(engine, candidate) -> tuple:
    """Which judgement the Judge tab shows first: the most confident verdict (strong,
    then moderate; not split), one that picks the dataset's label, then the shortest
    item (a shorter page)."""
    from core.confidence import ConfidenceLevel, verdict_confidence
    from core.store.judgements import fetch_judgement

    judgement = fetch_judgement(engine, candidate.id)
    level = verdict_confidence(judgement).level
    order = [ConfidenceLevel.STRONG, ConfidenceLevel.MODERATE, ConfidenceLevel.WEAK]
    length = len(candidate.query) + sum(len(r) for r in candidate.responses)
    return (order.index(level), judgement.vote.split,
            judgement.vote.winner != candidate.best, length)


@contextmanager
def serving(settings) -> Iterator[str]:
    """The studio as `grm-studio serve` builds it, under uvicorn in a thread."""
    import socket

    import uvicorn

    from core.store import open_store
    from webapp.annotate_tab import KEYBOARD_JS
    from webapp.app import build_app, quiet_library_notices
    from webapp.auth import server_app
    from webapp.cards import CARD_CSS
    from webapp.security import proxy_options
    from webapp.studio import Studio
    from webapp.tab_links import TAB_LINK_JS

    quiet_library_notices()
    studio = Studio(settings, open_store(settings))
    app = server_app(studio, build_app(studio).queue(), css=CARD_CSS,
                     head=KEYBOARD_JS + TAB_LINK_JS)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", **proxy_options(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        if not server.started:
            raise SystemExit("the studio did not start within 60 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        studio.engine.dispose()


def settle(page, ms: int = 1500) -> None:
    """Wait until no Gradio event is pending (no progress indicator shown), then a
    little longer for charts to finish drawing."""
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.progress-text, .eta-bar, .wrap.pending')]"
        ".some(e => e.offsetParent !== null)", timeout=WAIT_MS)
    page.wait_for_timeout(ms)


def pick(page, elem_id: str, option: str) -> None:
    """Choose `option` in the dropdown `elem_id`."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def shoot(page, out: Path, name: str) -> None:
    """A full-page screenshot, the mouse off every chart and table (no hover toolbars);
    one past MAX_BYTES is saved again with a 256-colour palette, dithered."""
    page.mouse.move(1, 1)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if path.stat().st_size > MAX_BYTES:
        from PIL import Image

        with Image.open(path) as shot:
            rgb = shot.convert("RGB")
        palette = rgb.quantize(256, method=Image.Quantize.MEDIANCUT)
        rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(
            path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} KiB", flush=True)


def take(url: str, judgement: int, out: Path, only: set[str]) -> None:
    from playwright.sync_api import sync_playwright

    from core.store.demo import DEMO_DATASET

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(url)
        page.locator("#login-name").fill(ADMIN[0])
        page.locator("#login-password").fill(ADMIN[1])
        page.locator("#login-submit").click()
        page.locator("#account-banner").wait_for(timeout=WAIT_MS)

        if "judge" in only:
            page.goto(f"{url}?judgement={judgement}")
            page.locator(".js-plotly-plot").first.wait_for(timeout=WAIT_MS)
            page.get_by_text(f"#{judgement}").first.wait_for(timeout=WAIT_MS)
            # the first sample card open: its principles, critique and scores
            page.locator("details.grm-card > summary").first.click()
            settle(page)
            shoot(page, out, "judge")

        page.goto(url)
        page.locator("#account-banner").wait_for(timeout=WAIT_MS)
        settle(page, 500)

        if "datasets" in only:
            page.get_by_role("tab", name="Datasets").click()
            pick(page, "datasets-filter-dataset", DEMO_DATASET)
            page.locator("#datasets-browse").click()
            page.locator("#datasets-table .virtual-row").nth(10).wait_for(timeout=WAIT_MS)
            settle(page, 1000)
            shoot(page, out, "datasets")

        if "annotate" in only:
            page.get_by_role("tab", name="Annotate").click()
            pick(page, "annotate-queue", "annotators-disagree")
            page.locator("#annotate-dataset textarea, #annotate-dataset input").first.fill(
                DEMO_DATASET)
            blind = page.locator("#annotate-blind input[type=checkbox]")
            if blind.is_checked():  # an admin may see the others' labels and the judge
                blind.click()
            page.locator("#annotate-start").click()
            page.locator("#annotate-item [id^=annotate-item-]").wait_for(timeout=WAIT_MS)
            settle(page, 1000)
            shoot(page, out, "annotate")

        if "insights" in only:
            page.get_by_role("tab", name="Insights").click()
            pick(page, "insights-dataset", DEMO_DATASET)
            page.locator("#insights-status").get_by_text(DEMO_DATASET).first.wait_for(
                timeout=WAIT_MS)
            for plot in ("insights-accuracy", "insights-margin", "insights-agreement",
                         "insights-scores", "insights-position-bias", "insights-consistency"):
                page.locator(f"#{plot} .js-plotly-plot").wait_for(timeout=WAIT_MS)
            # how the principles of the Judge tab's judgement's samples differ
            page.locator("#insights-judgement-id input").fill(str(judgement))
            page.locator("#insights-diversity-show").click()
            page.locator("#insights-diversity .js-plotly-plot").wait_for(timeout=WAIT_MS)
            settle(page, 2500)
            shoot(page, out, "insights")

        if "training" in only:
            page.get_by_role("tab", name="Training").click()
            page.locator("#training-models").get_by_text("backend").first.wait_for(
                timeout=WAIT_MS)
            settle(page, 1000)
            shoot(page, out, "training")

        if "rewards" in only:
            page.get_by_role("tab", name="Rewards").click()
            page.locator("#rewards-run").wait_for(timeout=WAIT_MS)
            settle(page, 1500)
            shoot(page, out, "rewards")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", nargs="*", choices=SHOTS, default=list(SHOTS),
                        help="retake only these")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Debian's chromium is needed: {CHROMIUM}")
    args.out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="grm-screenshots-"))
    try:
        settings, judgement = make_store(data_dir)
        print(f"store in {data_dir}; Judge tab shows judgement {judgement}", flush=True)
        with serving(settings) as url:
            take(url, judgement, args.out, set(args.only))
    finally:
        if args.keep:
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
