"""A judge behind an OpenAI-compatible server: vLLM, SGLang, llama.cpp, TGI.

    GRM_STUDIO_MODEL=http://127.0.0.1:8000/v1 GRM_STUDIO_API_MODEL=DeepSeek-GRM-27B
    GRM_STUDIO_MODEL=http://gpu1:8000/v1,http://gpu2:8000/v1     # a fleet of replicas

The engine's prompts go to `{base}/chat/completions` as one user message. The
k prompts of a judgement repeat (a pair has only two shown orders), so each
distinct prompt is sent once with `n` = its count; a server that answers with
fewer choices than asked (llama.cpp) or refuses `n` > 1 gets the rest as
single requests, each with its own seed. Requests run in parallel, at most
`concurrency` in flight for the whole backend. 429, 5xx and lost connections
are retried with exponential backoff and jitter; anything else, and a reply
that is not a chat completion, is a `BackendError` naming the URL. The key
travels only in the Authorization header: it is in no message, repr, log
line, `ModelInfo` or stored row.

Several base URLs, comma-separated, are a fleet of replicas of one judge
(`openai_fleet`): requests go round-robin, a server that fails is out of
rotation for a cool-down and the request goes to the next at once. The
judgement's `ModelInfo` is the fleet's (source: its URLs, sorted), the same
whichever replica answered; the replicas must serve the model under one name
(vLLM `--served-model-name`, or set GRM_STUDIO_API_MODEL).

Prefill (`assistant_prefix`) needs a server that continues a final assistant
message (vLLM, SGLang: `continue_final_message`); say so with `prefill=True`
(`GRM_STUDIO_API_PREFILL`), otherwise asking for it is an error. Score rescue
is not offered: it needs constrained decoding, which these servers spell
differently and only under a client-side chat template.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from core.backends.base import RescueRequest
from core.backends.openai_fleet import ServerFleet
from core.errors import BackendError, ConfigError
from core.progress import GenerationProgress, GenerationWatch
from core.types import Completion, ModelInfo, SamplingParams

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0
_ERROR_CHARS = 300


def is_server_url(model: str) -> bool:
    """Whether a model setting names a server (or a fleet) rather than local weights."""
    return model.lower().startswith(("http://", "https://"))


def server_urls(model: str) -> tuple[str, ...]:
    """The base URLs a model setting names: one, or a fleet's, comma-separated."""
    return tuple(part.strip() for part in model.split(",") if part.strip())


