"""The CLI as a user runs it: bad input gives one clear line, no traceback."""

import json

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--query", "", "-r", "a", "-r", "b"], "the query is empty"),
        (["--query", "q"], "there are no responses"),
        (["--query", "q", "-r", "a", "-r", "  "], "response 2 is empty"),
        (["--query", "q", *sum((["-r", f"r{i}"] for i in range(10)), [])], "1 to 9 response"),
        (["-r", "a"], "no query"),
        (["--query", "q", "-r", "a", "--template", "nope"], "unknown template"),
        (["--query", "q", "-r", "a", "--model", "/no/such/model"], "not found"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    result = run("judge", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_responses_file_names_the_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('"ok"\n{broken\n')
    result = run("judge", "--query", "q", "--responses-file", str(path))
    assert result.exit_code == 2
    assert "line 2 is not valid JSON" in result.output


def test_invalid_setting_from_the_environment_is_reported(monkeypatch):
    monkeypatch.setenv("GRM_STUDIO_TEMPERATURE", "hot")
    result = run("judge", "--query", "q", "-r", "a")
    assert result.exit_code == 2 and "invalid setting: temperature" in result.output


def test_templates_lists_every_template():
    result = run("templates")
    assert result.exit_code == 0
    for name in ("grm-pointwise", "grm-pointwise-hinted", "grm-single"):
        assert name in result.output


@pytest.mark.model
def test_judge_json_with_the_embedded_model(tmp_path):
    path = tmp_path / "pair.json"
    path.write_text(json.dumps({"query": "Is 7 prime?", "responses": ["Yes, 7 is prime.", "No."]}))
    result = run("judge", "--responses-file", str(path), "-k", "2", "--max-new-tokens", "24", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input"]["query"] == "Is 7 prime?"
    assert len(data["samples"]) == 2
    assert {tuple(s["shown_order"]) for s in data["samples"]} == {(0, 1), (1, 0)}
    for sample in data["samples"]:
        assert sample["parse"]["status"] in ("ok", "failed")
        assert sample["raw_text"]
    assert data["vote"]["valid_samples"] + data["vote"]["invalid_samples"] == 2


@pytest.mark.model
def test_prompt_longer_than_the_context_says_limit_and_size():
    result = run("judge", "--query", "word " * 9000, "-r", "a", "-r", "b")
    assert result.exit_code == 2
    assert "context is 8,192 tokens" in result.output
    assert "Traceback" not in result.output
