"""The import leftovers of issue 18: several judges of one item, and battles whose
conversations differ before their last reply.

The records are written here from the published schemas: MT-Bench human judgements
(question_id, model_a, model_b, winner: model_a / model_b / tie / tie (bothbad),
judge, turn, conversation_a, conversation_b) and Chatbot Arena conversations (the
same battle fields, with anony, language, tstamp). Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.datasets import Skipped, SourceItem, read_dataset
from core.datasets.diverging import (
    DIVERGING,
    diverging_category,
    is_diverging,
    transcript,
)
from core.errors import InputError
from core.labels import ItemLabel, NoLabel
from core.store.browse import view_item
from core.store.importing import import_file
from core.store.labels import current_labels, item_labels
from core.store.schema import Annotation, Annotator, GroundTruth, Item
from core.types import Turn
from webapp.datasets_tab import DIVERGING_NOTE, item_html

Q1 = "Write a travel blog intro about Hawaii."
Q2 = "Rewrite it starting every sentence with A."
A1, A2 = "Aloha! Hawaii greets you with turquoise water.", "A warm breeze welcomes you."
B1, B2 = "Hawaii is a state.", "A state it is."


def chat(*texts: str) -> list[dict[str, str]]:
    """Alternating user / assistant turns, from the user's."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
            for i, t in enumerate(texts)]


def mt_bench(judge: str, winner: str, turn: int = 1, qid: int = 81, **over: Any) -> dict:
    """An MT-Bench human judgement of gpt-4 against llama-13b on a two-turn question
    (question 81 asks Q1; another question asks it of another island)."""
    q1 = Q1 if qid == 81 else Q1.replace("Hawaii", f"island {qid}")
    return {"question_id": qid, "model_a": "gpt-4", "model_b": "llama-13b", "winner": winner,
            "judge": judge, "conversation_a": chat(q1, A1, Q2, A2),
            "conversation_b": chat(q1, B1, Q2, B2), "turn": turn, **over}


def arena(qid: str, winner: str, conversation_a: list, conversation_b: list,
          judge: str = "arena_user_1") -> dict:
    """A Chatbot Arena conversations record."""
    return {"question_id": qid, "model_a": "vicuna-13b", "model_b": "koala-13b",
            "winner": winner, "judge": judge, "conversation_a": conversation_a,
            "conversation_b": conversation_b, "turn": len(conversation_a) // 2,
            "anony": True, "language": "English", "tstamp": 1682351591.0}


def jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read(path: Path, shape: str | None = None) -> list[SourceItem | Skipped]:
    return list(read_dataset(path, shape))


def labels_of(engine: Engine) -> dict[int, ItemLabel | NoLabel]:
    with Session(engine) as session:
        ids = session.scalars(select(Item.id).order_by(Item.id)).all()
        return item_labels(session, ids)


def count(engine: Engine, column: Any) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count(column))) or 0


@pytest.fixture
def sqlite_store(tmp_path):
    from core.store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'judges.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


# --- several judges of one item --------------------------------------------------------


def test_several_judges_label_one_item_and_the_rule_reads_them(store, tmp_path):
    """Three judges of one pair (a majority), two of another (split), two ties of three
    (tie (bothbad) is a tie): one item each, every judge an imported annotator with one
    label, and the label rule over them."""
    path = jsonl(tmp_path / "mt.jsonl", [
        mt_bench("expert_1", "model_a"), mt_bench("expert_2", "model_a"),
        mt_bench("author_1", "tie"),
        mt_bench("expert_1", "model_a", qid=82), mt_bench("expert_2", "model_b", qid=82),
        mt_bench("expert_1", "tie", qid=83), mt_bench("expert_3", "tie (bothbad)", qid=83),
        mt_bench("author_2", "model_b", qid=83),
    ])
    report = import_file(store, path, "mt")
    assert (report.imported, report.more_labels, report.duplicates, report.skipped) == (
        3, 5, 0, ())
    assert report.summary() == (
        "imported 3 item(s) and 5 more judge label(s) on items already there into 'mt', "
        "0 already there, skipped 0")
    assert count(store, GroundTruth.id) == 0  # MT-Bench's labels are all its judges'
    with Session(store) as session:
        roles = set(session.scalars(select(Annotator.role)).all())
        ids = session.scalars(select(Item.id).order_by(Item.id)).all()
        per_item = [sorted((lab.annotator, lab.best) for lab in current_labels(session, i))
                    for i in ids]
    assert roles == {"imported"}
    assert per_item[0] == [("judge:author_1", None), ("judge:expert_1", 0),
                           ("judge:expert_2", 0)]
    first, second, third = labels_of(store).values()
    assert first == ItemLabel(best=0, source="dataset", votes=2, total=3)  # majority
    assert second == NoLabel("dataset labels disagree")  # 1 against 1
    assert third == ItemLabel(best=None, source="dataset", votes=2, total=3)  # a tie


