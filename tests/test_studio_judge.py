"""The shipped judge: its adapter's and its base's SHA-256 are checked at every load,
it merges into a model directory that the fast decode path runs, and it writes its
scores by itself (no rescue) on fixed held-out inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.backends.studio_judge import (
    ADAPTER_WEIGHTS,
    SHIPPED_DIR,
    Manifest,
    studio_judge_dir,
    studio_judge_info,
    verify_adapter,
)
from core.errors import BackendError
from core.files import file_sha256


def fake_adapter(tmp_path: Path) -> tuple[Path, Path]:
    adapter, base = tmp_path / "adapter", tmp_path / "base.gguf"
    adapter.mkdir()
    (adapter / ADAPTER_WEIGHTS).write_bytes(b"weights" * 100)
    base.write_bytes(b"base model")
    Manifest("judge", file_sha256(adapter / ADAPTER_WEIGHTS), file_sha256(base)).write(adapter)
    return adapter, base


def test_a_matching_adapter_and_base_pass_the_check(tmp_path):
    adapter, base = fake_adapter(tmp_path)
    assert verify_adapter(adapter, base).name == "judge"


def test_a_changed_adapter_file_is_refused(tmp_path):
    adapter, base = fake_adapter(tmp_path)
    (adapter / ADAPTER_WEIGHTS).write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(BackendError, match=r"SHA-256 .* manifest says"):
        verify_adapter(adapter, base)


def test_another_base_model_is_refused(tmp_path):
    adapter, base = fake_adapter(tmp_path)
    base.write_bytes(b"another base")
    with pytest.raises(BackendError, match="trained on a base"):
        verify_adapter(adapter, base)


def test_a_missing_adapter_or_manifest_says_what_to_do(tmp_path):
    with pytest.raises(BackendError, match="GRM_STUDIO_MODEL=embedded"):
        studio_judge_dir(tmp_path / "cache", adapter_dir=tmp_path / "nowhere")
    adapter, base = fake_adapter(tmp_path)
    (adapter / "manifest.json").unlink()
    with pytest.raises(BackendError, match=r"no manifest\.json"):
        verify_adapter(adapter, base)


def test_the_shipped_judge_is_known_by_its_repository_path_and_adapter_hash():
    from core.config import PROJECT_ROOT

    info = studio_judge_info()
    assert info.source == "models/grm-studio-judge" and info.name == "grm-studio-judge"
    assert info.revision == f"adapter-{Manifest.read(SHIPPED_DIR).adapter_sha256[:16]}"
    assert not (PROJECT_ROOT / info.source / ADAPTER_WEIGHTS).is_symlink()


def test_a_recipe_stage_adapter_is_judged_like_the_built_in_judge(tmp_path):
    """Named by its directory (`--model data/recipe/rft1/adapter`), a stage's adapter
    gets the studio judge's prefill and score rescue; another directory does not."""
    from core.config import Settings

    adapter, _ = fake_adapter(tmp_path)
    assert Settings(model=str(adapter)).prefill_enabled
    assert Settings(model=str(adapter)).rescue_enabled
    (adapter / "manifest.json").unlink()
    assert not Settings(model=str(adapter)).prefill_enabled
    assert not Settings(model=str(adapter), rescue=None).rescue_enabled


shipped = pytest.mark.skipif(not (SHIPPED_DIR / ADAPTER_WEIGHTS).is_file(),
                             reason="no shipped adapter in models/grm-studio-judge")


@shipped
def test_the_shipped_adapter_is_small_and_matches_its_manifest():
    from core.backends.embedded import embedded_gguf_path

    assert (SHIPPED_DIR / ADAPTER_WEIGHTS).stat().st_size <= 30 * 2**20
    manifest = verify_adapter(SHIPPED_DIR, embedded_gguf_path())
    assert manifest.name == "grm-studio-judge"
    assert (SHIPPED_DIR / "MODEL_CARD.md").is_file()


HELD_OUT = Path(__file__).parent / "fixtures" / "held_out_items.json"


@shipped
@pytest.mark.model
def test_the_shipped_judge_writes_its_own_scores_on_the_fast_path(tmp_path):
    """Held-out items (LLMBar-Natural, PandaLM; fixed in the fixture file) judged without
    score rescue: the samples write their own scores line. The judge does so in ~98% of
    samples (bench/judge_quality.py), and which tokens a sample draws depends on the
    CPU's float rounding (one of these 6 looped on one machine, none on another), so
    the test asks for every item judged and at most one sample of the 6 lost."""
    import json

    from core import Judge, JudgeInput, SamplingParams, Settings, load_backend
    from core.store.importing import content_hash
    from core.training.recipe import held_out

    fixed = json.loads(HELD_OUT.read_text())
    items = [JudgeInput(query=f["query"], responses=tuple(f["responses"])) for f in fixed]
    assert all(held_out(content_hash(i.query, [], i.responses)) for i in items)
    settings = Settings(model="studio")
    backend = load_backend(settings)
    assert backend.info.name == "grm-studio-judge"
    judge = Judge(backend, rescue=False, prefill=settings.prefill_enabled)
    results = judge.judge_many(items, SamplingParams(k=2, temperature=0.5, max_new_tokens=384))
    samples = [s for j in results for s in j.samples]  # type: ignore[union-attr]
    invalid = [s.raw_text[-300:] for s in samples if not s.valid]
    assert len(samples) == 6 and len(invalid) <= 1, invalid
    assert all(j.vote.valid_samples >= 1 for j in results)  # type: ignore[union-attr]
    assert all(s.rescue is None for s in samples)
    assert backend._decode_weights._weights is not None  # type: ignore[attr-defined]  # tree decoding ran
    # known by its adapter, so its judgements land on the row registered at first start
    assert backend.info.source == "models/grm-studio-judge"  # the same on every checkout
    assert backend.info.revision == studio_judge_info().revision


@shipped
def test_a_first_start_registers_the_shipped_judge_with_its_provenance(tmp_path):
    from core.store.db import make_engine, upgrade
    from core.training.registry import list_judge_models, register_studio_judge

    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    first = register_studio_judge(engine)
    assert register_studio_judge(engine) == first  # once
    (entry,) = list_judge_models(engine, trained_only=True)
    assert entry.id == first and entry.name == "grm-studio-judge" and entry.trained
    assert entry.parent == "SmolLM2-135M-Instruct.Q4_1" and entry.method.startswith("spct")
    assert entry.metrics and entry.metrics["coldstart_training"]["seconds"] > 0
