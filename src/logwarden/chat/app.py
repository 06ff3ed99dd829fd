"""The ASGI application: the page at ``/``, the chat at ``/ws``, and small JSON endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import html
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from logwarden.audit.entries import entry
from logwarden.audit.log import AuditLog
from logwarden.chat.addresses import OriginPolicy, TrustedProxies
from logwarden.chat.receipts import receipt_routes
from logwarden.chat.server import ChatServer
from logwarden.clock import Clock, SystemClock
from logwarden.config import SafetySettings, Settings
from logwarden.datadir import (
    open_audit,
    open_keystore,
    open_recorder,
    open_retention,
    open_store,
    open_vault,
)
from logwarden.errors import AuditVerificationError, LogwardenError
from logwarden.recorder import RecorderProcess, SessionLog, UnsafeNoLogRecorder
from logwarden.retention import Retention
from logwarden.safety import PiiDetector, RiskPolicy
from logwarden.store import SessionEndRow, Store, WriteBatch

__all__ = ["create_app"]

log = logging.getLogger("logwarden.retention")

_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """Build the app over an initialised data directory (see ``logwarden init``)."""
    clock = clock or SystemClock()
    keystore = open_keystore(settings)
    vault = open_vault(settings, keystore)
    store = open_store(settings)
    audit = open_audit(settings, store=store, clock=clock)
    retention = open_retention(settings, store=store, keystore=keystore, audit=audit, clock=clock)
    session_log: SessionLog
    if settings.unsafe_bench_no_log:
        session_log = UnsafeNoLogRecorder()
    elif settings.recorder.process and isinstance(clock, SystemClock):
        # A clock given here (tests) could not be shared with another process.
        session_log = RecorderProcess(settings)
    else:
        session_log = open_recorder(
            settings, store=store, vault=vault, retention=retention, audit=audit
        )
    chat = ChatServer(
        settings=settings.chat,
        retention=settings.retention,
        session_log=session_log,
        vault=vault,
        clock=clock,
        reported_pairs=store.reported_pairs(),
        detector=PiiDetector(),
        warn_personal_info=settings.safety.warn_personal_info,
        risk_policy=_risk_policy(settings.safety) if settings.safety.score_risk else None,
        end_chats=settings.safety.end_chats,
        risk_process=settings.safety.risk_process,
    )
    proxies = TrustedProxies(settings.trusted_proxies)
    origins = OriginPolicy(settings.allowed_origins)
    page = _render_page(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sessions of a server that died were never ended; no chat is live before we start.
        # Ending them lets their receipts erase them and their report windows close.
        interrupted = _end_interrupted(store, at=clock.now_ms())
        if interrupted:
            log.warning(
                "%d sessions of an earlier run had no end: ended as interrupted", interrupted
            )
        session_log.start(asyncio.get_running_loop())
        await session_log.started()
        await chat.start()
        # What exists now (modules, the detector's phone metadata, the risk lexicon) lives as
        # long as the server: out of the collector's sight, each full collection is shorter by
        # it, about 90 ms of pause on the benchmark machine (docs/BENCHMARKS.md).
        gc.freeze()
        purging = asyncio.create_task(
            _purge_on_schedule(retention, settings.retention.purge_interval_minutes * 60)
        )
        signing = asyncio.create_task(
            _checkpoint_on_schedule(audit, settings.audit.checkpoint_interval_ms / 1000)
        )
        try:
            yield
        finally:
            purging.cancel()
            signing.cancel()
            await chat.shutdown()
            await session_log.aclose()
            for task in (purging, signing):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(_final_checkpoint, audit)
            store.close()
            keystore.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.chat = chat
    app.state.vault = vault
    app.include_router(receipt_routes(retention))

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(_SECURITY_HEADERS)
        return response

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/policy")
    async def policy() -> JSONResponse:
        """What is recorded and for how long, for pages and bots alike."""
        r = settings.retention
        return JSONResponse(
            {
                "recorded": [
                    "message text",
                    "message times",
                    "IP address",
                    "session times",
                    "matched interests",
                    "reports",
                ],
                "encrypted": ["message text", "IP address", "matched interests", "report comments"],
                "retention_days": {
                    "message_text": r.session_days,
                    "raw_ip": r.raw_ip_days,
                    "ip_pseudonym_and_metadata": r.metadata_days,
                    "reported_sessions": r.reported_days,
                },
            }
        )

    @app.websocket("/ws")
    async def chat_socket(websocket: WebSocket) -> None:
        if not origins.allows(websocket.headers.get("origin"), websocket.headers.get("host")):
            await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        peer = websocket.client.host if websocket.client else "0.0.0.0"
        # Every X-Forwarded-For line, in order: a proxy may append its own line after the
        # client's forged one, and only the right-most entries are believable.
        forwarded_for = ",".join(websocket.headers.getlist("x-forwarded-for")) or None
        address = proxies.client_address(peer, forwarded_for)
        await websocket.accept()
        await chat.serve(websocket, address)

    static = resources.files("logwarden.chat") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def _risk_policy(settings: SafetySettings) -> RiskPolicy:
    policy = RiskPolicy(medium=settings.risk_medium, high=settings.risk_high)
    if settings.safety_message is not None:
        policy = dataclasses.replace(policy, safety_message=settings.safety_message)
    return policy


def _end_interrupted(store: Store, *, at: int) -> int:
    """End, with their audit entries, the sessions a dead server left open; how many."""
    unfinished = store.unfinished_sessions()
    if unfinished:
        batch = WriteBatch()
        for session_id in unfinished:
            record = store.session(session_id)
            said = record.messages[-1].seq if record is not None and record.messages else 0
            batch.ends.append(SessionEndRow(session_id, at, "interrupted", None))
            batch.audit.append(
                entry(
                    "end",
                    at=at,
                    session_id=session_id,
                    reason="interrupted",
                    by=None,
                    messages=said,
                )
            )
        store.write(batch)
    return len(unfinished)


async def _checkpoint_on_schedule(audit: AuditLog, interval: float) -> None:
    """Sign a checkpoint every ``interval`` seconds while the log grows, off the event loop."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(audit.checkpoint)
        except AuditVerificationError:
            pass  # a refusal raises the alarm, which the audit log logs once (audit/log.py)
        except Exception:
            # A failed signature (the database away) is retried at the next tick; the log
            # itself is unharmed, its entries are already durable.
            log.exception("could not sign an audit checkpoint (will retry)")


