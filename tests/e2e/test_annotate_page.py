"""Label queue items with keyboard shortcuts and find the labels in the database:
one key at a time, fast bursts, a reload in the middle of a walk, Enter on Start."""

import re

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core.store.demo import DEMO_DATASET
from core.store.queues import queue_items
from core.store.schema import Annotation, Annotator
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

SHOWN = "#annotate-item [id^=annotate-item-]"


def _new_annotator(page, studio_url: str, database_url: str, name: str) -> None:
    """An annotator account of its own for the test (walks and queues are per account),
    signed in through the login page."""
    from core.store.accounts import set_account
    from core.store.db import make_engine

    engine = make_engine(database_url)
    set_account(engine, name, "annotator", f"{name}-password")
    engine.dispose()
    page.goto(studio_url)
    page.locator("#login-name").fill(name)
    page.locator("#login-password").fill(f"{name}-password")
    page.locator("#login-submit").click()
    page.locator("#account-banner").wait_for(timeout=60_000)


def _pending(database_url: str, name: str, n: int) -> list[int]:
    """The first `n` items of the 'unlabelled' queue for `name`, in queue order."""
    engine = create_engine(database_url)
    with Session(engine) as session:
        return queue_items(session, "unlabelled", annotator=name, dataset=DEMO_DATASET, limit=n)


def _rows(database_url: str, name: str) -> list[tuple[int, int | None, bool]]:
    """(item, best, retracted) of every label row `name` wrote, oldest first."""
    engine = create_engine(database_url)
    with Session(engine) as session:
        return [tuple(row) for row in session.execute(
            select(Annotation.item_id, Annotation.best, Annotation.retracted).join(Annotator)
            .where(Annotator.name == name).order_by(Annotation.id)
        )]


def _shown(page) -> int:
    return int(page.locator(SHOWN).get_attribute("id").split("-")[-1])


def _start(page, dataset: str = DEMO_DATASET) -> int:
    """Open the Annotate tab, start a walk through 'unlabelled' on `dataset`; the item shown."""
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#annotate-dataset textarea, #annotate-dataset input").first.fill(dataset)
    page.locator("#annotate-start").click()
    page.locator(SHOWN).wait_for(timeout=30_000)
    page.locator("#annotate-progress").click()  # focus outside any text field
    return _shown(page)


def _keys(page, keys: str) -> None:
    """Press `keys` (space-separated) as fast as the browser takes them, then wait until
    the page has applied or refused every one."""
    for key in keys.split():
        page.keyboard.press(key)
    page.wait_for_function("window.grmAnnotate && window.grmAnnotate.idle()", timeout=60_000)


def test_keyboard_label_lands_in_the_database(page, studio_url, database_url, screenshots):
    sign_in(page, studio_url, "kim")
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#annotate-start").click()
    page.locator("#annotate-item [id^=annotate-item-]").wait_for(timeout=30_000)
    item_id = int(page.locator("#annotate-item [id^=annotate-item-]").get_attribute("id").split("-")[-1])
    page.locator("#annotate-progress").click()  # focus outside any text field
    page.keyboard.press("2")
    page.wait_for_function(
        "document.querySelectorAll('#annotate-best input[type=radio]')[1].checked"
    )
    page.screenshot(path=str(screenshots / "annotate.png"), full_page=True)
    page.keyboard.press("Enter")
    page.locator(f"#annotate-item [id=annotate-item-{item_id}]").wait_for(state="detached")
    engine = create_engine(database_url)
    with Session(engine) as session:
        rows = session.execute(
            select(Annotation.item_id, Annotation.best).join(Annotator).where(Annotator.name == "kim")
        ).all()
    assert rows == [(item_id, 1)]
    page.keyboard.press("u")  # undo: the label is withdrawn by a new row, nothing deleted
    page.wait_for_timeout(1500)
    with Session(engine) as session:
        retracted = session.scalars(
            select(Annotation.retracted).join(Annotator).where(Annotator.name == "kim")
        ).all()
    assert retracted == [False, True]


