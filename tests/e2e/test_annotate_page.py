"""Label a queue item with keyboard shortcuts and find the label in the database."""

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core.store.schema import Annotation, Annotator
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


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
