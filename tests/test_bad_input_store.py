"""Bad input that reaches the store and the pages, on SQLite and PostgreSQL:
SQL-looking search text is matched literally and harms nothing, text that no
database can hold is refused with its reason, unicode edge cases round-trip,
and HTML / JS in any text stays inert in what the web app renders."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, inspect, select

from core import judge
from core.backends.scripted import ScriptedBackend
from core.config import Settings
from core.store.browse import browse_items, view_item
from core.store.importing import import_file
from core.store.judgements import store_judgement
from core.store.labels import add_label
from core.store.schema import Item

SEARCHABLE = [
    "Robert'); DROP TABLE item; -- is my name",
    "I am 100% sure",
    "snake_case names",
    "a back\\slash here",
    "plain text only",
    "مرحبا بالعالم",
    "party 🎉 emoji",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request, tmp_path_factory):
    """One migrated store per database kind for this module (tests use their own
    datasets), so that PostgreSQL is set up once, not per case."""
    from core.store.db import make_engine, upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'store.db'}"
    else:
        import sqlalchemy as sa

        server = request.getfixturevalue("postgres_server")
        admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql("DROP DATABASE IF EXISTS bad_input")
            connection.exec_driver_sql("CREATE DATABASE bad_input")
        admin.dispose()
        url = server.database_url("bad_input")
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def searchable(db, tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "search.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": q, "chosen": f"yes {i}", "rejected": "no"}) + "\n"
                for i, q in enumerate(SEARCHABLE)),
        encoding="utf-8",
    )
    assert import_file(db, path, "search").imported == len(SEARCHABLE)
    return db


def _queries(engine, search: str) -> list[str]:
    page = browse_items(engine, dataset="search", search=search, limit=100)
    return [row.query for row in page.rows]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("'); DROP TABLE item; --", [SEARCHABLE[0]]),
        ("' OR '1'='1", []),
        ('" OR 1=1 --', []),
        ("%", [SEARCHABLE[1]]),
        ("_", [SEARCHABLE[2]]),
        ("\\", [SEARCHABLE[3]]),
        ("%%%", []),
        ("بالعالم", [SEARCHABLE[5]]),
        ("🎉", [SEARCHABLE[6]]),
        ("YES 4", [SEARCHABLE[4]]),  # responses are searched too, ignoring case
    ],
)
def test_sql_looking_search_text_is_matched_literally_and_harms_nothing(searchable, search, expected):
    before = _item_count(searchable)
    assert _queries(searchable, search) == expected
    assert "item" in inspect(searchable).get_table_names()
    assert _item_count(searchable) == before


def _item_count(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Item))


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ('{"prompt": "q \\ud800", "chosen": "a", "rejected": "b"}',
         "line 2: 'prompt' contains a lone UTF-16 surrogate (\\ud800), which is not valid Unicode"),
        ('{"prompt": "q", "chosen": "a\\u0000", "rejected": "b"}',
         "line 2: 'chosen' contains a NUL character (\\u0000); fix or remove it in the file"),
        ('{"prompt": [{"role": "user", "content": "\\udfff"}], "chosen": "a", "rejected": "b"}',
         "line 2: 'prompt' contains a lone UTF-16 surrogate (\\udfff)"),
    ],
)
def test_text_no_database_can_hold_is_refused_with_its_reason(db, tmp_path, record, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "fine", "chosen": "a", "rejected": "b"}) + "\n"
                    + record + "\n", encoding="utf-8")
    report = import_file(db, path, f"strict-{tmp_path.name}")
    assert report.imported == 1
    assert report.skipped[0].reason.startswith(reason)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"prompt": "q", "chosen": "a", "rejected": "b", "id": "i" * 201},
         "line 2: 'id' is 201 characters long; at most 200"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "category": "c" * 5000},
         "line 2: 'category' is 5,000 characters long; at most 200"),
    ],
)
def test_an_id_or_category_wider_than_its_column_is_refused(db, tmp_path, record, reason):
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps({"prompt": "fine", "chosen": "a", "rejected": "b"}) + "\n"
                    + json.dumps(record) + "\n", encoding="utf-8")
    report = import_file(db, path, f"wide-{tmp_path.name}")
    assert report.imported == 1 and [s.reason for s in report.skipped] == [reason]


@pytest.mark.parametrize(
    ("name", "message"),
    [("x" * 201, "a dataset name holds at most 200 characters, not 201"),
     ("   ", "a dataset needs a name")],
)
def test_a_bad_dataset_name_is_refused_and_stores_nothing(db, tmp_path, name, message):
    from core.errors import InputError

    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    before = _item_count(db)
    with pytest.raises(InputError) as err:
        import_file(db, path, name)
    assert str(err.value) == message and _item_count(db) == before


def test_unicode_edge_cases_round_trip_through_a_judgement(db):
    odd = "\u202eRTL override\u202c, zero\u200bwidth, 👨\u200d👩\u200d👧, e\u0301, \U0001d54f"
    good = "Specific Criteria: c\nAnalysis: " + odd + "\nScores: \\boxed{6, 4}"
    result = judge(odd, [odd, "plain"], k=2, backend=ScriptedBackend([good, good]),
                   settings=Settings(rescue=False))
    from core.store.judgements import fetch_judgement

    again = fetch_judgement(db, store_judgement(db, result))
    assert again.input.query == odd and again.samples[0].parse.critique == odd


# -- HTML / JS in any text stays inert ------------------------------------------

PAYLOADS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "' onmouseover='alert(1)",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
    "</textarea></div><style>body{display:none}</style>",
]
ATTACK = " ".join(PAYLOADS)


class _Markup(HTMLParser):
    """Every tag and attribute a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += attrs


