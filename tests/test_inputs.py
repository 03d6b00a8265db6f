import json

import pytest

from core.errors import ResponsesFileError
from core.inputs import read_responses_file


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_list_of_strings(tmp_path):
    path = write(tmp_path, "r.json", json.dumps(["a", "b"]))
    assert read_responses_file(path) == (["a", "b"], None, [])


def test_json_object_with_query_and_context(tmp_path):
    doc = {
        "query": "q?",
        "responses": ["a", {"response": "b"}],
        "context": [{"role": "user", "content": "hi"}],
    }
    responses, query, context = read_responses_file(write(tmp_path, "r.json", json.dumps(doc)))
    assert responses == ["a", "b"] and query == "q?"
    assert context[0].role == "user" and context[0].content == "hi"


def test_jsonl_strings_and_objects_skip_blank_lines(tmp_path):
    path = write(tmp_path, "r.jsonl", '"a"\n\n{"text": "b"}\n')
    assert read_responses_file(path)[0] == ["a", "b"]


def test_jsonl_saved_as_json_is_read_as_jsonl(tmp_path):
    path = write(tmp_path, "r.json", '{"response": "a"}\n{"response": "b"}\n')
    assert read_responses_file(path)[0] == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("r.jsonl", '"a"\n{"response": \n"c"\n', r"line 2 is not valid JSON"),
        ("r.json", '[\n  "a",\n  "b",,\n]', r"invalid JSON at line 3"),
        ("r.json", "", r"is empty"),
        ("r.jsonl", '"a"\n42\n', r"line 2 must be a string"),
        ("r.json", '{"query": "q"}', r"expected a list of responses"),
        ("r.json", '{"query": 3, "responses": ["a"]}', r"'query' must be a string"),
        ("r.json", '{"responses": ["a"], "context": [{"role": "robot", "content": "x"}]}', "context"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, name, text, message):
    with pytest.raises(ResponsesFileError, match=message):
        read_responses_file(write(tmp_path, name, text))


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ResponsesFileError, match="cannot read"):
        read_responses_file(tmp_path / "nope.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ResponsesFileError, match="not UTF-8"):
        read_responses_file(binary)


def test_parse_turns_reads_roles_and_multiline_turns():
    from core.inputs import parse_turns

    turns = parse_turns("User: hi there\nAssistant: hello\nhow can I help?\n\nuser:  thanks")
    assert [(t.role, t.content) for t in turns] == [
        ("user", "hi there"), ("assistant", "hello\nhow can I help?"), ("user", "thanks"),
    ]
    assert parse_turns("") == () and parse_turns("  \n") == ()


def test_parse_turns_names_the_line_without_a_role():
    from core.errors import InputError
    from core.inputs import parse_turns

    with pytest.raises(InputError, match="line 2: start each turn"):
        parse_turns("\nno role here\nUser: x")


def test_parse_score_list():
    from core.errors import InputError
    from core.inputs import parse_score_list

    assert parse_score_list("7, 5", 2) == (7, 5)
    assert parse_score_list(" 7 5 ", 2) == (7, 5)
    assert parse_score_list("  ", 2) is None
    with pytest.raises(InputError, match="one integer per response \\(2\\), got 3"):
        parse_score_list("1,2,3", 2)
    with pytest.raises(InputError, match="must be integers"):
        parse_score_list("7, five", 2)
