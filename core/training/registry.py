"""Registered judge models, and where trained ones came from.

A trained checkpoint becomes an ordinary `judge_model` row (backend
"transformers", source its absolute directory, revision what the transformers
backend reports for it, so that judgements made with it land on the same
row); `trained_judge` keeps its parent model, export, method, weights hash,
parameters and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, aliased

from core.store.judgements import judge_model_id
from core.store.schema import JudgeModel, RFTExport, TrainedJudge
from core.types import ModelInfo


@dataclass(frozen=True)
class JudgeModelEntry:
    id: int
    name: str
    backend: str
    source: str
    revision: str | None
    created_at: datetime
    method: str | None = None  # set for trained models
    parent: str | None = None
    export: str | None = None
    metrics: dict[str, Any] | None = None

    @property
    def trained(self) -> bool:
        return self.method is not None


def register_trained_judge(
    engine: Engine,
    checkpoint: Path,
    *,
    name: str,
    parent: ModelInfo,
    export_id: int | None,
    method: str,
    weights_sha256: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    created_by: str | None,
) -> tuple[int, str]:
    """Register the checkpoint directory as a judge model; (its id, its revision)."""
    from core.backends.hf import directory_revision

    revision = directory_revision(checkpoint)
    info = ModelInfo(name=name, backend="transformers", source=str(checkpoint.resolve()),
                     revision=revision)
    with Session(engine) as session, session.begin():
        model_id = judge_model_id(session, info)
        session.add(TrainedJudge(
            judge_model_id=model_id,
            parent_judge_model_id=judge_model_id(session, parent),
            rft_export_id=export_id,
            method=method,
            weights_sha256=weights_sha256,
            params=params,
            metrics=metrics,
            created_by=created_by,
        ))
    return model_id, revision


def list_judge_models(engine: Engine, *, trained_only: bool = False) -> list[JudgeModelEntry]:
    """Every registered judge model (newest first), with training provenance where known."""
    parent = aliased(JudgeModel)
    query = (
        select(JudgeModel, TrainedJudge, parent.name, RFTExport.name, RFTExport.version)
        .outerjoin(TrainedJudge, TrainedJudge.judge_model_id == JudgeModel.id)
        .outerjoin(parent, parent.id == TrainedJudge.parent_judge_model_id)
        .outerjoin(RFTExport, RFTExport.id == TrainedJudge.rft_export_id)
        .order_by(JudgeModel.id.desc())
    )
    if trained_only:
        query = query.where(TrainedJudge.id.is_not(None))
    with Session(engine) as session:
        return [
            JudgeModelEntry(
                id=m.id, name=m.name, backend=m.backend, source=m.source, revision=m.revision,
                created_at=m.created_at,
                method=t.method if t else None,
                parent=parent_name,
                export=f"{export_name}:v{version}" if export_name else None,
                metrics={k: v for k, v in t.metrics.items() if k != "log"} if t else None,
            )
            for m, t, parent_name, export_name, version in session.execute(query)
        ]


def register_studio_judge(engine: Engine, adapter_dir: Path | None = None) -> int | None:
    """Register the shipped judge (models/grm-studio-judge) with its provenance: parent
    the embedded base, method, recipe, data counts and CPU time from its facts.json.
    Idempotent (a first start calls it); None when no judge is shipped."""
    import json

    from core.backends.embedded import embedded_gguf_path
    from core.backends.studio_judge import SHIPPED_DIR, Manifest, studio_judge_info

    adapter_dir = adapter_dir or SHIPPED_DIR
    if not (adapter_dir / "manifest.json").is_file():
        return None
    manifest = Manifest.read(adapter_dir)
    facts_file = adapter_dir / "facts.json"
    facts = json.loads(facts_file.read_text()) if facts_file.is_file() else {}
    gguf = embedded_gguf_path()
    base = ModelInfo(name=gguf.stem, backend="transformers", source=str(gguf.resolve()),
                     revision=manifest.base_gguf_sha256)
    with Session(engine) as session, session.begin():
        model_id = judge_model_id(session, studio_judge_info(adapter_dir))
        if session.scalar(select(TrainedJudge.id).where(TrainedJudge.judge_model_id == model_id)):
            return model_id
        session.add(TrainedJudge(
            judge_model_id=model_id,
            parent_judge_model_id=judge_model_id(session, base),
            rft_export_id=None,
            method=str(facts.get("method", "spct")),
            weights_sha256=manifest.adapter_sha256,
            params=facts.get("recipe", {}),
            metrics={k: v for k, v in facts.items() if k not in ("recipe", "method")},
            created_by="grm-studio recipe",
        ))
    return model_id
