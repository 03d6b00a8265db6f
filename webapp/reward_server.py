"""The reward server (`grm-studio serve-reward`): the studio's judge as the reward
function of RL runs, over HTTP. A front: each handler parses the body, hands the
jobs to the batcher (`core.reward_batcher` -> `core.reward.serve_rewards`) and
answers; what a reward is and how a group is judged live in `core.reward`.

    POST /v1/reward    {query, responses, reference?, context?, k?, mode?, voting?, run?, step?}
                       -> {rewards, responses: [...], judgements: [...], scale, request_id, stored}
    POST /get_reward   OpenRLHF: {query: [...], prompts: [...], labels: [...]}
                       (?run=NAME&step=N&mode=group|single&k=K) -> {rewards, scores, extra_logs}
    GET  /health       the process answers, and the batches it has formed
    GET  /ready        200 once the judge is loaded and the store answers, else 503

Every refusal is `{"error": "..."}`: 422 a body of the wrong shape, 400 input the
judge cannot take (an empty response...), 413 a body over the limit, 503 busy, not
ready, or every server of the judge's fleet out of rotation (with Retry-After), 504
no rewards in time, 502 an OpenRLHF batch with unscored responses and no
--failure-reward, 500 the judge failed. No reward is ever a silent 0.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, text
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from core.config import Settings
from core.engine import Judge
from core.errors import (
    BusyError,
    GRMStudioError,
    InputError,
    ServersDownError,
    StoreUnavailableError,
)
from core.inputs import clean_text
from core.reward import RewardJob, RewardRequest, RewardResult, serve_rewards
from core.reward_batcher import RewardBatcher, RewardServerConfig, RewardTimeout
from core.reward_openrlhf import UnscoredError, openrlhf_answer, openrlhf_jobs
from core.service import StoredMetaScorer, build_judge
from core.types import Turn

_log = logging.getLogger(__name__)
Text = Annotated[str, Field(max_length=10_000_000)]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant"]
    content: Text


class RewardIn(BaseModel):
    """`POST /v1/reward`: JSON types exactly, no other fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    query: Text = Field(description="the user's query the responses answer")
    responses: list[Text] = Field(min_length=1, description="the responses to reward")
    reference: Text | None = Field(None, description="a reference answer shown to the judge")
    context: list[TurnIn] = Field([], description="earlier turns of the conversation")
    k: int | None = Field(None, ge=1, le=256, description="samples; default the server's")
    mode: Literal["group", "single"] = "group"
    voting: Literal["sum", "meta"] = "sum"
    run: str = Field("default", min_length=1, max_length=200)
    step: int | None = Field(None, ge=0, lt=2**31)


