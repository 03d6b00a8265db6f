"""Clients of the reward server (`grm-studio serve-reward`) for RL frameworks.

This file uses the standard library and httpx only, nothing else of GRM Studio,
on purpose: verl loads a custom reward function from a file path, so it must
work loaded on its own, in another environment. OpenRLHF needs no client (it
posts to `/get_reward` itself).

TRL (`GRPOTrainer`), one request per prompt group, the step from the trainer:

    from core.reward_clients import GRMReward
    trainer = GRPOTrainer(model, reward_funcs=[GRMReward("http://127.0.0.1:8100", run="grpo-1")],
                          args=GRPOConfig(...), train_dataset=dataset)

verl (custom reward function; `compute_score` is async, for the reward loop and
the naive manager; `compute_score_batch` for `reward_model.reward_manager=batch`,
which judges each prompt's responses together):

    custom_reward_function.path=/path/to/grm-studio/core/reward_clients.py
    custom_reward_function.name=compute_score
    +custom_reward_function.reward_kwargs.server_url=http://127.0.0.1:8100
    +custom_reward_function.reward_kwargs.run=verl-grpo-1

Rewards are on the judge's scale (1..10), or on [0, 1] with `unit=True`. An
unscored response (no sample of the judge could be read) is None for TRL (TRL
leaves it out of the advantage), and for verl the `failure_score` you give, or
an error: never a silent 0.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

import httpx

T = TypeVar("T")


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, also from a thread whose event loop is already running
    (a notebook, an async trainer, Playwright): there in a worker thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, coroutine).result()


RETRY_STATUS = (503,)  # busy or not ready yet: the same request may be sent again


class RewardServerError(Exception):
    """The reward server refused the request or failed; `status` is its HTTP status
    (None: it could not be reached), the message its answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def reward_body(query: str, responses: Sequence[str], **options: Any) -> dict[str, Any]:
    """A `/v1/reward` body; options that are None are left to the server."""
    body = {"query": query, "responses": list(responses)}
    body.update({k: v for k, v in options.items() if v is not None})
    return body


Sent = httpx.Response | httpx.TransportError  # what one attempt got: an answer, or no connection


class RetryPolicy(NamedTuple):
    """The one rule both of RewardClient's loops (sync and async) follow: `retries`
    more attempts after the first, waiting `backoff_s * 2**attempt` before each; a
    503 (busy, not ready) and a lost connection are retried, any other answer ends.
    (A NamedTuple, not a dataclass: a dataclass fails in a module loaded by path,
    as verl loads this one, without an entry in sys.modules.)"""

    retries: int = 5
    backoff_s: float = 0.5

    def attempts(self) -> range:
        return range(self.retries + 1)

    def delay_s(self, attempt: int) -> float:
        """How long to wait after attempt `attempt` (from 0) before the next."""
        return self.backoff_s * 2**attempt

    def settle(self, attempt: int, url: str, sent: Sent) -> dict[str, Any] | None:
        """What attempt `attempt` to `url` ends with: the server's answer, None to
        try again (after `delay_s(attempt)`), or RewardServerError."""
        last = attempt == self.retries
        if isinstance(sent, httpx.TransportError):
            if last:
                raise RewardServerError(f"the reward server at {url} cannot be "
                                        f"reached: {sent}") from sent
            return None
        if sent.status_code not in RETRY_STATUS or last:
            return _answer(sent)
        return None


