"""The transformers backend: a local Hugging Face model directory or a GGUF file.

The model is loaded once per backend object and reused for every judgement.
All prompts of one `generate` call are sampled together, and a prefix that
several share (the same prompt for samples in the same order; the template
header and query for all) is prefilled only once (`shared_prefix`). torch and
transformers are imported here, not by the engine, so the rest of GRM Studio
starts without them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends.base import RescueRequest
from core.backends.dtype import resolve_dtype
from core.backends.gguf_cache import materialise_gguf
from core.backends.score_grammar import SCORE_CHARS, ScoreGrammar
from core.backends.shared_prefix import Sampling, sample_shared
from core.backends.tree_decode import LazyDecodeWeights
from core.config import DecodeKernel as Kernel
from core.errors import BackendError
from core.files import file_sha256
from core.progress import GenerationWatch
from core.types import Completion, ModelInfo, SamplingParams

if TYPE_CHECKING:
    import torch

_log = logging.getLogger(__name__)
_WAIT_CHECK_S = 0.25  # while waiting for the model, how often a stop request is looked at


class TransformersBackend:
    """A causal LM run in-process with transformers."""

    supports_score_rescue = True

    def __init__(
        self, model: Any, tokenizer: Any, info: ModelInfo, *, decode_kernel: Kernel = "packed"
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.dtype = str(model.dtype).removeprefix("torch.")  # what 'auto' chose
        self._score_tokens: dict[int, str] | None = None
        # the fused (and on a CPU prepacked) decode-step weights, built on first use
        self._decode_weights = LazyDecodeWeights(model, kernel=decode_kernel)
        # One model, many callers (web requests, a batch thread): one generation at
        # a time, so that a seed set for a call is the seed its sampler uses.
        self._lock = threading.Lock()
        # Chat models may end a turn with a token other than the tokenizer's EOS
        # (Gemma: <end_of_turn>); stop at any the generation config names.
        configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        ids = configured if isinstance(configured, list) else [configured]
        self._stop_ids = [i for i in dict.fromkeys([tokenizer.eos_token_id, *ids]) if i is not None]
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    @classmethod
    def load(
        cls, source: Path, *, cache_dir: Path, device: str = "cpu", dtype: str = "auto",
        decode_kernel: Kernel = "packed", known_as: ModelInfo | None = None,
    ) -> TransformersBackend:
        """Load a model directory, or a `.gguf` file (converted once into `cache_dir`);
        `dtype` 'auto' picks bfloat16 where the device runs it natively (`resolve_dtype`);
        `decode_kernel`: how the decode step multiplies on a CPU (`cpu_linear`);
        `known_as`: the name, source and revision to report instead of the directory's
        (a built-in judge is known by what it was built from, not by its cache path)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = resolve_dtype(dtype, device)

        source = source.expanduser().resolve()
        if source.is_file() and source.suffix == ".gguf":
            revision = file_sha256(source)
            model_dir = materialise_gguf(source, cache_dir, revision)
            name = source.stem
        elif (source / "config.json").is_file():
            revision = directory_revision(source)
            model_dir, name = source, source.name
        else:
            raise BackendError(
                f"{source} is neither a .gguf file nor a model directory with a config.json"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            model = AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=getattr(torch, dtype)
            ).to(device)  # type: ignore[arg-type]  # baseline: transformers' wrapped .to() has no self
        except (OSError, ValueError) as err:
            raise BackendError(f"could not load the model from {source}: {err}") from err
        model.eval()
        _log.info("loaded %s on %s in %s", source, device, dtype)
        context = getattr(model.config, "max_position_embeddings", None)
        info = ModelInfo(
            name=name,
            backend="transformers",
            source=str(source),
            revision=revision,
            context_length=context,
        )
        if known_as is not None:
            info = known_as.model_copy(update={"context_length": context})
        return cls(model, tokenizer, info, decode_kernel=decode_kernel)

    # -- Backend interface -------------------------------------------------

    def count_prompt_tokens(self, prompt: str) -> int | None:
        return len(self._chat_ids(prompt))

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = "",
        watch: GenerationWatch | None = None,
    ) -> list[Completion]:
        """All prompts sampled together; a prefix that several share is prefilled once.
        `watch` hears of each prefill chunk and decode step and may stop there."""
        rows = [self._chat_ids(p, assistant_prefix) for p in prompts]
        sampling = Sampling(
            greedy=params.greedy,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
        )
        with self._turn(watch):
            generated = sample_shared(
                self.model,
                rows,
                max_new_tokens=params.max_new_tokens,
                stop_ids=self._stop_ids,
                sampling=sampling,
                decode_weights=self._decode_weights.get(),
                watch=watch,
            )
        return [self._completion(new, len(row)) for new, row in zip(generated, rows, strict=True)]

    def rescue_scores(
        self, requests: Sequence[RescueRequest], params: SamplingParams | None = None,
        *, watch: GenerationWatch | None = None,
    ) -> list[str]:
        if not requests:
            return []
        rows = [self._chat_ids(r.prompt, r.assistant_prefix) for r in requests]
        grammars = [ScoreGrammar(r.n_responses, r.score_range) for r in requests]
        constraint = _ScoreConstraint(grammars, self._score_token_table(), self._stop_ids[0])
        with self._turn(watch):
            generated = sample_shared(
                self.model,
                rows,
                max_new_tokens=max(g.max_chars for g in grammars),
                stop_ids=self._stop_ids,
                sampling=_rescue_sampling(params),
                constraint=constraint,
                decode_weights=self._decode_weights.get(),
                watch=watch,
            )
        return [self._decode_until_eos(row) for row in generated]

    # -- helpers -----------------------------------------------------------

    @contextmanager
    def _turn(self, watch: GenerationWatch | None) -> Iterator[None]:
        """The model to ourselves (one generation at a time); a stop asked for
        while another generation holds it ends the wait."""
        while not self._lock.acquire(timeout=_WAIT_CHECK_S):
            if watch is not None:
                watch.check()
        try:
            yield
        finally:
            self._lock.release()

    def _chat_ids(self, prompt: str, assistant_prefix: str = "") -> list[int]:
        """The prompt as the model's chat format, with the reply started by the prefix."""
        if self.tokenizer.chat_template:
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        else:
            ids = list(self.tokenizer.encode(prompt))
        if assistant_prefix:
            ids += self.tokenizer.encode(assistant_prefix, add_special_tokens=False)
        return ids

    def _stop_index(self, row: list[int]) -> int | None:
        """Where the first stop token of `row` is, or None."""
        return next((i for i, token in enumerate(row) if token in self._stop_ids), None)

    def _decode_until_eos(self, row: list[int]) -> str:
        stop = self._stop_index(row)
        end = len(row) if stop is None else stop
        return self.tokenizer.decode(row[:end], skip_special_tokens=True)

    def _completion(self, row: list[int], prompt_tokens: int) -> Completion:
        stop = self._stop_index(row)
        stopped = stop is not None
        used = len(row) if stop is None else stop + 1
        return Completion(
            text=self._decode_until_eos(row),
            finish_reason="stop" if stopped else "length",
            prompt_tokens=prompt_tokens,
            completion_tokens=used,
        )

    def _score_token_table(self) -> dict[int, str]:
        """Token id -> text for every token made only of digits, commas, spaces, '}'."""
        if self._score_tokens is None:
            table = {}
            for token_id in range(len(self.tokenizer)):
                text = self.tokenizer.decode([token_id])
                if text and set(text) <= SCORE_CHARS:
                    table[token_id] = text
            self._score_tokens = table
        return self._score_tokens


