"""The recipe's meta RM stage: it judges training pairs past the RFT round's draw with
the judge, stores them (a rerun judges nothing again), refuses a store of another
judge's samples, and trains a meta RM on what it stored (a tiny random Llama here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Judge
from core.config import Settings
from core.errors import InputError
from core.store.schema import JudgementRow
from core.training.meta_rm import MANIFEST, MetaTrainConfig
from core.training.recipe import held_out
from core.training.recipe_meta import MetaStage, MetaStageConfig
from core.training.recipe_rft import RFTRound, RFTRoundConfig
from tests.test_lora_sft import tiny_model  # noqa: F401  (a fixture)
from tests.test_recipe_rft import OtherReader, Reader, preferences  # noqa: F401


def make_stage(tmp_path: Path, preferences: Path, base: str = "embedded") -> MetaStage:  # noqa: F811
    config = MetaStageConfig(items_per_source=4, k=2, base_model=base,
                             training=MetaTrainConfig(max_length=64, batch_size=4))
    settings = Settings(data_dir=tmp_path, max_new_tokens=32, batch_items=3)
    return MetaStage(config, settings, tmp_path / "meta", preferences, after=5)


def test_the_stage_judges_the_pairs_after_the_rft_draw_once(tmp_path, preferences):  # noqa: F811
    stage = make_stage(tmp_path, preferences)
    engine = stage.store()
    rft = RFTRound(RFTRoundConfig(items_per_source=5), Settings(data_dir=tmp_path),
                   tmp_path / "rft1", preferences)
    drawn_by_rft = {i.content_hash for i in rft.items(rft.store())}
    items = stage.items(engine)
    assert len(items) == 4  # one source, the 6th to 9th of its draw
    assert not {i.content_hash for i in items} & drawn_by_rft
    assert not any(held_out(i.content_hash) for i in items)
    seen: list[tuple[int, int]] = []
    stage.sample(Judge(Reader(), rescue=False), lambda done, total: seen.append((done, total)))
    assert seen == [(3, 4), (4, 4)]  # batches of settings.batch_items
    with Session(engine) as session:
        rows = session.scalars(select(JudgementRow)).all()
        assert sorted(r.item_id for r in rows) == sorted(i.item_id for i in items)
        assert {r.k for r in rows} == {2}
    again = Reader()
    stage.sample(Judge(again, rescue=False))
    assert again.prompts == []
    with pytest.raises(InputError, match="another judge"):
        stage.sample(Judge(OtherReader(), rescue=False))


def test_the_stage_trains_a_meta_rm_on_its_samples(tmp_path, preferences, tiny_model):  # noqa: F811
    stage = make_stage(tmp_path, preferences, base=str(tiny_model))
    engine = stage.sample(Judge(Reader(), rescue=False))
    info = stage.train(engine)
    assert info is not None and stage.done and (stage.model_dir / MANIFEST).is_file()
    assert info.positives > 0 and info.negatives > 0  # QMIXED and QHARD items, QEASY right
    assert info.positives + info.negatives == 4 * 2
    assert stage.train(engine) is None  # already trained
