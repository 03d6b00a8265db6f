"""Parquet, Arrow, folders of shards and `save_to_disk` folders (issue 18 step 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.datasets import ReadLimits, Skipped, SourceItem, read_dataset
from core.datasets.columnar import source_sha256
from core.errors import InputError

# RewardBench 2 as published: best-of-4 as lists, one Ties item with two correct answers
RB2 = [
    {"id": "a1", "prompt": "Capital of France?", "chosen": ["Paris."],
     "rejected": ["Lyon.", "Nice.", "Marseille."], "num_correct": 1, "num_incorrect": 3,
     "total_completions": 4, "models": ["m1", "m2", "m3", "m4"], "subset": "Factuality"},
    {"id": "a2", "prompt": "Name a prime below 5.", "chosen": ["2", "3"],
     "rejected": ["4", "1"], "num_correct": 2, "num_incorrect": 2, "total_completions": 4,
     "models": ["m1", "m2", "m3", "m4"], "subset": "Ties"},
]


def items_of(path: Path, **kw) -> tuple[list[SourceItem], list[Skipped]]:
    entries = list(read_dataset(path, **kw))
    return ([e for e in entries if isinstance(e, SourceItem)],
            [e for e in entries if isinstance(e, Skipped)])


def as_jsonl(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "same.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def canon(items: list[SourceItem]) -> list[tuple]:
    return [(i.external_id, i.query, i.responses, i.labels, i.category) for i in items]


def test_a_parquet_file_reads_like_the_same_records_in_jsonl(tmp_path):
    path = tmp_path / "rb2.parquet"
    pq.write_table(pa.Table.from_pylist(RB2), path)
    items, skipped = items_of(path)
    assert skipped == []
    assert canon(items) == canon(items_of(as_jsonl(tmp_path, RB2))[0])
    first = items[0]
    assert sorted(first.responses) == ["Lyon.", "Marseille.", "Nice.", "Paris."]
    assert first.responses[first.labels[0].best] == "Paris." and first.category == "Factuality"
    assert [i.line for i in items] == [1, 2]


def test_row_groups_are_read_one_after_another_and_rows_numbered_across_them(tmp_path):
    records = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
               for i in range(10)]
    records[6]["chosen"] = " "  # a bad row is skipped by its number
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=3)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    items, skipped = items_of(path)
    assert [i.query for i in items] == [f"q{i}" for i in range(10) if i != 6]
    assert [s.reason for s in skipped] == ["row 7: 'chosen' is empty"]


def test_a_folder_of_parquet_shards_is_read_in_name_order(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(RB2[1:]), folder / "train-00001-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(RB2[:1]), folder / "train-00000-of-00002.parquet")
    (folder / ".cache").mkdir()
    pq.write_table(pa.Table.from_pylist(RB2), folder / ".cache" / "ignored.parquet")
    items, skipped = items_of(folder)
    assert [i.external_id for i in items] == ["a1", "a2"] and skipped == []
    assert [i.line for i in items] == [1, 2]


def test_a_save_to_disk_folder_and_a_dataset_dict(tmp_path):
    from datasets import Dataset, DatasetDict

    saved = tmp_path / "saved"
    Dataset.from_list(RB2).save_to_disk(str(saved))
    items, skipped = items_of(saved)
    assert canon(items) == canon(items_of(as_jsonl(tmp_path, RB2))[0]) and skipped == []
    both = tmp_path / "both"
    DatasetDict({"train": Dataset.from_list(RB2), "test": Dataset.from_list(RB2[:1])}) \
        .save_to_disk(str(both))
    with pytest.raises(InputError, match=r"several splits \(train, test\).*both/train"):
        read_dataset(both)
    assert len(items_of(both / "test")[0]) == 1


def test_an_arrow_ipc_file(tmp_path):
    path = tmp_path / "rb2.arrow"
    table = pa.Table.from_pylist(RB2)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    assert len(items_of(path)[0]) == 2


def test_limits_hold_for_parquet(tmp_path):
    records = [{"prompt": f"q{i}", "chosen": "x" * 2000, "rejected": f"bad {i}"}
               for i in range(40)]
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=10)
    with pytest.raises(InputError, match="more than 1 KiB, the most an import reads"):
        read_dataset(path, limits=ReadLimits(max_bytes=1024))
    with pytest.raises(InputError, match=r"row group 1 holds .* the most read at once"):
        list(read_dataset(path, limits=ReadLimits(max_group_bytes=4096)))
    with pytest.raises(InputError, match=r"row 1 holds about 1\.98\d* KiB, more than 1\.465"):
        list(read_dataset(path, limits=ReadLimits(max_line_bytes=1500)))


def test_unreadable_folders_and_files_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"a folder without \.parquet or \.arrow files"):
        read_dataset(tmp_path / "empty")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_dataset(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "missing.parquet")


def test_a_folder_digest_changes_with_its_data_only(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(RB2), folder / "a.parquet")
    before = source_sha256(folder)
    (folder / "README.md").write_text("notes")
    assert source_sha256(folder) == before
    pq.write_table(pa.Table.from_pylist(RB2[:1]), folder / "b.parquet")
    assert source_sha256(folder) != before


def test_importing_a_folder_twice_does_nothing_the_second_time(tmp_path):
    from core.store.db import make_engine, upgrade
    from core.store.export import item_records
    from core.store.importing import import_file

    folder = tmp_path / "shards"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(RB2), folder / "train-00000.parquet")
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    report = import_file(engine, folder, "rb2", shape="rewardbench2")
    assert report.imported == 2
    assert import_file(engine, folder, "rb2").already_imported
    stored = list(item_records(engine, "rb2"))
    assert [len(r["responses"]) for r in stored] == [4, 4]
    paris, primes = (r["ground_truth"][0] for r in stored)
    assert stored[0]["responses"][paris] == "Paris."  # one chosen: the best response
    assert sorted(stored[1]["responses"][i] for i in primes) == ["2", "3"]  # both correct
    engine.dispose()
