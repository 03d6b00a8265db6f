"""Model backends behind one small interface (`Backend`)."""

from __future__ import annotations

from pathlib import Path

from core.backends.base import Backend, RescueRequest
from core.backends.embedded import embedded_gguf_path
from core.backends.openai_compat import OpenAICompatBackend, is_server_url, server_urls
from core.backends.scripted import ScriptedBackend
from core.backends.studio_judge import (
    STUDIO_JUDGE,
    is_adapter_dir,
    studio_judge_dir,
    studio_judge_info,
)
from core.config import Settings
from core.errors import BackendError

__all__ = [
    "Backend", "OpenAICompatBackend", "RescueRequest", "ScriptedBackend", "load_backend",
]


def load_backend(settings: Settings) -> Backend:
    """Load the judge that `settings.model` names (loading takes seconds: keep it);
    an http(s):// URL is an OpenAI-compatible server (`openai_compat`), several
    comma-separated a fleet of them (`openai_fleet`)."""
    if is_server_url(settings.model):
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return OpenAICompatBackend(
            server_urls(settings.model),
            model=settings.api_model,
            api_key=key,
            concurrency=settings.api_concurrency,
            timeout_s=settings.api_timeout_s,
            retries=settings.api_retries,
            backoff_s=settings.api_backoff_s,
            prefill=settings.api_prefill,
            cooldown_s=settings.api_cooldown_s,
        )
    from core.backends.hf import TransformersBackend

    known_as = None
    if settings.model == STUDIO_JUDGE:
        source = studio_judge_dir(settings.cache_dir)
        known_as = studio_judge_info()
    elif settings.model == "embedded":
        source = embedded_gguf_path()
    elif is_adapter_dir(Path(settings.model).expanduser()):  # a recipe stage's adapter
        adapter = Path(settings.model).expanduser().resolve()
        source = studio_judge_dir(settings.cache_dir, adapter)
        known_as = studio_judge_info(adapter)
    else:
        source = Path(settings.model).expanduser()
        if not source.exists():
            raise BackendError(
                f"model '{settings.model}' not found: give 'studio', 'embedded', a model directory, "
                "a .gguf file or the http(s):// URL of an OpenAI-compatible server"
            )
    return TransformersBackend.load(
        source,
        cache_dir=settings.cache_dir,
        device=settings.resolved_device(),
        dtype=settings.dtype,
        decode_kernel=settings.decode_kernel,
        known_as=known_as,
    )