class OpenRLHFIn(BaseModel):
    """`POST /get_reward`, as OpenRLHF sends it (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    query: list[Text] = Field(min_length=1)
    prompts: list[Text] | None = None
    labels: list[str | int | float | None] | None = None


@dataclass
class _Judging:
    """The judge, once loaded (or why it could not be)."""

    judge: Judge | None = None
    error: str | None = None


def reward_app(
    settings: Settings, engine: Engine, config: RewardServerConfig | None = None, *,
    judge: Judge | None = None, meta: StoredMetaScorer | None = None,
) -> FastAPI:
    """The reward server over `engine`; `judge` None: the configured one, loaded in
    the background at start-up (/ready says when)."""
    config = config or RewardServerConfig()
    judging = _Judging(judge=judge)

    def serve(jobs: Sequence[RewardJob]) -> Sequence[RewardResult | Exception]:
        assert judging.judge is not None  # submit() refuses jobs before it is loaded
        return serve_rewards(engine, judging.judge, jobs,
                             sample_rate=settings.reward_sample_rate, meta=meta)

    batcher = RewardBatcher(serve, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        if judging.judge is None:
            threading.Thread(target=_load, args=(settings, judging), daemon=True).start()
        yield
        batcher.stop()

    app = FastAPI(title="GRM Studio reward server", lifespan=lifespan)

    async def submit(job: RewardJob) -> RewardResult:
        if judging.judge is None:
            raise BusyError(judging.error or "the judge is still loading; try again in a moment")
        return await batcher.submit(job)

    @app.post("/v1/reward")
    async def reward(body: RewardIn) -> dict[str, Any]:
        request = _request(body, config)
        result = await submit(RewardJob(request, settings.sampling(k=body.k)))
        return {"rewards": list(result.rewards), "unit_rewards": list(result.unit_rewards),
                **result.model_dump(mode="json")}

    @app.post("/get_reward")
    async def get_reward(
        body: OpenRLHFIn,
        run: Annotated[str, Query(min_length=1, max_length=200)] = "openrlhf",
        step: Annotated[int | None, Query(ge=0, lt=2**31)] = None,
        mode: Literal["group", "single"] = "group",
        k: Annotated[int | None, Query(ge=1, le=256)] = None,
    ) -> dict[str, Any]:
        _check_count(len(body.query), config)
        labels = None if body.labels is None else [
            None if v is None else clean_text(str(v), f"labels[{i}]") for i, v in enumerate(body.labels)]
        queries = [clean_text(q, f"query[{i}]") for i, q in enumerate(body.query)]
        prompts = None if body.prompts is None else [
            clean_text(p, f"prompts[{i}]") for i, p in enumerate(body.prompts)]
        jobs, positions = openrlhf_jobs(queries, prompts, labels, run=run, step=step, mode=mode,
                                        params=settings.sampling(k=k))
        results = await asyncio.gather(*(submit(job) for job in jobs))
        return openrlhf_answer(results, positions, len(queries),
                               failure_reward=config.failure_reward)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "batcher": asdict(batcher.stats())}

    @app.get("/ready")
    def ready() -> Response:
        problem = judging.error if judging.judge is None else None
        if judging.judge is None:
            problem = problem or "the judge is still loading"
        elif not batcher.alive:
            problem = "the batcher has stopped; restart the server"
        else:
            problem = _store_problem(engine)
        if problem is not None:
            return JSONResponse({"ready": False, "error": problem}, status_code=503,
                                headers={"Retry-After": "5"})
        return JSONResponse({"ready": True, "model": settings.model_shown,
                             "sample_rate": settings.reward_sample_rate})

    _add_error_handlers(app)
    app.add_middleware(BoundedBody, max_bytes=int(config.max_body_mb * 2**20))
    return app


def _load(settings: Settings, judging: _Judging) -> None:
    try:
        judging.judge = build_judge(settings)
    except Exception as err:  # noqa: BLE001 - whatever it was, /ready shows it
        known = isinstance(err, GRMStudioError)  # says what to do: no traceback needed
        _log.error("the reward server's judge failed to load: %s", err, exc_info=not known)
        judging.error = f"the judge failed to load: {err}"


def _store_problem(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as err:  # noqa: BLE001 - any failure means not ready; the reason is shown
        return f"the store does not answer ({type(err).__name__})"
    return None


def _check_count(n: int, config: RewardServerConfig) -> None:
    if n > config.max_responses:
        raise InputError(f"{n} responses in one request; this server takes at most "
                         f"{config.max_responses} (--max-responses)")


def _request(body: RewardIn, config: RewardServerConfig) -> RewardRequest:
    _check_count(len(body.responses), config)
    return RewardRequest(
        query=clean_text(body.query, "query"),
        responses=tuple(clean_text(r, f"responses[{i}]") for i, r in enumerate(body.responses)),
        reference=None if body.reference is None else clean_text(body.reference, "reference"),
        context=tuple(Turn(role=t.role, content=clean_text(t.content, f"context[{i}]"))
                      for i, t in enumerate(body.context)),
        mode=body.mode, voting=body.voting, run=clean_text(body.run, "run"), step=body.step)


# --- errors ------------------------------------------------------------------------


def _add_error_handlers(app: FastAPI) -> None:
    for kind, status in ((InputError, 400), (BusyError, 503), (StoreUnavailableError, 503),
                         (ServersDownError, 503), (RewardTimeout, 504), (UnscoredError, 502)):
        app.add_exception_handler(kind, _answer(status))
    app.add_exception_handler(GRMStudioError, _judge_failed)
    app.add_exception_handler(RequestValidationError, _bad_shape)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _judge_failed)


def _answer(status: int) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, error: Exception) -> Response:
        retry = {"Retry-After": "1"} if status == 503 else None
        return JSONResponse({"error": str(error)}, status_code=status, headers=retry)

    return handle


def _judge_failed(request: Request, error: Exception) -> Response:
    """The judge (or the server) failed: a 500 that says so, never a reward."""
    if isinstance(error, GRMStudioError):
        message = f"the judge failed: {error}"
    else:
        _log.error("reward request failed", exc_info=error)
        message = (f"the judge failed ({type(error).__name__}); the reward server's log has "
                   "the details")
    return JSONResponse({"error": message}, status_code=500)


def _bad_shape(request: Request, error: Exception) -> Response:
    """422 naming each wrong field and what it should be, never echoing the input."""
    problems = error.errors() if isinstance(error, RequestValidationError) else []
    parts = []
    for problem in problems[:5]:
        where = ".".join(str(p)[:40] for p in problem.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}")
    return JSONResponse({"error": "; ".join(parts) or "the request is not what this route takes"},
                        status_code=422)


def _http_error(request: Request, error: Exception) -> Response:
    if not isinstance(error, HTTPException):
        raise error
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                        headers=error.headers)


class BoundedBody:
    """ASGI middleware: a body over `max_bytes`, or one that does not say its length,
    is refused (413, 411) before it is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = Headers(scope=scope).get("content-length")
            if length is None or not length.isdigit():
                answer = JSONResponse({"error": "send the body with a Content-Length"},
                                      status_code=411)
                await answer(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                answer = JSONResponse(
                    {"error": f"the body is {int(length):,} bytes; this server takes at most "
                     f"{self.max_bytes:,} (--max-body-mb)"}, status_code=413)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def serve(settings: Settings, config: RewardServerConfig, *, host: str = "127.0.0.1",
          port: int = 8100, meta: StoredMetaScorer | None = None) -> None:
    """Open the store and serve rewards until stopped (Ctrl-C)."""
    import uvicorn

    from core.store import open_store
    from webapp.security import proxy_options

    app = reward_app(settings, open_store(settings), config, meta=meta)
    print(f"GRM Studio reward server on http://{host}:{port} (judge: {settings.model_shown}; "
          "POST /v1/reward, POST /get_reward; GET /ready says when the judge is loaded)",
          flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", **proxy_options(settings))
