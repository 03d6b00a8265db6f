"""Field mapping (issue 18 step 1): any record shape in, through `--map` roles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from core.datasets import (
    FieldMap,
    LabelValues,
    Skipped,
    SourceItem,
    SourceLabel,
    UnknownShapeError,
    parse_roles,
    read_dataset,
)
from core.errors import InputError
from core.types import Turn

runner = CliRunner()


def jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def split(entries) -> tuple[list[SourceItem], list[Skipped]]:
    entries = list(entries)
    return ([e for e in entries if isinstance(e, SourceItem)],
            [e for e in entries if isinstance(e, Skipped)])


# The three record shapes of the issue, as a user has them.
INSTRUCTION = [
    {"instruction": "Say hi", "response1": "hi", "response2": "hello", "label": 2},
    {"instruction": "Say bye", "response1": "bye", "response2": "ciao", "label": "tie"},
]
SPACED = [  # 'response 1', 'response 2', label 0 / 1 and 2 for a tie
    {"prompt": "2+2?", "response 1": "4", "response 2": "5", "label": 0},
    {"prompt": "3+3?", "response 1": "7", "response 2": "6", "label": 1},
    {"prompt": "1+1?", "response 1": "2", "response 2": "two", "label": 2},
]


def test_the_issue_example_maps_instruction_response1_response2_label(tmp_path):
    fmap = parse_roles(["query=instruction", "responses=response1,response2", "best=label"],
                       ["1=0,2=1,tie=tie"])
    items, skipped = split(read_dataset(jsonl(tmp_path / "a.jsonl", INSTRUCTION), mapping=fmap))
    assert skipped == []
    assert [(i.query, i.responses, i.labels) for i in items] == [
        ("Say hi", ("hi", "hello"), (SourceLabel(best=1, labeller=None),)),
        ("Say bye", ("bye", "ciao"), (SourceLabel(best=None, labeller=None),)),
    ]


def test_field_names_with_spaces_and_a_numeric_tie_value(tmp_path):
    fmap = parse_roles(["query=prompt", "responses=response 1,response 2", "best=label"],
                       ["0=0", "1=1", "2=tie"])
    items, _ = split(read_dataset(jsonl(tmp_path / "s.jsonl", SPACED), mapping=fmap))
    assert [i.labels[0].best for i in items] == [0, 1, None]
    assert "--map 'responses=response 1,response 2'" in fmap.cli_args()


def test_an_unknown_shape_lists_its_fields_and_the_map_line_that_probably_works(tmp_path):
    path = jsonl(tmp_path / "u.jsonl", INSTRUCTION)
    with pytest.raises(UnknownShapeError) as err:
        read_dataset(path)
    message = str(err.value)
    assert "the first record has the keys instruction, label, response1, response2" in message
    line = ("--map query=instruction --map responses=response1,response2 --map best=label "
            "--label-values 1=0,2=1,tie=tie")
    assert line in message
    assert err.value.fields == ("instruction", "label", "response1", "response2")
    suggestion = err.value.suggestion
    assert suggestion is not None and suggestion.cli_args() == line
    items, skipped = split(read_dataset(path, mapping=suggestion))  # and it does work
    assert len(items) == 2 and skipped == []


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"question": "q", "output_a": "x", "output_b": "y", "winner": "B"},
         ("--map query=question --map responses=output_a,output_b --map best=winner "
          "--label-values a=0,b=1,tie=tie")),
        ({"question": "q", "answers": ["x", "y"], "gold": 1},
         "--map query=question --map responses=answers --map best=gold"),
        ({"input": "q", "chosen_response": "x", "rejected_response": "y"},
         "--map query=input --map chosen=chosen_response --map rejected=rejected_response"),
    ],
)
def test_suggestions_for_other_common_names(tmp_path, record, expected):
    path = jsonl(tmp_path / "u.jsonl", [record])
    with pytest.raises(UnknownShapeError) as err:
        read_dataset(path)
    assert err.value.suggestion is not None
    assert err.value.suggestion.cli_args() == expected
    items, skipped = split(read_dataset(path, mapping=err.value.suggestion))
    assert len(items) == 1 and skipped == []


def test_no_suggestion_without_responses(tmp_path):
    with pytest.raises(UnknownShapeError) as err:
        read_dataset(jsonl(tmp_path / "u.jsonl", [{"text": "a", "score": 3}]))
    assert err.value.suggestion is None and "Map the fields to roles (query" in str(err.value)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"instruction": "q", "response1": "a", "response2": "b", "label": 3},
         "'label' must be one of 1, 2, tie (the label values), got 3"),
        ({"instruction": "q", "response1": "a", "label": 1}, "missing field 'response2'"),
        ({"instruction": "q", "response1": "a", "response2": 7, "label": 1},
         "'response2' must be a string, got a number (7)"),
        ({"instruction": ["q"], "response1": "a", "response2": "b", "label": 1},
         ("'instruction' item 1 must be an object with 'role' (system, user or assistant) "
          "and 'content' (a string), got \"q\"")),
        ({"instruction": "  ", "response1": "a", "response2": "b", "label": 1},
         "'instruction' is empty"),
        ({"instruction": "q", "response1": "a", "response2": "a", "label": 1},
         "responses 1 and 2 are identical, so no preference between them holds"),
    ],
)
def test_every_mapping_error_names_the_record_the_field_and_what_was_expected(
    tmp_path, record, reason
):
    fmap = parse_roles(["query=instruction", "responses=response1,response2", "best=label"],
                       ["1=0,2=1,tie=tie"])
    path = jsonl(tmp_path / "b.jsonl", [INSTRUCTION[0], record])
    items, skipped = split(read_dataset(path, mapping=fmap))
    assert len(items) == 1
    assert skipped == [Skipped(line=2, reason=f"line 2: {reason}")]


def test_a_label_value_past_the_responses_names_the_value_and_the_count(tmp_path):
    fmap = parse_roles(["query=instruction", "responses=response1,response2", "best=label"],
                       ["1=0,2=2"])
    _, skipped = split(read_dataset(jsonl(tmp_path / "c.jsonl", INSTRUCTION[:1]), mapping=fmap))
    assert skipped[0].reason == (
        "line 1: 'label' is 2, which the label values make response index 2, but the record "
        "has 2 responses (indices 0 to 1)"
    )


def test_a_mapped_field_the_first_record_lacks_is_refused_at_once(tmp_path):
    fmap = parse_roles(["query=question", "responses=response1,response2"])
    with pytest.raises(InputError, match=r"reads the field\(s\) question, but line 1 has no "
                                         r"such field; its fields are: instruction, label"):
        read_dataset(jsonl(tmp_path / "d.jsonl", INSTRUCTION), mapping=fmap)


@pytest.mark.parametrize(
    ("maps", "values", "message"),
    [
        (["query"], [], "'query' must be ROLE=FIELD"),
        (["prompt=instruction"], [], "unknown role 'prompt'; the roles are query, context"),
        (["query=a", "query=b"], [], "the role 'query' is mapped twice"),
        (["query=a,b"], [], "query takes one field; only responses, ratings take several"),
        (["responses=a,,b"], [], "an empty field name in the list"),
        ([], ["1=first"], "the right side must be a response index from 0, or tie"),
        ([], ["1"], "label value '1' must be VALUE=INDEX or VALUE=tie"),
    ],
)
def test_bad_map_options_are_refused_with_what_to_write(maps, values, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_roles(maps, values)


@pytest.mark.parametrize(
    ("fmap", "message"),
    [
        (FieldMap(query="q"), "the mapping has no responses"),
        (FieldMap(responses=("a", "b"), chosen="c", rejected="d"), "not both"),
        (FieldMap(chosen="c"), "map both chosen and rejected"),
        (FieldMap(chosen="c", rejected="d", best="b"), "best cannot be mapped with chosen"),
        (FieldMap(responses=("a", "b"), best="x", ratings=("r",)), "map best or ratings"),
        (FieldMap(responses=("a", "b"), label_values=LabelValues((("1", 0),))),
         "label values need the label field"),
        (FieldMap(responses=("a", "b"), labeller="who"), "labeller needs a label"),
    ],
)
def test_contradictory_maps_are_refused(fmap, message):
    with pytest.raises(InputError, match=message):
        fmap.check()


def test_paths_ratings_reference_category_id_and_labeller(tmp_path):
    record = {
        "uid": 9, "kind": "math", "gold": "4", "rater": "ann",
        "question": "2+2?",
        "completions": [{"text": "4", "score": 9}, {"text": "5", "score": 2.5}],
    }
    fmap = parse_roles(["query=question", "responses=completions[].text",
                        "ratings=completions[].score", "reference=gold", "category=kind",
                        "id=uid", "labeller=rater"])
    (item,), _ = split(read_dataset(jsonl(tmp_path / "p.jsonl", [record]), mapping=fmap))
    assert (item.external_id, item.category, item.reference) == ("9", "math", "4")
    assert item.responses == ("4", "5") and item.ratings == (9.0, 2.5)
    assert item.labels == (SourceLabel(best=0, labeller="rater:ann"),)


def test_equal_top_ratings_are_a_tie(tmp_path):
    record = {"q": "x", "r": ["a", "b", "c"], "s": [3, 5, 5]}
    fmap = parse_roles(["query=q", "responses=r", "ratings=s"])
    (item,), _ = split(read_dataset(jsonl(tmp_path / "t.jsonl", [record]), mapping=fmap))
    assert item.labels == (SourceLabel(best=None, labeller=None),)


def test_a_conversation_field_gives_earlier_turns_and_the_last_user_query(tmp_path):
    record = {
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello."},
                     {"role": "user", "content": "2+2?"}],
        "a": "4", "b": "22", "pick": "a",
    }
    fmap = parse_roles(["query=messages", "responses=a,b", "best=pick"], ["a=0,b=1"])
    (item,), _ = split(read_dataset(jsonl(tmp_path / "m.jsonl", [record]), mapping=fmap))
    assert item.query == "2+2?"
    assert item.context == (Turn(role="system", content="Be brief."),
                            Turn(role="user", content="Hi"),
                            Turn(role="assistant", content="Hello."))
    assert item.labels[0].best == 0


def test_a_partial_map_changes_a_detected_or_named_preset(tmp_path):
    record = {"question_id": 1, "model_a": "x", "model_b": "y", "winner": "model_b",
              "judge": "u1", "turn": 1, "anony": True, "language": "English", "tag": "T",
              "conversation_a": [{"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hello"}],
              "conversation_b": [{"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hey"}]}
    path = jsonl(tmp_path / "arena.jsonl", [record])
    (item,), _ = split(read_dataset(path, mapping=parse_roles(["category=tag"])))
    assert item.category == "T" and item.labels[0].best == 1
    (item,), _ = split(read_dataset(path, "chatbot_arena", mapping=parse_roles(["id=judge"])))
    assert item.external_id == "u1" and item.category == "English"
    with pytest.raises(InputError, match="'pandalm' format is read by its own code"):
        read_dataset(path, "pandalm", mapping=parse_roles(["id=judge"]))


# --- through the command line ---------------------------------------------------------------


@pytest.fixture
def database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", url)
    return url


def stored(url: str, dataset: str) -> list[tuple]:
    from core.store.db import make_engine
    from core.store.export import item_records

    engine = make_engine(url)
    try:
        return [(r["query"], tuple(r["responses"]), tuple(r["ground_truth"]))
                for r in item_records(engine, dataset)]
    finally:
        engine.dispose()


MAP_ARGS = ["--map", "query=instruction", "--map", "responses=response1,response2",
            "--map", "best=label", "--label-values", "1=0,2=1,tie=tie"]


def test_cli_import_with_a_mapping_is_idempotent(database, tmp_path):
    path = jsonl(tmp_path / "a.jsonl", INSTRUCTION)
    result = runner.invoke(app, ["import", str(path), "--dataset", "mine", *MAP_ARGS])
    assert result.exit_code == 0, result.output
    assert "imported 2 item(s) into 'mine'" in result.output
    assert stored(database, "mine") == [("Say hi", ("hi", "hello"), (1,)),
                                        ("Say bye", ("bye", "ciao"), (None,))]
    again = runner.invoke(app, ["import", str(path), "--dataset", "mine", *MAP_ARGS])
    assert again.exit_code == 0 and "already imported" in again.output
    copy = jsonl(tmp_path / "copy.jsonl", [*INSTRUCTION, INSTRUCTION[0]])  # same items again
    third = runner.invoke(app, ["import", str(copy), "--dataset", "mine", *MAP_ARGS])
    assert "imported 0 item(s) into 'mine', 3 already there" in third.output
    assert len(stored(database, "mine")) == 2


def test_cli_unknown_shape_prints_the_map_line(database, tmp_path):
    path = jsonl(tmp_path / "a.jsonl", INSTRUCTION)
    result = runner.invoke(app, ["import", str(path), "--dataset", "mine"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--map query=instruction" in result.output


def test_cli_a_failed_mapped_import_stores_nothing(database, tmp_path):
    path = jsonl(tmp_path / "a.jsonl", INSTRUCTION)
    result = runner.invoke(app, ["import", str(path), "--dataset", "mine", *MAP_ARGS[:-2],
                                 "--label-values", "x=0"])
    assert result.exit_code == 2
    assert "nothing in" in result.output and "Nothing was stored" in result.output
    assert "fix the mapping" in result.output
    from core.store.db import make_engine
    from core.store.stats import dataset_counts

    engine = make_engine(database)
    assert [c.dataset for c in dataset_counts(engine)] == []
    engine.dispose()


def test_cli_bad_map_option_is_one_line(database, tmp_path):
    path = jsonl(tmp_path / "a.jsonl", INSTRUCTION)
    result = runner.invoke(app, ["import", str(path), "--dataset", "m", "--map", "who=x"])
    assert result.exit_code == 2 and "unknown role 'who'" in result.output


def test_a_record_without_its_label_or_with_an_empty_one_is_unlabelled(tmp_path):
    """(The first record must have the mapped label field: a misspelt one is refused.)"""
    fmap = parse_roles(["query=instruction", "responses=response1,response2", "best=label"],
                       ["1=0,2=1,tie=tie"])
    records = [{"instruction": "r", "response1": "a", "response2": "b", "label": " "},
               {"instruction": "q", "response1": "a", "response2": "b"}]
    items, skipped = split(read_dataset(jsonl(tmp_path / "n.jsonl", records), mapping=fmap))
    assert [i.labels for i in items] == [(), ()] and skipped == []


# --- the README's --map lines work on records of the shapes they name ------------------------

README_RECORDS = {
    "f.jsonl": INSTRUCTION[0],
    "f.csv": SPACED[2],
    "shp.jsonl": {"post_id": "p9", "domain": "askscience", "history": "Why is the sky blue?",
                  "human_ref_A": "Rayleigh scattering.", "human_ref_B": "Because.",
                  "labels": 1, "score_A": 52, "score_B": 3},
    "pku.parquet": {"prompt": "How do I stay safe online?", "response_0": "Use strong passwords.",
                    "response_1": "Share everything.", "better_response_id": 0,
                    "safer_response_id": 0},
    "uf.parquet": json.loads((Path(__file__).parent / "fixtures" / "datasets" / "presets"
                              / "ultrafeedback.jsonl").read_text().splitlines()[0]),
}


def readme_import_lines() -> list[list[str]]:
    import shlex

    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Any preference data in"):text.index("## Evaluate the judge")]
    joined = section.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines()
            if line.startswith("grm-studio import")]


def test_the_readme_map_lines_read_the_records_they_describe(tmp_path):
    lines = readme_import_lines()
    assert {line[2] for line in lines} == set(README_RECORDS)
    for args in lines:
        maps = [args[i + 1] for i, a in enumerate(args) if a == "--map"]
        values = [args[i + 1] for i, a in enumerate(args) if a == "--label-values"]
        preset = next((args[i + 1] for i, a in enumerate(args) if a == "--preset"), None)
        path = jsonl(tmp_path / f"{args[2]}.jsonl", [README_RECORDS[args[2]]])
        entries = list(read_dataset(path, preset, mapping=parse_roles(maps, values)))
        assert [type(e) for e in entries] == [SourceItem], (args, entries)
        (item,) = entries
        assert item.labels and item.labels[0].best in (0, 1, 2, None)
