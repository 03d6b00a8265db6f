"""Issue 16, "limits and clean errors" for import: a dataset file is read with
bounded memory, and one past a limit (decompressed size, one line, one JSON
record) is refused with a message naming the limit, storing nothing. Also
issue 17 item 7 through the web import handler: a failed import leaves no
dataset, and a retry with another shape works."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import ScriptedBackend, Settings
from core.datasets import ReadLimits, Skipped, SourceItem, read_dataset
from core.datasets.json_values import MAX_DEPTH
from core.errors import InputError
from core.store.accounts import Account
from core.store.browse import dataset_names
from core.store.db import make_engine, upgrade
from core.store.importing import MAX_SKIPS_KEPT, import_file
from core.store.schema import Dataset, ImportRun, Item
from webapp.datasets_tab import import_upload
from webapp.studio import Studio

REPO = Path(__file__).resolve().parent.parent
PAIR = {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}
SMALL = ReadLimits(max_bytes=64 * 1024, max_line_bytes=1024)


def jsonl(*records: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def entries(path: Path, limits: ReadLimits | None = None, shape: str | None = None) -> list:
    return list(read_dataset(path, shape, limits))


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def stored(engine) -> tuple[int, int, int]:
    """(datasets, import runs, items): all zero after a refused first import."""
    with engine.connect() as connection:
        return tuple(connection.scalar(select(func.count()).select_from(t))
                     for t in (Dataset, ImportRun, Item))


# -- the limits, each refused with its name -------------------------------------


def test_settings_give_the_import_limits_and_the_env_sets_them(monkeypatch):
    assert Settings().import_limits() == ReadLimits()
    assert Settings().upload_max_mb == 256  # for the web app's upload limit (Gradio, 413)
    assert ReadLimits() == ReadLimits(max_bytes=512 << 20, max_line_bytes=16 << 20)
    monkeypatch.setenv("GRM_STUDIO_IMPORT_MAX_BYTES", "1000")
    monkeypatch.setenv("GRM_STUDIO_IMPORT_MAX_LINE_BYTES", "100")
    assert Settings().import_limits() == ReadLimits(max_bytes=1000, max_line_bytes=100)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_line_of_exactly_the_limit_reads_and_one_byte_more_is_refused_by_number(
    tmp_path, suffix
):
    limits = ReadLimits(max_line_bytes=100)
    if suffix == ".csv":
        head, line = b"prompt,chosen,rejected\n", b"q,a," + b"b" * 96
    else:
        head, line = jsonl(PAIR), b'{"prompt": "q", "chosen": "a", "rejected": "' + b"b" * 54 + b'"}'
    assert len(line) == 100
    fits = tmp_path / f"fits{suffix}"
    fits.write_bytes(head + line + b"\n")
    assert [type(e) for e in entries(fits, limits)][-1] is SourceItem
    over = tmp_path / f"over{suffix}"
    over.write_bytes(head + line[:1] + line + b"\n")
    with pytest.raises(InputError) as refused:
        entries(over, limits)
    assert str(refused.value) == (
        f"{over}: line 2 is longer than 100 bytes, the most one line may hold; split the "
        "record, or raise GRM_STUDIO_IMPORT_MAX_LINE_BYTES"
    )


def test_a_gzip_past_the_decompressed_limit_is_refused(tmp_path):
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(*[PAIR | {"prompt": f"q{i}"} for i in range(5000)])))
    assert path.stat().st_size < SMALL.max_bytes  # small on disk, large once decompressed
    with pytest.raises(InputError, match=r"bomb\.jsonl\.gz holds more than 64 KiB of data "
                       r"\(decompressed\), the most an import reads; split the file, or raise "
                       "GRM_STUDIO_IMPORT_MAX_BYTES"):
        entries(path, SMALL)


def test_a_file_of_only_blanks_past_the_limit_is_refused_before_its_first_record(tmp_path):
    path = tmp_path / "blank.jsonl.gz"
    path.write_bytes(gzip.compress(b" " * 100_000))
    with pytest.raises(InputError, match="holds more than 64 KiB"):
        entries(path, SMALL)


def test_one_json_record_past_the_limit_is_refused_while_it_is_read(tmp_path):
    limits = ReadLimits(max_line_bytes=100_000)
    path = tmp_path / "big.json"
    path.write_bytes(json.dumps([PAIR, PAIR | {"chosen": "x" * 1_000_000}]).encode())
    with pytest.raises(InputError) as refused:
        entries(path, limits)
    assert str(refused.value) == (
        f"{path}: record 2 is longer than 97.66 KiB, the most one record may hold; split it, "
        "or raise GRM_STUDIO_IMPORT_MAX_LINE_BYTES"
    )
    path.write_bytes(json.dumps([PAIR | {"id": i} for i in range(3000)]).encode())
    assert len(entries(path, limits)) == 3000  # many small records: the limit is per record


def test_a_json_file_past_the_decompressed_limit_is_refused(tmp_path):
    path = tmp_path / "many.json"
    path.write_bytes(json.dumps([PAIR | {"id": i} for i in range(3000)]).encode())
    with pytest.raises(InputError, match=r"many\.json holds more than 64 KiB"):
        entries(path, SMALL)


def test_a_refused_import_stores_nothing_and_names_the_limit(engine, tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes(jsonl(PAIR) + jsonl(PAIR | {"chosen": "y" * 5000}))
    with pytest.raises(InputError, match="line 2 is longer than 1 KiB"):
        import_file(engine, path, "long", limits=SMALL)
    assert stored(engine) == (0, 0, 0)
    assert import_file(engine, path, "long").imported == 2  # the default limits take it


def test_a_gzip_of_a_gigabyte_without_a_newline_is_refused_with_bounded_memory(tmp_path):
    """The issue's case: 1 GiB of one line, gzipped (1 MiB on disk). Before, reading
    it took RSS up by 1.9 GB; now the 16 MiB line limit stops it early."""
    path = tmp_path / "one-line.jsonl.gz"
    block = b"x" * (1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip container
    with path.open("wb") as out:
        for _ in range(1024):
            out.write(packer.compress(block))
        out.write(packer.flush())
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from core.datasets import read_dataset\n"
        "from core.errors import InputError\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    list(read_dataset(Path(sys.argv[1])))\n"
        "except InputError as err:\n"
        "    print(err)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, check=True, cwd=REPO)
    message, grown_kib = done.stdout.strip().rsplit("\n", 1)
    assert "line 1 is longer than 16 MiB" in message
    assert int(grown_kib) < 80 * 1024, f"peak memory grew by {int(grown_kib) / 1024:.0f} MiB"


# -- what used to crash: deep nesting, huge numbers ------------------------------


def test_a_deeply_nested_json_record_is_skipped_with_bounded_memory(tmp_path):
    """ijson.items kept a prefix string per event: 30,000 levels took 2 GB."""
    deep = b"[" * 200_000 + b"]" * 200_000
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" + json.dumps(PAIR).encode() + b"," + deep + b"," + json.dumps(PAIR | {"prompt": "2"}).encode() + b"]")
    found = entries(path)
    assert [type(e) for e in found] == [SourceItem, Skipped, SourceItem]
    assert found[1].reason == f"record 2: nested more than {MAX_DEPTH} lists or objects deep"
    lines = tmp_path / "deep.jsonl"
    lines.write_bytes(jsonl(PAIR) + deep + b"\n")
    assert entries(lines)[1].reason == "line 2: JSON nested too deeply to read"


def test_numbers_too_long_to_convert_are_skipped_not_crashes(tmp_path):
    huge = b'{"prompt": "q", "chosen": "a", "rejected": "b", "id": ' + b"9" * 5000 + b"}"
    lines = tmp_path / "n.jsonl"
    lines.write_bytes(jsonl(PAIR) + huge + b"\n")
    assert entries(lines)[1].reason == "line 2: invalid JSON (a number too long to read)"
    array = tmp_path / "n.json"
    array.write_bytes(b"[" + json.dumps(PAIR).encode() + b"," + huge + b"]")
    assert entries(array)[1].reason.startswith("record 2: invalid JSON, reading stopped here")
    cell = tmp_path / "n.csv"
    cell.write_bytes(b'prompt,responses,best\nq,"[' + b"[" * 5000 + b'""a""]",0\n')
    assert entries(cell)[0].reason == "line 2: 'responses' must be a JSON list in the cell"


@pytest.mark.parametrize("number", ["9" * 5000, "²", "١٢٣", "1_0"])
def test_an_integer_cell_that_is_not_plain_digits_is_skipped_not_a_crash(tmp_path, number):
    """int() raised ValueError on 5,000 digits and on '²' (str.isdigit accepts both)."""
    path = tmp_path / "n.csv"
    path.write_text(f'prompt,responses,best\nq,"[""a"", ""b""]",{number}\n', encoding="utf-8")
    (skipped,) = entries(path)
    assert skipped.reason.startswith("line 2: 'best' must be a response index from 0 to 1")


def test_a_lone_surrogate_escaped_inside_a_csv_json_cell_is_skipped(engine, tmp_path):
    """The cell's text has only a backslash escape; the surrogate appears once the
    cell's JSON is decoded, and used to crash the content hash (UnicodeEncodeError)."""
    path = tmp_path / "s.csv"
    path.write_text('prompt,responses,best\nq,"[""a"", ""b\\ud800""]",0\nq2,"[""a"", ""b""]",0\n')
    report = import_file(engine, path, "surrogate")
    assert report.imported == 1
    assert [s.reason for s in report.skipped] == [(
        "line 2: response 2 contains a lone UTF-16 surrogate (\\ud800), which is not valid "
        "Unicode; fix or remove it in the file"
    )]


