"""A small JSON API for labelling, beside the pages: for scripts, teams and the
load test. Same session cookie, same role checks (`Studio.require`), same
core functions as the Annotate tab; the handlers only translate.

    GET  /api/v1/me                          who is signed in
    GET  /api/v1/queues/{queue}/next         the next item for me in a queue
    POST /api/v1/labels                      label an item (201)
    POST /api/v1/labels/{label_id}/undo      undo one of my labels
    GET  /api/v1/settle/next                 the next disagreement to settle (admin, reviewer)
    POST /api/v1/adjudications               settle an item: its adjudicated label (201)
    POST /api/v1/adjudications/{id}/undo     undo an item's current adjudicated label
    GET  /api/v1/items/{item_id}/reference   an item's reference answer and its edits
    PUT  /api/v1/items/{item_id}/reference   add or replace it: {"reference": "..."}
    DELETE /api/v1/items/{item_id}/reference remove it (an empty PUT is refused)

Every bad input is a 4xx answer `{"error": "..."}` that says what was wrong
(422: the body or a parameter has the wrong shape; 400: the store refuses it,
e.g. an unknown item or judgement, a NUL or lone surrogate in a text; 413: a
body over MAX_BODY bytes); no message carries SQL, a stack or the input back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import InputError, NotAllowedError, StoreUnavailableError
from core.inputs import clean_text
from core.labels import Accepted, ItemLabel, NoLabel
from core.references import MAX_REFERENCE_CHARS
from core.store.accounts import Account, Action
from core.store.adjudication import AdjudicatedLabel, adjudicate, undo_adjudication
from core.store.labels import Label, add_label, undo_label
from core.store.queues import next_in_queue, next_to_settle
from core.store.reference_edits import (
    ReferenceChange,
    item_reference,
    remove_reference,
    set_reference,
)
from webapp.studio import Studio

TEXT = 20_000  # characters in a correction or note
MAX_BODY = 1_000_000  # bytes in a request body
NAME = 200  # characters in a queue or dataset name
RowId = Annotated[int, Field(ge=1, lt=2**63)]  # what an id column holds


class LabelIn(BaseModel):
    """A label as a script sends it: JSON types exactly (no "1" for 1), no other fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    item_id: int = Field(ge=1, lt=2**63)
    best: int | None = Field(description="0-based index of the best response; null: a tie")
    corrected_scores: list[int] | None = Field(None, max_length=64)
    corrected_principles: str | None = Field(None, max_length=TEXT)
    corrected_critique: str | None = Field(None, max_length=TEXT)
    note: str | None = Field(None, max_length=TEXT)
    judgement_id: int | None = Field(None, ge=1, lt=2**63)


class AdjudicationIn(BaseModel):
    """An adjudicated label as a script sends it (JSON types exactly, no other fields)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    item_id: int = Field(ge=1, lt=2**63)
    best: int | None = Field(description="0-based index of the best response; null: a tie")
    note: str | None = Field(None, max_length=TEXT)


class ReferenceIn(BaseModel):
    """An item's new reference answer as a script sends it (a string, no other fields;
    a blank one is refused: DELETE removes it)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reference: str = Field(max_length=MAX_REFERENCE_CHARS)


def _reference_json(item_id: int, reference: str | None,
                    history: list[ReferenceChange]) -> dict[str, Any]:
    return {"item_id": item_id, "reference": reference, "history": [
        {"id": c.id, "editor": c.editor, "action": c.action, "reference": c.reference,
         "previous": c.previous, "supersedes_id": c.supersedes_id,
         "created_at": c.created_at.isoformat()} for c in history]}


def _adjudication_json(row: AdjudicatedLabel | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"id": row.id, "item_id": row.item_id, "adjudicator": row.adjudicator,
            "best": row.best, "note": row.note, "supersedes_id": row.supersedes_id,
            "retracted": row.retracted, "created_at": row.created_at.isoformat()}