def test_a_true_duplicate_is_still_a_duplicate_and_a_second_opinion_is_refused(
        sqlite_store, tmp_path):
    """Same judge, same item, same label: a duplicate. Same judge, another label: the
    record is skipped with that reason and the first label kept."""
    path = jsonl(tmp_path / "mt.jsonl", [
        mt_bench("expert_1", "model_a"), mt_bench("expert_1", "model_a"),
        mt_bench("expert_1", "model_b"), mt_bench("expert_2", "model_b"),
    ])
    report = import_file(sqlite_store, path, "mt")
    assert (report.imported, report.more_labels, report.duplicates) == (1, 1, 1)
    (skipped,) = report.skipped
    assert skipped.line == 3
    assert skipped.reason == (
        "line 3: judge:expert_1 has labelled this item already (Response 1), and this "
        "record says Response 2; a judge has one label per item, so the first is kept and "
        "this record is left out")
    assert count(sqlite_store, Annotation.id) == 2
    assert list(labels_of(sqlite_store).values()) == [NoLabel("dataset labels disagree")]


def test_later_files_and_chunks_add_judges_to_items_already_stored(
        sqlite_store, tmp_path, monkeypatch):
    """Merging works against items stored before: by an earlier import, and by an earlier
    chunk of the same one; a file that only adds judges imports, a file that only
    repeats them is all duplicates, and one that only contradicts them stores nothing."""
    from core.store import importing

    monkeypatch.setattr(importing, "CHUNK", 1)  # every record its own chunk
    first = jsonl(tmp_path / "a.jsonl", [mt_bench("expert_1", "model_a"),
                                         mt_bench("expert_2", "model_a")])
    report = import_file(sqlite_store, first, "mt")
    assert (report.imported, report.more_labels, report.duplicates) == (1, 1, 0)

    more = jsonl(tmp_path / "b.jsonl", [mt_bench("expert_3", "model_b"),
                                        mt_bench("expert_1", "model_a")])
    report = import_file(sqlite_store, more, "mt")
    assert (report.imported, report.more_labels, report.duplicates) == (0, 1, 1)
    assert list(labels_of(sqlite_store).values()) == [
        ItemLabel(best=0, source="dataset", votes=2, total=3)]

    again = jsonl(tmp_path / "c.jsonl", [mt_bench("expert_2", "model_a"),
                                         mt_bench("expert_3", "model_b")])
    report = import_file(sqlite_store, again, "mt")
    assert (report.imported, report.more_labels, report.duplicates) == (0, 0, 2)

    contrary = jsonl(tmp_path / "d.jsonl", [mt_bench("expert_2", "tie")])
    with pytest.raises(InputError, match=r"judge:expert_2 has labelled this item already "
                                         r"\(Response 1\), and this record says a tie"):
        import_file(sqlite_store, contrary, "mt")
    assert count(sqlite_store, Annotation.id) == 3


def test_a_battle_repeated_in_the_arena_is_a_duplicate(sqlite_store, tmp_path):
    """Chatbot Arena's label is the dataset's own (its voters are not imported as
    annotators: one vote each), so the same battle read again adds nothing."""
    battle = arena("q-1", "model_b", chat("Capital of Japan?", "Kyoto."),
                   chat("Capital of Japan?", "Tokyo."))
    path = jsonl(tmp_path / "arena.jsonl", [battle, {**battle, "judge": "arena_user_2"}])
    report = import_file(sqlite_store, path, "arena")
    assert (report.imported, report.more_labels, report.duplicates) == (1, 0, 1)
    assert count(sqlite_store, GroundTruth.id) == 1


# --- conversations that differ before their last reply ----------------------------------


def test_mt_bench_second_turn_imports_each_response_as_its_own_conversation(tmp_path):
    turn1, turn2 = read(jsonl(tmp_path / "mt.jsonl", [
        mt_bench("expert_1", "model_a", turn=1), mt_bench("expert_1", "model_b", turn=2)]))
    assert isinstance(turn1, SourceItem) and isinstance(turn2, SourceItem)
    assert (turn1.query, turn1.context, turn1.responses, turn1.category) == (
        Q1, (), (A1, B1), None)  # shared first turn: as before
    assert turn2.query == Q2  # the last user turn, the same on both sides
    assert turn2.context == (Turn(role="user", content=Q1),)
    assert turn2.responses == (
        f"Assistant: {A1}\n\nUser: {Q2}\n\nAssistant: {A2}",
        f"Assistant: {B1}\n\nUser: {Q2}\n\nAssistant: {B2}",
    )
    assert turn2.category == DIVERGING and is_diverging(turn2.category)
    assert [(lab.best, lab.labeller) for lab in turn2.labels] == [(1, "judge:expert_1")]


def test_a_multi_turn_arena_battle_keeps_its_language_and_is_marked(tmp_path):
    battle = arena("q-9", "tie", chat("Hi", "Hello!", "Tell me a joke.", "No.",
                                      "Please?", "Fine: a pun."),
                   chat("Hi", "Hey there.", "Tell me a joke.", "Why did the chicken...",
                        "Please?", "That was it."))
    (item,) = read(jsonl(tmp_path / "arena.jsonl", [battle]))
    assert isinstance(item, SourceItem)
    assert (item.query, item.context) == ("Please?", (Turn(role="user", content="Hi"),))
    assert item.responses[0] == (
        "Assistant: Hello!\n\nUser: Tell me a joke.\n\nAssistant: No.\n\nUser: Please?\n\n"
        "Assistant: Fine: a pun.")
    assert item.category == "English · earlier turns differ"
    assert [lab.best for lab in item.labels] == [None]


