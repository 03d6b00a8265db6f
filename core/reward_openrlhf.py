"""OpenRLHF's remote reward protocol, in and out of `core.reward`'s requests.

OpenRLHF (`--remote_rm_url http://host:8100/get_reward`) posts
`{"query": [...], "prompts": [...], "labels": [...]}`: per sample, the prompt
and response as one text (`query`), the prompt alone (`prompts`) and its label
(`--label_key`); it wants `{"rewards": [...]}` back, and reads `scores` (0..1,
for dynamic filtering) and `extra_logs` (per-sample values it logs) when present.

    jobs, positions = openrlhf_jobs(queries, prompts, labels, run="ppo", step=None,
                                    mode="group", params=params)
    answer = openrlhf_answer(results, positions, len(queries), failure_reward=None)

The response is the query past its prompt, less a trailing end-of-turn token.
The judge is shown the prompt's last user turn as the query (the turns before
it as context) when the prompt is in a ChatML or Llama-3 chat format, else the
prompt as it is. A non-empty label is the reference answer. In group mode the
samples with the same prompt and label form one group (OpenRLHF sends its
`n_samples_per_prompt` samples of a prompt in one batch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from core.errors import GRMStudioError, InputError
from core.reward import RewardJob, RewardMode, RewardRequest, RewardResult, unit_reward
from core.types import SamplingParams, Turn

END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>",
              "<|end|>", "<|pad|>", "<pad>")
_CHATML = re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)(?:<\|im_end\|>|\Z)", re.DOTALL)
_LLAMA3 = re.compile(
    r"<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|\Z)",
    re.DOTALL)


class UnscoredError(GRMStudioError):
    """Some responses of an OpenRLHF batch got no reward, and the server has no
    failure reward to give them: the batch is refused with the reasons."""


def chat_turns(prompt: str) -> tuple[str, tuple[Turn, ...]]:
    """(the last user turn, the turns before it) of a chat-formatted prompt; the
    prompt itself and no turns when it is in no format known here."""
    for pattern in (_CHATML, _LLAMA3):
        turns = [(role, content.strip()) for role, content in pattern.findall(prompt)]
        turns = [(role, content) for role, content in turns if content]
        users = [i for i, (role, _) in enumerate(turns) if role == "user"]
        if users:
            last = users[-1]
            earlier = tuple(Turn.model_validate({"role": r, "content": c}) for r, c in turns[:last])
            return turns[last][1], earlier
    return prompt.strip(), ()


def response_text(query: str, prompt: str, where: str) -> str:
    """The response in `query` (prompt + response), less trailing end tokens."""
    if not query.startswith(prompt):
        raise InputError(f"{where}: the query does not start with its prompt; OpenRLHF sends "
                         "each query as its prompt followed by the response")
    response = query[len(prompt):].rstrip()
    stripped = True
    while stripped:
        stripped = False
        for token in END_TOKENS:
            if response.endswith(token):
                response, stripped = response[: -len(token)].rstrip(), True
    return response


def openrlhf_jobs(
    queries: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[str | None] | None,
    *, run: str, step: int | None, mode: RewardMode, params: SamplingParams,
) -> tuple[list[RewardJob], list[tuple[int, ...]]]:
    """The reward jobs of one OpenRLHF batch, and per job the batch positions of its
    responses (in the job's order); InputError naming the first bad sample."""
    if prompts is None:
        raise InputError("'prompts' is missing: the judge needs each response's prompt "
                         "(OpenRLHF sends it since 0.5; send {query, prompts, labels})")
    if len(prompts) != len(queries) or (labels is not None and len(labels) != len(queries)):
        raise InputError(f"'query' has {len(queries)} entries, 'prompts' {len(prompts)}"
                         + (f" and 'labels' {len(labels)}" if labels is not None else "")
                         + "; give one of each per sample")
    groups: dict[tuple[str, str | None], list[int]] = {}
    responses = []
    for i, (query, prompt) in enumerate(zip(queries, prompts, strict=True)):
        responses.append(response_text(query, prompt, f"sample {i}"))
        label = labels[i] if labels is not None else None
        key = (prompt, label if label and label.strip() else None)
        groups.setdefault(key if mode == "group" else (f"{i}", None), []).append(i)
    jobs, positions = [], []
    for indices in groups.values():
        prompt = prompts[indices[0]]
        label = labels[indices[0]] if labels is not None else None
        user, context = chat_turns(prompt)
        request = RewardRequest(
            query=user, context=context, responses=tuple(responses[i] for i in indices),
            reference=label if label and label.strip() else None, mode=mode, run=run, step=step)
        jobs.append(RewardJob(request, params, endpoint="openrlhf"))
        positions.append(tuple(indices))
    return jobs, positions


def openrlhf_answer(
    results: Sequence[RewardResult], positions: Sequence[tuple[int, ...]], n: int,
    *, failure_reward: float | None,
) -> dict[str, Any]:
    """`{"rewards", "scores", "extra_logs"}` in batch order: rewards on the judge's
    scale, scores on [0, 1]; an unscored response gets `failure_reward` (its score:
    that value on [0, 1], clamped; `grm_unscored` 1 in the logs), or UnscoredError
    for the batch when there is none."""
    rewards: list[float | None] = [None] * n
    scores: list[float | None] = [None] * n
    logs: dict[str, list[float]] = {"grm_unscored": [0.0] * n, "grm_valid_samples": [0.0] * n,
                                    "grm_split_vote": [0.0] * n}
    reasons = []
    for result, indices in zip(results, positions, strict=True):
        for local, index in enumerate(indices):
            response = result.responses[local]
            chunk = result.judgements[response.judgement]
            logs["grm_valid_samples"][index] = float(chunk.valid_samples)
            logs["grm_split_vote"][index] = float(chunk.split)
            if response.reward is None:
                logs["grm_unscored"][index] = 1.0
                reasons.append(f"sample {index}: {response.reason}")
                if failure_reward is not None:
                    rewards[index] = failure_reward
                    scores[index] = min(1.0, max(0.0, unit_reward(failure_reward, result.scale)))
                continue
            rewards[index] = response.reward
            scores[index] = unit_reward(response.reward, result.scale)
    if reasons and failure_reward is None:
        raise UnscoredError(
            f"{len(reasons)} response(s) got no reward ({'; '.join(reasons[:3])}); the server "
            "gives no silent 0: start it with --failure-reward VALUE to give them one")
    return {"rewards": rewards, "scores": scores, "extra_logs": logs}