def _item_label_json(label: ItemLabel | NoLabel) -> dict[str, Any]:
    if isinstance(label, NoLabel):
        return {"best": None, "source": None, "reason": label.reason}
    if isinstance(label.best, Accepted):  # a best-of-n item's correct responses
        return {"best": None, "accepted": list(label.best.indices), "source": label.source,
                "votes": label.votes, "total": label.total}
    return {"best": label.best, "source": label.source, "votes": label.votes,
            "total": label.total}


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
        queue: Annotated[str, Path(max_length=NAME)],
        dataset: Annotated[str | None, Query(max_length=NAME)] = None,
        exclude: Annotated[list[RowId] | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any] | Response:
        account = signed_in(request)
        clean_text(queue, "the queue")
        if dataset is not None:
            clean_text(dataset, "the dataset")
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
    def undo(request: Request, label_id: Annotated[int, Path(ge=1, lt=2**63)]) -> dict[str, Any]:
        account = signed_in(request, Action.LABEL)
        return {"restored": _label_json(undo_label(studio.engine, label_id, annotator=account.name))}

    @router.get("/settle/next", response_model=None)
    def next_to_settle_item(
        request: Request,
        dataset: Annotated[str | None, Query(max_length=NAME)] = None,
        exclude: Annotated[list[RowId] | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any] | Response:
        signed_in(request, Action.ADJUDICATE)
        if dataset is not None:
            clean_text(dataset, "the dataset")
        head = next_to_settle(studio.engine, dataset=dataset, exclude=exclude or ())
        if (view := head.view) is None:
            return Response(status_code=204)
        return {"item_id": view.item.item_id, "dataset": view.item.dataset,
                "query": view.item.query, "responses": list(view.item.responses),
                "labels": [{**(_label_json(label) or {}), "note": label.note}
                           for label in view.item.labels],
                "label": _item_label_json(view.label),
                "history": [_adjudication_json(row) for row in view.history],
                "pending": head.pending}

    @router.post("/adjudications", status_code=201)
    def post_adjudication(request: Request, body: AdjudicationIn) -> dict[str, Any] | None:
        account = signed_in(request, Action.ADJUDICATE)
        return _adjudication_json(
            adjudicate(studio.engine, body.item_id, account.name, body.best, note=body.note))

    @router.post("/adjudications/{adjudication_id}/undo")
    def undo_settled(
        request: Request, adjudication_id: Annotated[int, Path(ge=1, lt=2**63)]
    ) -> dict[str, Any]:
        account = signed_in(request, Action.ADJUDICATE)
        restored = undo_adjudication(studio.engine, adjudication_id, account.name)
        return {"restored": _adjudication_json(restored)}

    @router.get("/items/{item_id}/reference")
    def get_reference(request: Request, item_id: Annotated[int, Path(ge=1, lt=2**63)]
                      ) -> dict[str, Any]:
        signed_in(request)
        return _reference_json(item_id, *item_reference(studio.engine, item_id))

    @router.put("/items/{item_id}/reference")
    def put_reference(request: Request, item_id: Annotated[int, Path(ge=1, lt=2**63)],
                      body: ReferenceIn) -> dict[str, Any]:
        account = signed_in(request, Action.EDIT_REFERENCE)
        set_reference(studio.engine, item_id, account.name, body.reference)
        return _reference_json(item_id, *item_reference(studio.engine, item_id))

    @router.delete("/items/{item_id}/reference")
    def delete_reference(request: Request, item_id: Annotated[int, Path(ge=1, lt=2**63)]
                         ) -> dict[str, Any]:
        account = signed_in(request, Action.EDIT_REFERENCE)
        remove_reference(studio.engine, item_id, account.name)
        return _reference_json(item_id, *item_reference(studio.engine, item_id))

    app.include_router(router)
    app.add_exception_handler(NotAllowedError, _status(403, studio))
    app.add_exception_handler(InputError, _status(400, studio))
    app.add_exception_handler(StoreUnavailableError, _status(503, studio))
    app.add_exception_handler(RequestValidationError, _bad_shape)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(BoundedBody)


def _status(code: int, studio: Studio) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, error: Exception) -> Response:
        signed_out = isinstance(error, NotAllowedError) and studio.account(request) is None
        return JSONResponse({"error": str(error)}, status_code=401 if signed_out else code)

    return handle


def _bad_shape(request: Request, error: Exception) -> Response:
    """422 naming each wrong field and what it should be, never echoing the input."""
    problems = error.errors() if isinstance(error, RequestValidationError) else []
    parts = []
    for problem in problems[:5]:
        where = ".".join(_shown(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path"))
        if problem.get("type") == "string_unicode":  # what `clean_text` says of stored text
            parts.append(f"{where or 'the body'} contains a lone UTF-16 surrogate or other text "
                         "that is not valid Unicode; remove it")
        else:
            parts.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}")
    message = "; ".join(parts) or "the request is not what this route takes"
    return JSONResponse({"error": message}, status_code=422)


def _http_error(request: Request, error: Exception) -> Response:
    """FastAPI's own refusals (a body it cannot parse, 404, 405) in the same shape."""
    if not isinstance(error, HTTPException):
        raise error
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                        headers=error.headers)


def _shown(part: object) -> str:
    """A field name from the request (an unknown key is the sender's text): short,
    and only what can be written as UTF-8."""
    text = str(part)[:40]
    return text.encode("utf-8", "replace").decode("utf-8")


def _unexpected(request: Request, error: Exception) -> Response:
    """A bug: only this sentence goes back (the server logs the stack)."""
    return JSONResponse(
        {"error": "the server failed on this request; its log has the details"}, status_code=500)


class BoundedBody:
    """ASGI middleware: a JSON API body over MAX_BODY bytes (or of unstated length)
    is refused before it is read."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            headers = Headers(scope=scope)
            length = headers.get("content-length")
            chunked = length is None and "transfer-encoding" in headers
            if chunked or (length is not None and (not length.isdigit() or int(length) > MAX_BODY)):
                answer = JSONResponse(
                    {"error": f"a request body has at most {MAX_BODY:,} bytes and says its length"},
                    status_code=413)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