def _final_checkpoint(audit: AuditLog) -> None:
    try:
        audit.checkpoint()
    except AuditVerificationError:
        pass  # the alarm is raised and logged already
    except Exception:
        log.exception("could not sign the last audit checkpoint")


async def _purge_on_schedule(retention: Retention, interval: float) -> None:
    """Purge at start-up and then every ``interval`` seconds, off the event loop."""
    while True:
        try:
            summary = await asyncio.to_thread(retention.purge)
        except LogwardenError as exc:
            log.error("purge failed (will retry): %s", exc)
        except Exception:
            # Whatever it was, the schedule must go on: a stopped purge keeps everything.
            log.exception("purge failed (will retry)")
        else:
            log.info(
                "purge: %d bucket keys and %d data keys destroyed, %d messages, %d addresses "
                "and %d sessions deleted, %d erasures",
                sum(summary.buckets_destroyed.values()),
                summary.data_keys_destroyed,
                summary.messages_deleted,
                summary.addresses_deleted,
                summary.sessions_deleted,
                summary.sessions_erased,
            )
        await asyncio.sleep(interval)


def _render_page(settings: Settings) -> str:
    template = (resources.files("logwarden.chat") / "templates" / "index.html").read_text("utf-8")
    r = settings.retention
    values = {
        "session_days": r.session_days,
        "raw_ip_days": r.raw_ip_days,
        "metadata_days": r.metadata_days,
        "reported_days": r.reported_days,
    }
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", html.escape(str(value)))
    return template
