"""The CLI as a user runs it: bad input gives one clear line, no traceback."""

import json
import re
from pathlib import Path

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
        (["--query", "q", *[arg for i in range(10) for arg in ("-r", f"r{i}")]], "1 to 9 response"),
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


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "preferences"


@pytest.fixture
def database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", url)
    return url


def test_import_stats_export_from_the_command_line(database, tmp_path):
    source = tmp_path / "pairs.jsonl"
    source.write_text(
        '{"prompt": "q1?", "responses": ["a", "b"], "best": 1}\n'
        "{oops\n"
        '{"prompt": "q2?", "responses": ["c", "d"], "best": 0}\n'
    )
    result = run("import", str(source), "--dataset", "mine")
    assert result.exit_code == 0, result.output
    assert "imported 2 item(s) into 'mine'" in result.output
    assert "skipped 1" in result.output and "line 2" in result.output
    again = run("import", str(source), "--dataset", "mine")
    assert "already imported" in again.output
    stats = run("stats")
    assert stats.exit_code == 0, stats.output
    assert re.search(r"mine\s+2\s+2\s+0\s+0\s+0", stats.output)
    out = tmp_path / "items.jsonl"
    exported = run("export", "items", str(out))
    assert exported.exit_code == 0 and "wrote 2 items" in exported.output
    assert [json.loads(line)["ground_truth"] for line in out.read_text().splitlines()] == [[1], [0]]


def test_import_of_a_real_dataset_file(database):
    path = SHARED / "judgebench" / "gpt-4o-2024-05-13.jsonl"
    if not path.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    result = run("import", str(path), "--dataset", "judgebench")
    assert result.exit_code == 0, result.output
    assert "imported 350 item(s)" in result.output


def test_store_commands_report_a_bad_database_url(monkeypatch, tmp_path):
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = run("stats")
    assert result.exit_code == 2
    assert "database cannot be reached" in result.output and "Traceback" not in result.output


def test_judge_unknown_dataset_is_a_clear_error(database):
    result = run("judge", "--dataset", "nope")
    assert result.exit_code == 2 and "there is no dataset 'nope'" in result.output


@pytest.mark.model
def test_batch_judge_a_dataset_with_the_embedded_model(database, tmp_path):
    source = tmp_path / "pairs.jsonl"
    source.write_text(
        '{"prompt": "Is 7 prime?", "responses": ["Yes.", "No."], "best": 0}\n'
        '{"prompt": "2+2?", "responses": ["4", "5"], "best": 0}\n'
    )
    assert run("import", str(source), "--dataset", "tiny").exit_code == 0
    args = ["judge", "--dataset", "tiny", "-k", "2", "--max-new-tokens", "16"]
    first = run(*args, "--limit", "1")
    assert first.exit_code == 0, first.output
    assert "judged 1 item(s) of 'tiny'; 0 already done" in first.output
    second = run(*args)
    assert "judged 1 item(s) of 'tiny'; 1 already done" in second.output
    stats = run("stats", "--dataset", "tiny")
    assert re.search(r"tiny\s+2\s+2\s+0\s+0\s+2\s+0", stats.output)  # items truth imported labelled judged labels
    assert "judge accuracy vs item label" in stats.output


def test_account_command_prompts_for_a_hidden_password(database):
    from sqlalchemy import create_engine

    from core.store.accounts import authenticate

    result = runner.invoke(app, ["account", "ada", "--role", "viewer"],
                           input="s3cret-words\ns3cret-words\n")
    assert result.exit_code == 0, result.output
    assert "account 'ada' (viewer) saved" in result.output
    assert "s3cret-words" not in result.output
    assert authenticate(create_engine(database), "ada", "s3cret-words").role == "viewer"
    short = runner.invoke(app, ["account", "bo"], input="short\nshort\n")
    assert short.exit_code == 2 and "at least 8" in short.output


def test_a_database_password_never_shows(monkeypatch):
    from core.config import Settings

    url = "postgresql+psycopg://grm:hunter2-secret@127.0.0.1:1/none"
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", url)
    result = run("stats")
    assert result.exit_code == 2 and "hunter2-secret" not in result.output
    settings = Settings()
    assert settings.resolved_database_url == url
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings)