class RewardClient:
    """`POST /v1/reward`, sync and async, retrying as `RetryPolicy` says (503 and lost
    connections, with exponential backoff); other refusals raise RewardServerError."""

    def __init__(self, url: str, *, timeout_s: float = 600.0, retries: int = 5,
                 backoff_s: float = 0.5) -> None:
        self.url = url.rstrip("/") + "/v1/reward"
        self.timeout_s = timeout_s
        self.policy = RetryPolicy(retries=retries, backoff_s=backoff_s)
        self._client: httpx.Client | None = None  # made on first use, shared by threads
        self._lock = threading.Lock()

    def reward(self, query: str, responses: Sequence[str], **options: Any) -> dict[str, Any]:
        """The server's answer for one prompt's responses (options: reference, context,
        k, mode, voting, run, step)."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout_s)
            client = self._client
        body = reward_body(query, responses, **options)
        for attempt in self.policy.attempts():
            sent: Sent
            try:
                sent = client.post(self.url, json=body)
            except httpx.TransportError as err:
                sent = err
            answer = self.policy.settle(attempt, self.url, sent)
            if answer is not None:
                return answer
            time.sleep(self.policy.delay_s(attempt))
        raise AssertionError("unreachable")

    async def areward(self, query: str, responses: Sequence[str], **options: Any) -> dict[str, Any]:
        """`reward`, awaited (a client of its own per call: safe in any event loop)."""
        body = reward_body(query, responses, **options)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            for attempt in self.policy.attempts():
                sent: Sent
                try:
                    sent = await client.post(self.url, json=body)
                except httpx.TransportError as err:
                    sent = err
                answer = self.policy.settle(attempt, self.url, sent)
                if answer is not None:
                    return answer
                await asyncio.sleep(self.policy.delay_s(attempt))
        raise AssertionError("unreachable")


def _answer(answer: httpx.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        data = {"error": answer.text[:500]}
    if answer.status_code != 200:
        raise RewardServerError(f"reward server answered {answer.status_code}: "
                                f"{data.get('error', data)}", answer.status_code)
    return data


def _rewards(answer: dict[str, Any], unit: bool) -> list[float | None]:
    return list(answer["unit_rewards"] if unit else answer["rewards"])


# --- TRL ---------------------------------------------------------------------------


def _content(message: Any) -> str:
    content = message.get("content", "") if isinstance(message, dict) else message
    if isinstance(content, list):  # parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def query_and_context(prompt: Any) -> tuple[str, list[dict[str, str]]]:
    """A TRL prompt (text, or a conversation) as the judge's query and earlier turns."""
    if isinstance(prompt, str):
        return prompt, []
    turns = [{"role": m.get("role", "user"), "content": _content(m)} for m in prompt
             if m.get("role", "user") in ("system", "user", "assistant")]  # not tool calls
    users = [i for i, t in enumerate(turns) if t["role"] == "user"]
    if not users:
        raise ValueError("a conversational prompt without a user turn has no query to judge")
    return turns[users[-1]]["content"], turns[: users[-1]]


def completion_text(completion: Any) -> str:
    """A TRL completion (text, or assistant messages) as text."""
    if isinstance(completion, str):
        return completion
    return "".join(_content(m) for m in completion)


def prompt_groups(prompts: Sequence[Any]) -> list[range]:
    """Runs of equal consecutive prompts: GRPO's groups (TRL repeats each prompt
    `num_generations` times in a row)."""
    groups: list[range] = []
    start = 0
    for i in range(1, len(prompts) + 1):
        if i == len(prompts) or prompts[i] != prompts[start]:
            groups.append(range(start, i))
            start = i
    return groups


class GRMReward:
    """A TRL reward function: each GRPO group is sent as one request (mode "group")
    or each completion alone ("single"), the groups concurrently; the step is
    `trainer_state.global_step`. Unscored completions are None."""

    def __init__(self, url: str, *, run: str, mode: str = "group", k: int | None = None,
                 voting: str = "sum", unit: bool = False, reference_column: str | None = None,
                 max_workers: int = 8, client: RewardClient | None = None) -> None:
        self.__name__ = f"grm_reward_{run}"
        self.client = client or RewardClient(url)
        self.run, self.mode, self.k, self.voting, self.unit = run, mode, k, voting, unit
        self.reference_column, self.max_workers = reference_column, max_workers

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 trainer_state: Any = None, **columns: Any) -> list[float | None]:
        step = getattr(trainer_state, "global_step", None)
        groups = prompt_groups(prompts) if self.mode == "group" else \
            [range(i, i + 1) for i in range(len(prompts))]

        def send(group: range) -> list[float | None]:
            query, context = query_and_context(prompts[group.start])
            references = columns.get(self.reference_column) if self.reference_column else None
            answer = self.client.reward(
                query, [completion_text(completions[i]) for i in group], context=context or None,
                reference=references[group.start] if references else None, k=self.k,
                mode=self.mode, voting=self.voting, run=self.run, step=step)
            return _rewards(answer, self.unit)

        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return [r for rewards in pool.map(send, groups) for r in rewards]