def assert_inert(html: str) -> None:
    markup = _Markup()
    markup.feed(html)
    assert not markup.tags & {"script", "img", "svg", "iframe", "a", "style", "textarea"}
    names = [name for name, _ in markup.attributes]
    assert not [n for n in names if n.startswith("on") or n in ("href", "src", "srcdoc")]
    assert "&lt;script&gt;" in html  # shown as text, not dropped


@pytest.fixture(scope="module")
def attacked_judgement():
    raw = f"Specific Criteria: {ATTACK}\nAnalysis: {ATTACK}\nScores: \\boxed{{7, 3}}"
    unparsable = f"{ATTACK} no scores here"
    backend = ScriptedBackend([raw, unparsable], rescues=[f"{ATTACK}"])
    return judge(ATTACK, [ATTACK, "fine <b>bold</b>"], k=2, backend=backend,
                 settings=Settings(rescue=True))


def test_sample_cards_show_markup_as_text(attacked_judgement):
    from webapp.cards import sample_cards_html

    assert attacked_judgement.rescued_samples == 1
    assert_inert(sample_cards_html(attacked_judgement))


def test_the_vote_panel_shows_markup_as_text(attacked_judgement):
    from webapp.cards import vote_panel_html

    html = vote_panel_html(attacked_judgement)
    assert_inert(html)
    assert "title=\"&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


def test_stored_items_labels_and_import_reports_show_markup_as_text(db, tmp_path):
    from webapp.annotate_tab import item_html as annotate_item_html
    from webapp.annotate_tab import others_html
    from webapp.datasets_tab import import_report_html
    from webapp.datasets_tab import item_html as datasets_item_html

    path = tmp_path / "x.jsonl"
    path.write_text(
        json.dumps({"prompt": [{"role": "user", "content": ATTACK}, {"role": "assistant",
                    "content": ATTACK}, {"role": "user", "content": ATTACK}],
                    "chosen": ATTACK, "rejected": "ok"}) + "\n"
        + json.dumps({"prompt": ATTACK, "chosen": 1, "rejected": "b"}) + "\n"
        + "{" + ATTACK + "\n",
        encoding="utf-8",
    )
    name = ATTACK[:190]  # a dataset name is at most 200 characters
    report = import_file(db, path, name)
    assert report.imported == 1 and len(report.skipped) == 2
    assert_inert(import_report_html(report))
    (row,) = browse_items(db, dataset=name).rows
    add_label(db, row.item_id, ATTACK[:150], 0, note=ATTACK)
    view = view_item(db, row.item_id)
    assert view.query == ATTACK and view.dataset == name
    for html in (annotate_item_html(view), datasets_item_html(view)):
        assert_inert(html)
    others = others_html(view, annotator="someone else")
    markup = _Markup()
    markup.feed(others)
    assert markup.tags <= {"ul", "li"} and "&lt;script&gt;" in others


def test_an_over_long_search_is_refused_with_a_message_not_sql(searchable):
    """A 50,000-character search used to reach SQLite, whose 'LIKE or GLOB pattern too
    complex' came back to the page."""
    from core.errors import InputError
    from core.store.browse import MAX_SEARCH_CHARS

    with pytest.raises(InputError, match=r"at most 1,000 characters \(this one has 50,000\)"):
        _queries(searchable, "x" * 50_000)
    assert _queries(searchable, "x" * MAX_SEARCH_CHARS) == []