def public_url(url: str) -> str:
    """`url` without credentials or query string: safe to show and store."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"'{public_url(url)}' is not an http(s) URL of a server")
    if parts.username or parts.password or parts.query:
        raise ConfigError(
            f"give the server as {public_url(url)} and its key in GRM_STUDIO_API_KEY: "
            "credentials or a query string in the URL would end up in logs"
        )
    return public_url(url)


def _check_base_urls(urls: Sequence[str]) -> tuple[str, ...]:
    checked = tuple(_check_base_url(url) for url in urls)
    if not checked:
        raise ConfigError("no judge server URL given")
    twice = sorted({url for url in checked if checked.count(url) > 1})
    if twice:
        raise ConfigError(f"judge server {twice[0]} is listed twice")
    return checked


@dataclass(frozen=True)
class _Request:
    """One chat-completion request: a prompt, how many choices, which seed."""

    prompt: str
    n: int
    seed: int


def _answers(
    futures: list[Future[list[Completion]]], choices: list[int], max_new_tokens: int,
    watch: GenerationWatch | None,
) -> list[list[Completion]]:
    """Each future's completions, in order, once all are answered; each answer
    reported to `watch`, whose stop cancels the requests not yet sent."""
    if watch is None:
        return [f.result() for f in futures]
    samples = sum(choices)
    try:
        pending: set[Future[list[Completion]]] = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            finished = sum(n for f, n in zip(futures, choices, strict=True) if f.done())
            watch.report(GenerationProgress(
                "decode", finished * max_new_tokens, samples * max_new_tokens, samples,
                finished=finished))
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [f.result() for f in futures]


class OpenAICompatBackend:
    """A judge served over HTTP in the OpenAI chat-completions dialect."""

    supports_score_rescue = False

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 300.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        prefill: bool = False,
        cooldown_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Connects at once: lists the server's models (which also names the
        judge when `model` is None), so a wrong URL fails here, not mid-batch.
        Several base URLs are a fleet (`openai_fleet`): `concurrency` is then per
        server, and a failing server is out of rotation for `cooldown_s`."""
        urls = _check_base_urls([base_url] if isinstance(base_url, str) else base_url)
        self.base_url = ",".join(urls)  # as shown in messages and the repr
        self._fleet = ServerFleet(urls, cooldown_s=cooldown_s, probe=self._health)
        self.retries = retries
        self.backoff_s = backoff_s
        self.prefill = prefill
        self.concurrency = concurrency * len(urls)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._n_supported = True  # until a server shows otherwise
        self._tokenize: str | None = None  # which tokenize endpoint works, once probed
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=self.concurrency),
            transport=transport,
        )
        self.timeout_s = timeout_s
        name, context = self._model_entry(model)
        self.model = name
        self.info = ModelInfo(  # the same whichever server of a fleet answers
            name=name, backend="openai", source=",".join(sorted(urls)), context_length=context
        )

    def __repr__(self) -> str:
        return f"OpenAICompatBackend({self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        self._client.close()

    # -- Backend interface -------------------------------------------------

    def count_prompt_tokens(self, prompt: str) -> int | None:
        """The server's own count (vLLM `/tokenize` applies the chat template;
        llama.cpp's counts the bare text); None where the server has no tokenizer."""
        message = [{"role": "user", "content": prompt}]
        root = self._fleet.pick().removesuffix("/v1")  # the server's root
        probes = {
            "vllm": (f"{root}/tokenize", {"model": self.model, "messages": message}),
            "llama.cpp": (f"{root}/tokenize", {"content": prompt}),
            "llama-cpp-python": (f"{root}/extras/tokenize", {"input": prompt}),
        }
        kinds = [self._tokenize] if self._tokenize else list(probes)
        for kind in kinds:
            if kind == "none":
                return None
            url, body = probes[kind]
            try:
                reply = self._client.post(url, json=body)
            except httpx.HTTPError:
                continue
            if reply.status_code != 200:
                continue
            count = _token_count(_json_or_none(reply))
            if count is not None:
                self._tokenize = kind
                return count
        self._tokenize = "none"
        return None

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = "",
        watch: GenerationWatch | None = None,
    ) -> list[Completion]:
        """`watch` hears as each request is answered (a server's decoding is not
        seen step by step); a stop ends the call at the next answer or within
        half a second, leaving requests already sent to finish on the server."""
        if assistant_prefix and not self.prefill:
            raise BackendError(
                f"prefill was asked for, but the server at {self.base_url} is not known to "
                "continue an assistant message: turn prefill off (GRM_STUDIO_PREFILL=false), "
                "or set GRM_STUDIO_API_PREFILL=true for vLLM / SGLang"
            )
        if not prompts:
            return []
        groups: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(prompt, []).append(i)
        plan = [
            _Request(prompt, len(slots), params.seed + number)
            for number, (prompt, slots) in enumerate(groups.items())
        ]
        if not self._n_supported:  # known from an earlier call: one request per choice
            plan = [single for request in plan for single in _singles(request, 0)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(plan))) as pool:
            futures = [pool.submit(self._choices, r, params, assistant_prefix) for r in plan]
            answers = _answers(futures, [r.n for r in plan], params.max_new_tokens, watch)
        by_prompt: dict[str, list[Completion]] = {}
        for request, completions in zip(plan, answers, strict=True):
            by_prompt.setdefault(request.prompt, []).extend(completions)
        return [by_prompt[p][groups[p].index(i)] for i, p in enumerate(prompts)]

    def rescue_scores(
        self, requests: Sequence[RescueRequest], params: SamplingParams | None = None,
        *, watch: GenerationWatch | None = None,
    ) -> list[str]:
        if requests:
            raise BackendError(f"the server backend ({self.base_url}) does not do score rescue")
        return []

    # -- requests ------------------------------------------------------------

    def _choices(self, request: _Request, params: SamplingParams, prefix: str) -> list[Completion]:
        """`request.n` completions of one prompt: one request with `n` where the
        server honours it, then single requests (own seeds) for what it left out."""
        if request.n == 1:
            return self._chat(request, params, prefix)[:1]
        try:
            got = self._chat(request, params, prefix)[: request.n]
        except _Refused:
            got = []
        short = len(got) < request.n
        for single in _singles(request, len(got)):
            got += self._chat(single, params, prefix)[:1]
        if short:  # the single requests worked where n did not: n is what it ignores
            log.info("%s does not honour n > 1: one request per choice", self.base_url)
            self._n_supported = False
        return got

    def _chat(self, request: _Request, params: SamplingParams, prefix: str) -> list[Completion]:
        messages: list[dict[str, str]] = [{"role": "user", "content": request.prompt}]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "n": request.n,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": request.seed,
        }
        if prefix:
            messages.append({"role": "assistant", "content": prefix})
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        reply = self._post("/chat/completions", body, refusable=request.n > 1)
        return _completions(reply, self.base_url)

    def _post(self, path: str, body: dict[str, Any], *, refusable: bool = False) -> Any:
        """POST with retries; the decoded JSON reply. `refusable`: a 4xx raises
        `_Refused` (the caller retries without `n`) instead of BackendError."""
        return self._request("POST", path, body, refusable)

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        refusable: bool = False,
        missing_ok: bool = False,
    ) -> Any:
        """The decoded JSON reply, after retries; None for a 404 when `missing_ok`.
        In a fleet, a server that fails is out of rotation and the request goes to
        the next at once (at most once per server), without using up a retry."""
        attempt = retry = 0
        while True:
            base = self._fleet.pick()
            url = f"{base}{path}"
            last = retry == self.retries
            may_fail_over = attempt - retry < len(self._fleet)
            attempt += 1
            try:
                with self._slots:
                    reply = self._client.request(method, url, json=body)
            except httpx.TransportError as err:
                # A read timeout means the server took the request and is slow:
                # sending it again would only add load.
                resend = isinstance(err, httpx.ConnectTimeout) or not isinstance(
                    err, httpx.TimeoutException)
                if self._fleet.fail(base, _reason(err)) and resend and may_fail_over:
                    continue
                if resend and not last:
                    self._wait(retry, url, _reason(err))
                    retry += 1
                    continue
                raise self._unanswered(err, url, attempt) from None
            status = reply.status_code
            if status >= 500 and self._fleet.fail(base, f"HTTP {status}") and may_fail_over:
                continue
            if status in RETRY_STATUS and not last:
                self._wait(retry, url, f"HTTP {status}", reply)
                retry += 1
                continue
            if status == 404 and missing_ok:
                return None
            if status >= 400:
                if refusable and 400 <= status < 500 and status != 429:
                    raise _Refused()
                raise BackendError(
                    f"the judge server at {url} answered HTTP {status}"
                    f"{_attempts(attempt)}: {_error_text(reply)}{_hint(base, status)}"
                )
            data = _json_or_none(reply)
            if data is None:
                raise BackendError(
                    f"the judge server at {url} sent a reply that is not JSON: "
                    f"{_cut(reply.text)!r}"
                )
            return data

    def _unanswered(self, err: httpx.TransportError, url: str, attempts: int) -> BackendError:
        if isinstance(err, httpx.TimeoutException) and not isinstance(err, httpx.ConnectTimeout):
            return BackendError(
                f"the judge server at {url} did not answer within {self.timeout_s:g} s; "
                "raise GRM_STUDIO_API_TIMEOUT_S or lower max_new_tokens"
            )
        return BackendError(
            f"cannot reach the judge server at {url} ({_reason(err)}) after "
            f"{attempts} attempt(s); is it running? Check GRM_STUDIO_MODEL"
        )

    def _health(self, base: str) -> str | None:
        """None when the server at `base` lists its models, else why not (the
        fleet's check before a server comes back into rotation)."""
        try:
            reply = self._client.get(f"{base}/models", timeout=min(self.timeout_s, 10.0))
        except httpx.HTTPError as err:
            return _reason(err) if isinstance(err, httpx.TransportError) else type(err).__name__
        return None if reply.status_code == 200 else f"HTTP {reply.status_code}"

    def _wait(
        self, attempt: int, url: str, why: str, reply: httpx.Response | None = None
    ) -> None:
        delay = min(self.backoff_s * 2**attempt, MAX_BACKOFF_S)
        delay += random.uniform(0, delay)  # jitter: callers that failed together spread out
        retry_after = reply.headers.get("retry-after") if reply is not None else None
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), MAX_BACKOFF_S))
        log.warning(
            "%s: %s; retry %d of %d in %.1f s", url, why, attempt + 1, self.retries, delay
        )
        time.sleep(delay)

    # -- the server's models ---------------------------------------------------

    def _model_entry(self, wanted: str | None) -> tuple[str, int | None]:
        """(model name, context length if the server says) from `/models`."""
        data = self._request("GET", "/models", None, missing_ok=wanted is not None)
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            if wanted is None:
                raise BackendError(
                    f"the judge server at {self.base_url} lists no models; "
                    "set GRM_STUDIO_API_MODEL to the model's name"
                )
            return wanted, None
        ids = [e.get("id") for e in entries if isinstance(e, dict)]
        if wanted is not None and wanted not in ids:
            log.info("%s does not list %r (it lists %s)", self.base_url, wanted, ids)
        entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == wanted), None)
        entry = entry or (entries[0] if wanted is None else {})
        name = wanted or str(entry.get("id") or "")
        if not name:
            raise BackendError(
                f"the judge server at {self.base_url} lists a model without an id; "
                "set GRM_STUDIO_API_MODEL"
            )
        return name, _context_length(entry)