def test_a_report_keeps_the_first_skips_and_counts_the_rest(engine, tmp_path):
    path = tmp_path / "noisy.jsonl"
    path.write_bytes(jsonl(PAIR) + b"{bad\n" * (MAX_SKIPS_KEPT + 500))
    report = import_file(engine, path, "noisy")
    assert (report.imported, len(report.skipped), report.more_skipped) == (1, MAX_SKIPS_KEPT, 500)
    assert report.summary().endswith(f"skipped {MAX_SKIPS_KEPT + 500}")


# -- issue 17 item 7 through the web import handler --------------------------------


def test_a_failed_web_import_leaves_no_dataset_and_a_retry_with_the_right_shape_works(
    engine, tmp_path
):
    studio = Studio(Settings(), engine, backend=ScriptedBackend([]))
    admin = Account("root", "admin")
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(jsonl(PAIR, PAIR | {"prompt": "again"}))
    with pytest.raises(InputError) as refused:
        import_upload(studio, admin, str(path), "pairs", "llmbar")
    assert str(refused.value).startswith(
        "could not import pairs.jsonl: nothing in pairs.jsonl can be imported: all 2 record(s) "
        "were skipped (line 1: missing field 'label'"
    )
    assert dataset_names(engine) == [] and stored(engine) == (0, 0, 0)
    report = import_upload(studio, admin, str(path), "pairs", "chosen_rejected")
    assert "imported 2 item(s) into &#x27;pairs&#x27;" in report
    assert dataset_names(engine) == ["pairs"]


def test_the_web_import_uses_the_configured_limits(engine, tmp_path):
    studio = Studio(Settings(import_max_line_bytes=1024), engine, backend=ScriptedBackend([]))
    path = tmp_path / "long.jsonl"
    path.write_bytes(jsonl(PAIR | {"chosen": "y" * 5000}))
    with pytest.raises(InputError, match=r"^could not import long\.jsonl: long\.jsonl: line 1 "
                       "is longer than 1 KiB"):
        import_upload(studio, Account("root", "admin"), str(path), "long", "")
    assert stored(engine) == (0, 0, 0)
