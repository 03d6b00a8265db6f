"""Model backends behind one small interface (`Backend`)."""

from __future__ import annotations

from pathlib import Path

from core.backends.base import Backend, RescueRequest
from core.backends.embedded import embedded_gguf_path
from core.backends.scripted import ScriptedBackend
from core.config import Settings
from core.errors import BackendError

__all__ = ["Backend", "RescueRequest", "ScriptedBackend", "load_backend"]


def load_backend(settings: Settings) -> Backend:
    """Load the judge that `settings.model` names (loading takes seconds: keep it)."""
    from core.backends.hf import TransformersBackend

    if settings.model == "embedded":
        source = embedded_gguf_path()
    else:
        source = Path(settings.model).expanduser()
        if not source.exists():
            raise BackendError(
                f"model '{settings.model}' not found: give 'embedded', a model directory "
                "or a .gguf file"
            )
    return TransformersBackend.load(
        source,
        cache_dir=settings.cache_dir,
        device=settings.resolved_device(),
        dtype=settings.dtype,
    )