def _hint(base: str, status: int) -> str:
    if status == 404 and not base.endswith("/v1"):
        return f"; OpenAI-compatible servers answer under /v1: try {base}/v1"
    return ""


def _singles(request: _Request, have: int) -> list[_Request]:
    """Requests for choices `have`..n-1 of `request`, one each, with seeds that
    do not depend on how the earlier choices were obtained."""
    return [_Request(request.prompt, 1, request.seed + 7919 * j) for j in range(have, request.n)]


class _Refused(Exception):
    """A 4xx to a request with n > 1: the server may not take n."""


def _completions(reply: Any, base_url: str) -> list[Completion]:
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or not choices:
        raise BackendError(
            f"the judge server at {base_url} sent a reply without choices; is it an "
            f"OpenAI-compatible chat endpoint? Got {_cut(str(reply))!r}"
        )
    usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    completion_tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    out = []
    for choice in ordered:
        message = choice.get("message") if isinstance(choice, dict) else None
        text = message.get("content") if isinstance(message, dict) else None
        if not isinstance(text, str):
            raise BackendError(
                f"the judge server at {base_url} sent a choice without text content: "
                f"{_cut(str(choice))!r}"
            )
        out.append(
            Completion(
                text=text,
                finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else 0,
                # usage sums every choice; per choice it is only known for one
                completion_tokens=completion_tokens
                if isinstance(completion_tokens, int) and len(choices) == 1
                else 0,
            )
        )
    return out


