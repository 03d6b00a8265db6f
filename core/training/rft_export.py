"""Versioned RFT exports on disk, and their record in the store.

An export is a directory `<exports>/<name>/v<version>/`:

    train.jsonl         accepted trajectories of training items (sampled + human)
    validation.jsonl    accepted trajectories of held-out items
    hinted.jsonl        accepted hinted trajectories (training items only), kept apart
    trajectories.jsonl  every trajectory with its verdict (accepted or why not)
    card.json           name, version, params, judge, counts by reason, files, content hash
    README.md           the dataset card, with the `configs` header `datasets` reads

Records are chat `messages` (user: the unhinted prompt; assistant: the
trajectory), which TRL's SFTTrainer and `datasets.load_dataset("json", ...)`
read as they are. The directory is written under a temporary name and renamed
into place when complete, card and hash last; only then is the export
recorded in the store. An interrupted export leaves a `.partial-*` directory
and nothing that claims to be complete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.files import file_sha256, staged_directory
from core.store.judgements import judge_model_id
from core.store.schema import RFTExport
from core.training.rft_data import RFTBuild, RFTConfig, Trajectory
from core.types import ModelInfo, SamplingParams

DATA_FILES = ("train.jsonl", "validation.jsonl", "hinted.jsonl", "trajectories.jsonl")
CARD = "card.json"


class ExportError(InputError):
    """An export that is missing, incomplete or does not match its content hash."""


@dataclass(frozen=True)
class ExportInfo:
    id: int | None
    name: str
    version: int
    path: Path
    content_sha256: str
    counts: dict[str, int]
    card: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.version}"


def write_export(
    engine: Engine,
    build: RFTBuild,
    *,
    name: str,
    root: Path,
    config: RFTConfig,
    params: SamplingParams,
    judge: ModelInfo,
    template: str,
    dataset: str | None,
    created_by: str | None,
    skipped: dict[str, int] | None = None,
) -> ExportInfo:
    """Write `build` as the next version of export `name` under `root`, and record it."""
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"'{name}' cannot name an export: use letters, digits, '-' or '_'")
    counts = {**{f"items_skipped_{k.replace(' ', '_')}": v for k, v in (skipped or {}).items()},
              **build.counts}
    with Session(engine) as session, session.begin():
        version = _next_version(session, root, name)
        target = root / name / f"v{version}"
        with staged_directory(target) as staging:  # renamed in place before the commit
            files = {
                "train.jsonl": _records(build.accepted("train", "sampled") + build.accepted("train", "human")),
                "validation.jsonl": _records(build.accepted("validation")),
                "hinted.jsonl": _records(build.accepted("train", "hinted")),
                "trajectories.jsonl": [t.model_dump(mode="json") for t in build.trajectories],
            }
            listed = {f: _write_jsonl(staging / f, rows) for f, rows in files.items()}
            content = _content_hash(listed)
            card = {
                "name": name,
                "version": version,
                "created_at": datetime.now(UTC).isoformat(),
                "created_by": created_by,
                "dataset": dataset,
                "judge": judge.model_dump(mode="json"),
                "template": template,
                "config": config.model_dump(mode="json"),
                "sampling": params.model_dump(mode="json"),
                "counts": counts,
                "files": listed,
                "content_sha256": content,
            }
            (staging / "README.md").write_text(_dataset_card(card), encoding="utf-8")
            (staging / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
            row = RFTExport(
                name=name,
                version=version,
                content_sha256=content,
                path=str(target.resolve()),
                dataset=dataset,
                judge_model_id=judge_model_id(session, judge),
                counts=counts,
                params={"config": card["config"], "sampling": card["sampling"]},
                created_by=created_by,
            )
            session.add(row)
            session.flush()
            export_id = row.id
    return ExportInfo(export_id, name, version, target, content, counts, card)


def _next_version(session: Session, root: Path, name: str) -> int:
    recorded = session.scalar(select(func.max(RFTExport.version)).where(RFTExport.name == name))
    on_disk = [
        int(p.name[1:]) for p in (root / name).glob("v*") if p.name[1:].isdigit()
    ] if (root / name).is_dir() else []
    return max([recorded or 0, *on_disk]) + 1


def _records(trajectories: list[Trajectory]) -> list[dict[str, Any]]:
    return [
        {
            "messages": t.messages(),
            "item_id": t.item_id,
            "source": t.source,
            "best": t.best,
            "shown_order": list(t.shown_order),
            "scores": list(t.scores) if t.scores is not None else None,
            "rescued": t.rescued,
        }
        for t in trajectories
    ]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"rows": len(rows), "sha256": file_sha256(path)}


def _content_hash(files: dict[str, dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]['sha256']}\n".encode())
    return digest.hexdigest()


def _dataset_card(card: dict[str, Any]) -> str:
    splits = [
        (split, file) for split, file in
        (("train", "train.jsonl"), ("validation", "validation.jsonl"), ("hinted", "hinted.jsonl"))
        if card["files"][file]["rows"]
    ]
    header = "".join(f"  - split: {s}\n    path: {f}\n" for s, f in splits)
    counts = "".join(f"| {k} | {v} |\n" for k, v in sorted(card["counts"].items()))
    return (
        f"---\nconfigs:\n- config_name: default\n  data_files:\n{header}---\n\n"
        f"# RFT export {card['name']} v{card['version']}\n\n"
        f"Rejective fine-tuning data for a generative reward model, built by GRM Studio "
        f"from dataset `{card['dataset']}` with judge `{card['judge']['name']}` "
        f"({card['config']['n_rft']} trajectories per item, strict rule).\n\n"
        "Records are chat `messages`: the user turn is the judge prompt without any hint, "
        "the assistant turn the accepted trajectory. `hinted.jsonl` holds hinted "
        "trajectories, kept apart.\n\n"
        f"| count | n |\n|---|---|\n{counts}\n"
        f"Content SHA-256: `{card['content_sha256']}`\n"
    )


def read_export(path: Path) -> ExportInfo:
    """The export in directory `path`, checked against its card (ExportError if not whole)."""
    card_path = path / CARD
    if not card_path.is_file():
        raise ExportError(f"{path} is not a complete RFT export (no {CARD}); build it again")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    for name, listed in card["files"].items():
        file = path / name
        if not file.is_file() or file_sha256(file) != listed["sha256"]:
            raise ExportError(f"{file} is missing or changed since the export was written")
    if _content_hash(card["files"]) != card["content_sha256"]:
        raise ExportError(f"the content hash in {card_path} does not match its files")
    return ExportInfo(None, card["name"], card["version"], path, card["content_sha256"],
                      card["counts"], card)


def find_export(engine: Engine, ref: str, root: Path) -> ExportInfo:
    """An export by id ('7'), name ('name' = latest, 'name:v2') or directory path."""
    with Session(engine) as session:
        query = select(RFTExport)
        if ref.isdigit():
            query = query.where(RFTExport.id == int(ref))
        else:
            name, _, version = ref.partition(":v")
            query = query.where(RFTExport.name == name)
            if version.isdigit():
                query = query.where(RFTExport.version == int(version))
        row = session.scalars(query.order_by(RFTExport.version.desc()).limit(1)).first()
    if row is not None:
        found = read_export(Path(row.path))
        return ExportInfo(row.id, found.name, found.version, found.path,
                          found.content_sha256, found.counts, found.card)
    path = Path(ref).expanduser()
    if path.is_dir():
        found = read_export(path.resolve())
        with Session(engine) as session:
            row_id = session.scalar(select(RFTExport.id).where(
                RFTExport.content_sha256 == found.content_sha256))
        return ExportInfo(row_id, found.name, found.version, found.path,
                          found.content_sha256, found.counts, found.card)
    raise ExportError(
        f"no RFT export '{ref}': give an id, a name (optionally name:vN) or a directory; "
        f"list them with `grm-studio rft exports` (exports live under {root})"
    )


def list_exports(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.scalars(select(RFTExport).order_by(RFTExport.id))
        return [
            {"id": r.id, "name": r.name, "version": r.version, "dataset": r.dataset,
             "path": r.path, "content_sha256": r.content_sha256, "counts": r.counts,
             "created_at": r.created_at, "created_by": r.created_by}
            for r in rows
        ]