# --- verl --------------------------------------------------------------------------


def _verl_query(extra_info: dict[str, Any] | None, query_key: str) -> str:
    info = extra_info or {}
    for key in (query_key, "question", "query", "prompt"):
        if isinstance(info.get(key), str) and info[key].strip():
            return info[key]
    raise ValueError(f"the GRM reward needs the prompt's text: put it in the dataset's "
                     f"extra_info as '{query_key}' (verl's examples keep it as 'question')")


def _verl_step(extra_info: dict[str, Any] | None) -> int | None:
    info = extra_info or {}
    for key in ("global_step", "global_steps", "step"):
        if isinstance(info.get(key), int):
            return int(info[key])
    return None


def _verl_score(reward: float | None, answer: dict[str, Any], failure_score: float | None,
                ) -> dict[str, Any]:
    if reward is None and failure_score is None:
        raise RewardServerError(
            "the judge could not score a response (no sample could be read); give "
            "+custom_reward_function.reward_kwargs.failure_score=VALUE to use a value instead")
    return {"score": failure_score if reward is None else reward,
            "grm_unscored": reward is None, "grm_request_id": answer["request_id"]}


async def compute_score(data_source: str, solution_str: str, ground_truth: Any,
                        extra_info: dict[str, Any] | None = None, *,
                        server_url: str = "http://127.0.0.1:8100", run: str = "verl",
                        k: int | None = None, unit: bool = False, query_key: str = "question",
                        use_reference: bool = True, failure_score: float | None = None,
                        **_: Any) -> dict[str, Any]:
    """verl's custom reward function: one response, judged alone; `ground_truth` is
    the reference answer (`use_reference`). Returns {"score", "grm_unscored", ...}."""
    answer = await RewardClient(server_url).areward(
        _verl_query(extra_info, query_key), [solution_str], mode="single", k=k, run=run,
        step=_verl_step(extra_info),
        reference=str(ground_truth) if use_reference and ground_truth not in (None, "") else None)
    return _verl_score(_rewards(answer, unit)[0], answer, failure_score)


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str],
                        ground_truths: Sequence[Any], extra_infos: Sequence[dict[str, Any] | None],
                        *, server_url: str = "http://127.0.0.1:8100", run: str = "verl",
                        k: int | None = None, unit: bool = False, query_key: str = "question",
                        use_reference: bool = True, failure_score: float | None = None,
                        **_: Any) -> list[dict[str, Any]]:
    """verl's batch reward manager: the responses to one prompt (same query and ground
    truth) are judged together as a group, the groups concurrently."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, info in enumerate(extra_infos):
        groups.setdefault((_verl_query(info, query_key), str(ground_truths[i])), []).append(i)
    client = RewardClient(server_url)

    async def one(key: tuple[str, str], indices: list[int]) -> list[tuple[int, dict[str, Any]]]:
        reference = key[1] if use_reference and ground_truths[indices[0]] not in (None, "") else None
        answer = await client.areward(key[0], [solution_strs[i] for i in indices], mode="group",
                                      k=k, run=run, step=_verl_step(extra_infos[indices[0]]),
                                      reference=reference)
        return [(i, _verl_score(r, answer, failure_score))
                for i, r in zip(indices, _rewards(answer, unit), strict=True)]

    async def every() -> list[list[tuple[int, dict[str, Any]]]]:
        return await asyncio.gather(*(one(key, indices) for key, indices in groups.items()))

    scored = dict(pair for part in run_blocking(every()) for pair in part)
    return [scored[i] for i in range(len(solution_strs))]
