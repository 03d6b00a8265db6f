"""A best-of-n item (RewardBench 2's Ties subset: several correct answers) in the
Annotate tab: all its responses, its dataset label in words, and a label by key."""

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.db import make_engine
from core.store.importing import import_file
from core.store.schema import Annotation, Annotator, Dataset, Item
from tests.e2e.conftest import sign_in
from tests.scripted_best_of_n import ROWS, stored_responses, write_rb2

pytestmark = pytest.mark.e2e


def test_a_best_of_n_item_shows_its_label_in_words_and_takes_a_label(
        page, studio_url, database_url, tmp_path):
    path = write_rb2(tmp_path / "ties.parquet", [ROWS[2]])  # 3 correct of 5
    engine = make_engine(database_url)
    import_file(engine, path, "rb2-ties")
    with Session(engine) as session:
        (item_id,) = session.scalars(select(Item.id).join(Dataset)
                                     .where(Dataset.name == "rb2-ties"))
    correct = sorted(stored_responses(path)["t-2"].index(t) + 1
                     for t in ("Red.", "Blue.", "Yellow."))
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#annotate-dataset textarea, #annotate-dataset input").first.fill("rb2-ties")
    blind = page.locator("#annotate-blind input[type=checkbox]")
    if blind.is_checked():
        blind.uncheck()  # an admin may see the other labels, the dataset's among them
    page.locator("#annotate-start").click()
    page.locator(f"#annotate-item [id=annotate-item-{item_id}]").wait_for(timeout=30_000)
    assert page.locator("#annotate-best input[type=radio]").count() == 5 + 1  # and a tie
    expected = (f"dataset label: best-of-n: Responses {correct[0]}, {correct[1]} and "
                f"{correct[2]} correct")
    assert expected in page.locator("#annotate-labels").inner_text()
    page.locator("#annotate-progress").click()  # focus outside any text field
    page.keyboard.press(str(correct[0]))
    page.keyboard.press("Enter")
    page.locator(f"#annotate-item [id=annotate-item-{item_id}]").wait_for(state="detached")
    with Session(engine) as session:
        rows = session.execute(select(Annotation.item_id, Annotation.best).join(Annotator)
                               .where(Annotator.name == "root")).all()
    assert rows == [(item_id, correct[0] - 1)]
    engine.dispose()
