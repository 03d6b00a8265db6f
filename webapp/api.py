"""A small JSON API for labelling, beside the pages: for scripts, teams and the
load test. Same session cookie, same role checks (`Studio.require`), same
core functions as the Annotate tab; the handlers only translate.

    GET  /api/v1/me                          who is signed in
    GET  /api/v1/queues/{queue}/next         the next item for me in a queue
    POST /api/v1/labels                      label an item (201)
    POST /api/v1/labels/{label_id}/undo      undo one of my labels
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from core.errors import InputError, NotAllowedError, StoreUnavailableError
from core.store.accounts import Account, Action
from core.store.labels import Label, add_label, undo_label
from core.store.queues import next_in_queue
from webapp.studio import Studio

TEXT = 20_000  # characters in a correction or note


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1, lt=2**63)
    best: int | None = Field(description="0-based index of the best response; null: a tie")
    corrected_scores: list[int] | None = Field(None, max_length=64)
    corrected_principles: str | None = Field(None, max_length=TEXT)
    corrected_critique: str | None = Field(None, max_length=TEXT)
    note: str | None = Field(None, max_length=TEXT)
    judgement_id: int | None = Field(None, ge=1, lt=2**63)


def _label_json(label: Label | None) -> dict[str, Any] | None:
    if label is None:
        return None
    return {
        "id": label.id, "item_id": label.item_id, "annotator": label.annotator,
        "best": label.best, "supersedes_id": label.supersedes_id,
        "created_at": label.created_at.isoformat(),
    }


def add_label_api(app: FastAPI, studio: Studio) -> None:
    router = APIRouter(prefix="/api/v1")

    def signed_in(request: Request, action: Action | None = None) -> Account:
        account = studio.account(request)
        if account is None:
            raise NotAllowedError("sign in first (POST /login)")
        return account.require(action) if action else account

    @router.get("/me")
    def me(request: Request) -> dict[str, str]:
        account = signed_in(request)
        return {"name": account.name, "role": account.role}

    @router.get("/queues/{queue}/next", response_model=None)
    def next_item(
        request: Request,
        queue: str,
        dataset: str | None = None,
        exclude: Annotated[list[int] | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any] | Response:
        account = signed_in(request)
        head = next_in_queue(studio.engine, queue, annotator=account.name, dataset=dataset,
                             exclude=exclude or (), blind=True)
        if (view := head.view) is None:
            return Response(status_code=204)
        return {"item_id": view.item_id, "dataset": view.dataset, "query": view.query,
                "responses": list(view.responses), "pending": head.pending}

    @router.post("/labels", status_code=201)
    def post_label(request: Request, body: LabelIn) -> dict[str, Any] | None:
        account = signed_in(request, Action.LABEL)
        label = add_label(
            studio.engine, body.item_id, account.name, body.best,
            corrected_scores=body.corrected_scores,
            corrected_principles=body.corrected_principles,
            corrected_critique=body.corrected_critique, note=body.note,
            judgement_id=body.judgement_id,
        )
        return _label_json(label)

    @router.post("/labels/{label_id}/undo")
    def undo(request: Request, label_id: int) -> dict[str, Any]:
        account = signed_in(request, Action.LABEL)
        return {"restored": _label_json(undo_label(studio.engine, label_id, annotator=account.name))}

    app.include_router(router)
    app.add_exception_handler(NotAllowedError, _status(403, studio))
    app.add_exception_handler(InputError, _status(400, studio))
    app.add_exception_handler(StoreUnavailableError, _status(503, studio))


def _status(code: int, studio: Studio) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, error: Exception) -> Response:
        signed_out = isinstance(error, NotAllowedError) and studio.account(request) is None
        return JSONResponse({"error": str(error)}, status_code=401 if signed_out else code)

    return handle