def test_shared_turns_are_read_as_before(tmp_path):
    """Two turns whose first reply is the same on both sides: one conversation."""
    battle = arena("q-2", "model_a", chat("Hi", "Hello!", "Joke?", "A pun."),
                   chat("Hi", "Hello!", "Joke?", "No."))
    (item,) = read(jsonl(tmp_path / "arena.jsonl", [battle]))
    assert isinstance(item, SourceItem)
    assert (item.query, item.responses, item.category) == ("Joke?", ("A pun.", "No."), "English")
    assert item.context == (Turn(role="user", content="Hi"), Turn(role="assistant",
                                                                  content="Hello!"))


def test_when_the_last_user_turns_differ_the_query_is_the_last_shared_one(tmp_path):
    battle = arena("q-3", "model_a", chat("Hi", "Hello!", "Joke?", "A pun."),
                   chat("Hi", "Hey.", "Poem?", "Roses..."))
    (item,) = read(jsonl(tmp_path / "arena.jsonl", [battle]))
    assert isinstance(item, SourceItem)
    assert (item.query, item.context) == ("Hi", ())
    assert item.responses == ("Assistant: Hello!\n\nUser: Joke?\n\nAssistant: A pun.",
                              "Assistant: Hey.\n\nUser: Poem?\n\nAssistant: Roses...")


@pytest.mark.parametrize(("conversation_b", "reason"), [
    (chat("Bye", "Hey.", "Joke?", "No."),
     ("line 1: 'conversation_a' and 'conversation_b' share no user turn before they differ; "
      "an item needs the turns its conversations share, at least the first user turn")),
    ("Just a reply.",
     ("line 1: 'conversation_b' is a single reply but 'conversation_a' is a conversation; "
      "give every response as a conversation, or map the query")),
    ([*chat("Hi", "Hey.", "Joke?", "No."), {"role": "assistant", "content": "More."}],
     "line 1: the last assistant turn of 'conversation_b' does not follow a user turn"),
])
def test_conversations_that_make_no_item_are_refused_clearly(tmp_path, conversation_b, reason):
    battle = arena("q-4", "model_a", chat("Hi", "Hello!", "Joke?", "A pun."), conversation_b)
    (skipped,) = read(jsonl(tmp_path / "arena.jsonl", [battle]), "chatbot_arena")
    assert isinstance(skipped, Skipped) and skipped.reason == reason


def test_chosen_and_rejected_conversations_still_share_their_turns(tmp_path):
    """A preference pair is two replies to one conversation: unchanged."""
    record = {"chosen": chat("Hi", "Hello!", "Joke?", "A pun."),
              "rejected": chat("Hi", "Hey.", "Joke?", "No.")}
    (skipped,) = read(jsonl(tmp_path / "trl.jsonl", [record]), "trl_implicit")
    assert isinstance(skipped, Skipped)
    assert "'chosen' and 'rejected' differ before their last assistant turn" in skipped.reason


def test_the_mark_and_the_transcript():
    assert transcript([Turn(role="system", content="Be brief."),
                       Turn(role="assistant", content="Ok.")]) == "System: Be brief.\n\nAssistant: Ok."
    assert diverging_category(None) == DIVERGING
    long = diverging_category("x" * 300)
    assert len(long) == 200 and is_diverging(long)
    assert not is_diverging("English") and not is_diverging(None)


def test_diverging_items_import_and_say_so_where_an_item_is_shown(sqlite_store, tmp_path):
    """Turn 1 and turn 2 of one pair are two items; the one of diverging conversations
    is marked by its category, and the Datasets tab's item view says what its
    responses are. Judges of the same turn pool on its item as above."""
    path = jsonl(tmp_path / "mt.jsonl", [
        mt_bench("expert_1", "model_a", turn=1), mt_bench("expert_1", "model_b", turn=2),
        mt_bench("expert_2", "model_b", turn=2)])
    report = import_file(sqlite_store, path, "mt")
    assert (report.imported, report.more_labels) == (2, 1)
    with Session(sqlite_store) as session:
        items = session.scalars(select(Item).order_by(Item.id)).all()
        shown = [item.judge_input() for item in items]
        categories = [item.category for item in items]
    assert categories == [None, DIVERGING]
    assert shown[1].query == Q2 and shown[1].responses[1].endswith(f"Assistant: {B2}")
    assert list(labels_of(sqlite_store).values())[1] == ItemLabel(
        best=1, source="dataset", votes=2, total=2)
    first, second = (view_item(sqlite_store, item.id) for item in items)
    assert DIVERGING_NOTE not in item_html(first)
    assert DIVERGING_NOTE in item_html(second)
