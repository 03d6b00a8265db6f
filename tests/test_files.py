"""Writing under a trusted name: a file or a directory appears only when complete."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.files import atomic_write, staged_directory


def test_a_staged_directory_appears_only_when_complete(tmp_path):
    with (  # noqa: PT012  (the body is the interrupted save; match= pins the raise to it)
        pytest.raises(RuntimeError, match="killed mid-save"),
        staged_directory(tmp_path / "out") as staging,
    ):
        (staging / "weights").write_text("half")
        raise RuntimeError("killed mid-save")
    assert list(tmp_path.iterdir()) == []
    with staged_directory(tmp_path / "out") as staging:
        (staging / "weights").write_text("all")
    assert (tmp_path / "out" / "weights").read_text() == "all"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(InputError, match="already exists"), staged_directory(tmp_path / "out"):
        pass


def test_a_staged_directory_built_by_another_process_first_is_kept_with_race_ok(tmp_path):
    target = tmp_path / "cache" / "model"
    with staged_directory(target, race_ok=True) as staging:
        (staging / "weights").write_text("mine")
        target.mkdir()  # another process renames its finished copy into place first
        (target / "weights").write_text("theirs")
    assert (target / "weights").read_text() == "theirs"
    assert [p.name for p in target.parent.iterdir()] == ["model"]  # ours is gone
    with (  # noqa: PT012  (the body is the lost race: the rename at the end raises)
        pytest.raises(OSError, match=r"Directory not empty|File exists"),
        staged_directory(tmp_path / "other"),
    ):
        (tmp_path / "other").mkdir()  # without race_ok a lost race is an error
        (tmp_path / "other" / "x").write_text("theirs")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial")] == []


def test_an_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    path = tmp_path / "data" / "labels.jsonl"
    with atomic_write(path) as handle:
        handle.write("old\n")
    with (  # noqa: PT012  (the body is the interrupted write; match= pins the raise to it)
        pytest.raises(RuntimeError, match="killed mid-write"),
        atomic_write(path) as handle,
    ):
        handle.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    assert [p.name for p in path.parent.iterdir()] == ["labels.jsonl"]