def _context_length(entry: dict[str, Any]) -> int | None:
    """vLLM: max_model_len; llama.cpp: meta.n_ctx_train; others: unknown."""
    for value in (entry.get("max_model_len"), (entry.get("meta") or {}).get("n_ctx_train")):
        if isinstance(value, int) and value > 0:
            return value
    return None


def _token_count(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    count = data.get("count")
    if not isinstance(count, int):
        tokens = data.get("tokens")
        count = len(tokens) if isinstance(tokens, list) else None
    return count or None  # 0 for a prompt is a server that read the wrong field


def _json_or_none(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None


def _error_text(reply: httpx.Response) -> str:
    """The server's own error message: OpenAI `{"error": {"message"}}`, FastAPI
    `{"detail"}`, or the start of the body."""
    data = _json_or_none(reply)
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return _cut(str(error["message"]))
        for key in ("error", "detail", "message"):
            if data.get(key):
                return _cut(str(data[key]))
    return _cut(reply.text) or reply.reason_phrase or "(empty body)"


def _reason(err: httpx.TransportError) -> str:
    text = str(err).strip()
    if "refused" in text.lower():
        return "connection refused"
    return _cut(text) or type(err).__name__


def _attempts(attempts: int) -> str:
    return f" after {attempts} attempts" if attempts > 1 else ""


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"