def test_a_fast_burst_of_keys_stores_every_label_in_order(page, studio_url, database_url):
    """`2 Enter 1 Enter` without waiting labelled only the first item once; every press
    must now end in a label, in order, on consecutive items."""
    _new_annotator(page, studio_url, database_url, "fast")
    items = _pending(database_url, "fast", 9)
    assert _start(page) == items[0]
    _keys(page, "2 Enter 1 Enter")
    assert _rows(database_url, "fast") == [(items[0], 1, False), (items[1], 0, False)]
    assert _shown(page) == items[2]
    # A longer burst with a tie (3: the choice after the two responses) and a skip.
    _keys(page, "1 Enter 3 Enter 2 Enter s 1 Enter 2 Enter 1 Enter")
    assert _rows(database_url, "fast")[2:] == [
        (items[2], 0, False), (items[3], None, False), (items[4], 1, False),
        (items[6], 0, False), (items[7], 1, False), (items[8], 0, False),
    ]  # items[5] was skipped
    assert _shown(page) == _pending(database_url, "fast", 2)[1]  # the next after the skipped
    # A mouse click on Skip while a save is on its way waits its turn too.
    shown, _, then = _pending(database_url, "fast", 4)[1:]  # [0]: the one skipped before
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.locator("#annotate-skip").click()
    page.wait_for_function("window.grmAnnotate.idle()", timeout=60_000)
    assert _rows(database_url, "fast")[-1] == (shown, 1, False)
    assert _shown(page) == then  # the item after `shown` was skipped by the click
    assert "9 labelled in this walk · 2 skipped" in page.locator("#annotate-progress").inner_text()
    assert page.locator("#annotate-keys .annotate-key-refusal").inner_text() == ""


def test_a_key_that_cannot_be_applied_is_refused_on_the_page(page, studio_url, database_url):
    _new_annotator(page, studio_url, database_url, "hasty")
    first = _start(page)
    _keys(page, "Enter 1 Enter")  # Enter with nothing picked: the two behind it are dropped
    page.get_by_text("Pick the best response").first.wait_for(timeout=30_000)
    refusal = page.locator("#annotate-keys .annotate-key-refusal")
    assert "not applied: 1 Enter" in refusal.inner_text()
    _keys(page, "7")
    assert "key 7: this item has 3 choices" in refusal.inner_text()
    assert _rows(database_url, "hasty") == [] and _shown(page) == first


def test_a_reload_resumes_the_walk(page, studio_url, database_url, screenshots):
    """Tab, queue and dataset, counts, skips and the undo stack survive a reload."""
    _new_annotator(page, studio_url, database_url, "reloader")
    items = _pending(database_url, "reloader", 4)
    _start(page)
    _keys(page, "1 Enter 2 Enter s")
    assert _shown(page) == items[3]
    progress = page.locator("#annotate-progress")
    assert "2 labelled in this walk · 1 skipped" in progress.inner_text()
    assert "tab=annotate" in page.url
    page.reload()
    page.locator("#account-banner").wait_for(timeout=60_000)
    page.locator(SHOWN).wait_for(timeout=30_000)
    assert page.get_by_role("tab", name="Annotate").get_attribute("aria-selected") == "true"
    assert "2 labelled in this walk · 1 skipped" in progress.inner_text()
    assert _shown(page) == items[3]  # the skipped item does not come back
    assert page.locator("#annotate-queue input").input_value() == "unlabelled"
    dataset = page.locator("#annotate-dataset textarea, #annotate-dataset input").first
    assert dataset.input_value() == DEMO_DATASET
    page.screenshot(path=str(screenshots / "annotate-resumed.png"), full_page=True)
    page.locator("#annotate-progress").click()
    _keys(page, "u")  # undoes the last label (items[1]): it is open again
    assert _rows(database_url, "reloader") == [
        (items[0], 0, False), (items[1], 1, False), (items[1], None, True)]
    assert _shown(page) == items[1]
    assert "1 labelled in this walk · 1 skipped" in progress.inner_text()
    assert page.locator("#annotate-keys .annotate-key-refusal").inner_text() == ""


def test_enter_on_the_focused_start_button_starts(page, studio_url, database_url):
    _new_annotator(page, studio_url, database_url, "enterer")
    page.get_by_role("tab", name="Annotate").click()
    blind = page.locator("#annotate-blind input[type=checkbox]")
    assert blind.is_checked() and blind.is_disabled()  # annotators always label blind
    page.locator("#annotate-start").focus()
    page.keyboard.press("Enter")
    page.locator(SHOWN).wait_for(timeout=30_000)
    assert _shown(page) == _pending(database_url, "enterer", 1)[0]
    assert page.get_by_text(re.compile("no item is open", re.IGNORECASE)).count() == 0
    assert page.locator("#annotate-labels").inner_text().strip() == ""  # blind: no labels
