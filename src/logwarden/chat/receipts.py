"""``/receipt/{token}``: what is kept about one chat, and its erasure, for whoever holds the
receipt handed out in ``matched`` (docs/retention.md).

The page works without JavaScript: a plain form posts the deletion request. ``Accept:
application/json`` gets the same answers as JSON, and ``DELETE /receipt/{token}`` erases too.
An unknown, erased or malformed token gets the same 404, so a token cannot be probed.
"""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from logwarden.retention import Erasure, Receipt, Retention

__all__ = ["receipt_routes"]

_NOT_FOUND = (
    "Nothing is kept under this receipt. It may have been erased, its chat may have expired, "
    "or the link may be incomplete."
)


def receipt_routes(retention: Retention) -> APIRouter:
    router = APIRouter()

    @router.get("/receipt/{token}")
    async def show(token: str, request: Request) -> Response:
        receipt = await asyncio.to_thread(retention.receipt, token)
        if receipt is None:
            return _not_found(request)
        if _wants_json(request):
            return JSONResponse(_receipt_json(receipt), headers=_PRIVATE)
        return HTMLResponse(_receipt_page(token, receipt), headers=_PRIVATE)

    @router.post("/receipt/{token}/erase")
    async def erase_from_form(token: str, request: Request) -> Response:
        return await _erase(token, request)

    @router.delete("/receipt/{token}")
    async def erase(token: str, request: Request) -> Response:
        return await _erase(token, request)

    async def _erase(token: str, request: Request) -> Response:
        outcome = await asyncio.to_thread(retention.erase, token)
        if outcome is None:
            return _not_found(request)
        status = {"erased": 200, "scheduled": 202, "refused": 409}[outcome.outcome]
        if _wants_json(request) or request.method == "DELETE":
            return JSONResponse(_erasure_json(outcome), status_code=status, headers=_PRIVATE)
        return HTMLResponse(_erasure_page(outcome), status_code=status, headers=_PRIVATE)

    return router


# A receipt page is nobody's business but its holder's: no caches, no referrer.
_PRIVATE = {"cache-control": "no-store"}


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _not_found(request: Request) -> Response:
    # no-store here too: a cache that kept this answer would keep its URL, token and all.
    if _wants_json(request) or request.method == "DELETE":
        return JSONResponse(
            {"error": "not_found", "message": _NOT_FOUND}, status_code=404, headers=_PRIVATE
        )
    page = _document("No such receipt", f"<p>{_NOT_FOUND}</p>")
    return HTMLResponse(page, status_code=404, headers=_PRIVATE)


def _when(ms: int | None) -> str:
    if ms is None:
        return "until a legal hold is released"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "started_at": receipt.started_at,
        "ended_at": receipt.ended_at,
        "reported": receipt.reported,
        "held": receipt.held,
        "withheld": receipt.withheld,
        "erase_after": receipt.erase_after,
        "kept": [{"what": k.what, "until": k.until} for k in receipt.kept],
    }


def _erasure_json(outcome: Erasure) -> dict[str, Any]:
    return {"outcome": outcome.outcome, "reason": outcome.reason, "at": outcome.at}


def _receipt_page(token: str, receipt: Receipt) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k.what)}</td>"
        f"<td>{'not disclosed' if receipt.withheld else html.escape(_when(k.until))}</td></tr>"
        for k in receipt.kept
    )
    action = f"/receipt/{html.escape(token)}/erase"
    erase = f"""<form method="post" action="{action}">
  <p>You can ask for this chat to be erased. Erasing destroys its keys and deletes its records
  for both of you; it cannot be undone. Until the other person's time to report the chat has
  passed (a few minutes after it ends), the erasure waits for it.</p>
  <button type="submit">Erase this chat</button>
</form>"""
    if receipt.withheld:
        erase = (
            "<p class='status'>This chat is kept for safety or legal reasons: "
            "it cannot be erased now.</p>"
        )
    elif receipt.held:
        erase = "<p class='status'>This chat is under a legal hold: it cannot be erased.</p>"
    elif receipt.reported:
        erase = "<p class='status'>This chat was reported: it is kept as evidence.</p>"
    elif receipt.erase_after is not None:
        erase = (
            "<p class='status'>Erasure requested: it will be carried out by the first purge "
            f"after {html.escape(_when(receipt.erase_after))}, unless the chat is reported "
            "before then.</p>"
        )
    body = f"""
<p>Chat started {html.escape(_when(receipt.started_at))}.</p>
<table>
  <thead><tr><th>What we keep</th><th>Until</th></tr></thead>
  <tbody>{rows}</tbody>
</table>
{erase}"""
    return _document("Your chat receipt", body)


def _erasure_page(outcome: Erasure) -> str:
    titles = {"erased": "Erased", "scheduled": "Erasure scheduled", "refused": "Not erased"}
    when = "" if outcome.at is None else f" ({html.escape(_when(outcome.at))})"
    reason = outcome.reason[:1].upper() + outcome.reason[1:]  # a sentence on the page
    return _document(titles[outcome.outcome], f"<p>{html.escape(reason)}{when}.</p>")


def _document(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <link rel="icon" href="data:,">
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <meta name="referrer" content="no-referrer">
  <meta name="robots" content="noindex">
  <title>logwarden · {html.escape(title)}</title>
  <link rel="stylesheet" href="/static/style.css">
</head>
<body class="receipt">
  <main>
    <h1>{html.escape(title)}</h1>
    {body}
    <p><a href="/">Back to the chat</a></p>
  </main>
</body>
</html>
"""