def directory_revision(path: Path) -> str:
    """A cheap fingerprint of a model directory: its config and weight file sizes."""
    import hashlib

    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return "dir-" + digest.hexdigest()


def _rescue_sampling(params: SamplingParams | None) -> Sampling:
    """Rescued scores are drawn the way their sample was: a sampled judgement
    gets sampled scores (a greedy rescue of a weak model tends to write the
    same numbers for every response, which votes a tie), a greedy one arg max.
    The seed is offset so the draw does not replay the sample's first tokens."""
    if params is None or params.greedy:
        return Sampling(greedy=True)
    return Sampling(greedy=False, temperature=params.temperature, top_p=params.top_p,
                    seed=params.seed + 1)


class _ScoreConstraint:
    """Each row may only extend its continuation so that it stays a prefix of
    its scores grammar; once complete, only EOS is allowed."""

    def __init__(self, grammars: list[ScoreGrammar], tokens: dict[int, str], eos: int) -> None:
        self.grammars = grammars
        self.tokens = tokens
        self.eos = eos

    def __call__(
        self, samples: list[int], generated: list[list[int]], scores: torch.Tensor
    ) -> torch.Tensor:
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row, (sample, tokens) in enumerate(zip(samples, generated, strict=True)):
            grammar = self.grammars[sample]
            text = "".join(self.tokens.get(t, "") for t in tokens)
            if grammar.complete(text):
                allowed = [self.eos]
            else:
                allowed = [t for t, s in self.tokens.items() if grammar.allows(text + s)]
            mask[row, allowed or [self.eos]] = 0.0
        return scores + mask
