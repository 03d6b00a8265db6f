"""Turn a GGUF file into a plain transformers model directory, once.

transformers de-quantises a GGUF file on every load (about 30 s for the
135M embedded model here) and refuses to `save_pretrained` the result. We
load it once, drop the quantisation marker (the weights are already plain
float tensors), and save a safetensors directory under the cache, keyed by
the file's SHA-256. Later loads take under a second. The directory is built
under a temporary name and renamed into place, so an interrupted conversion
never leaves a directory that looks complete.
"""

from __future__ import annotations

from pathlib import Path

from core.files import staged_directory


def materialise_gguf(path: Path, cache_dir: Path, sha256: str) -> Path:
    """The cached transformers directory for GGUF `path`, converting it if needed."""
    target = cache_dir / "gguf" / f"{path.stem}-{sha256[:16]}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # race_ok: another process converting the same file may finish first
    with staged_directory(target, race_ok=True) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE").write_text(f"{path}\nsha256 {sha256}\n")
    return target
