"""The chat: connections, pairing, relay through the session log, limits and heartbeats.

One ``ChatServer`` per process. Each connection is a ``Client`` with a state
(idle → waiting → chatting) and an outbox drained by its own writer task, so a stranger who
stops reading fills only their own outbox and never stalls the sender. State changes happen
synchronously, before any ``await``, so two events can never both act on one chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from typing import Any

from starlette.websockets import WebSocket

from logwarden.chat.pairing import Match, Matchmaker
from logwarden.chat.protocol import (
    PROTOCOL_VERSION,
    Cancel,
    ClientFrame,
    Join,
    Limits,
    Next,
    Pong,
    Report,
    SendMessage,
    State,
    Stop,
    Typing,
    encode,
    frame_type,
    parse_frame,
)
from logwarden.chat.ratelimit import StrikeCounter, TokenBucket
from logwarden.clock import Clock
from logwarden.config import ChatSettings, RetentionSettings
from logwarden.errors import ProtocolError, StoreError, VaultError
from logwarden.recorder import SessionLog
from logwarden.retention.receipts import new_receipt
from logwarden.safety import Assessment, Finding, PiiDetector, RiskPolicy
from logwarden.safety.worker import RiskWorker
from logwarden.vault import Vault

__all__ = ["ChatServer"]

log = logging.getLogger("logwarden.chat")

CLOSE_POLICY = 1008  # persistent abuse, or a client that stopped reading
CLOSE_HEARTBEAT = 4000
CLOSE_SERVICE_RESTART = 1012  # what uvicorn sends every connection when it shuts down

# Messages one connection may have waiting for the log at once; past this its next frame is not
# read until the oldest is durable. Several in flight let a fast sender share group commits
# with itself; a bound keeps one connection from queueing without limit.
_MAX_IN_FLIGHT = 32

_HEARTBEAT_PHASES = 16  # heartbeat wake-ups per interval; connections spread over them

# Errors that a well-behaved client can run into by timing alone (the stranger left while its
# message was in flight) are no sign of abuse and do not count towards closing it; the frame
# rate limit still bounds how many of them anyone can provoke.
_INNOCENT_ERRORS = frozenset(
    {
        "internal_error",
        "not_in_chat",
        "already_joined",
        "not_joined",
        "nothing_to_report",
        "already_reported",
        "log_unavailable",
        "no_warning",
    }
)

_MAX_REASONS_LOGGED = 20  # the newest reasons of a risk assessment kept in its safety event


class Client:
    """One WebSocket connection and what we know about it."""

    def __init__(
        self,
        *,
        websocket: WebSocket,
        address: str,
        pseudonym: str,
        block_key: str,
        settings: ChatSettings,
        now: float,
    ) -> None:
        self.websocket = websocket
        self.address = address
        self.pseudonym = pseudonym
        self.block_key = block_key
        self.state = State.IDLE
        self.session: ChatSession | None = None  # set once the chat is announced
        self.matching: ChatSession | None = None  # paired, start not yet recorded (still waiting)
        self.last_session: ChatSession | None = None
        self.interests: tuple[str, ...] = ()
        self.last_seen = now
        self.next_ping = now  # set by the server to spread pings over the interval
        self.fallback: asyncio.TimerHandle | None = None
        self.frames = TokenBucket(
            rate=settings.frames_per_second, burst=settings.frame_burst, now=now
        )
        self.messages = TokenBucket(
            rate=settings.messages_per_second, burst=settings.message_burst, now=now
        )
        self.strikes = StrikeCounter(limit=settings.abuse_error_limit, window=settings.abuse_window)
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=settings.outbound_queue)
        # Messages of this client on their way to the log, oldest first (they resolve in order).
        self.logging: deque[asyncio.Future[None]] = deque()
        self.writer: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None  # our side closing the socket
        self.closing = False
        self.leave_reason = "disconnected"
        # The kinds of personal information in the message the server last warned about,
        # until the sender sends it anyway, edits it, cancels it or leaves.
        self.warned: tuple[str, ...] | None = None
        # That message's text, in memory only and as long as ``warned``: sending it again
        # unchanged is not an edit (never logged, like the text itself).
        self.warned_text: str | None = None

    async def messages_logged(self) -> None:
        """Return once every message this client sent so far is durable and relayed."""
        if self.logging:
            await asyncio.wait({self.logging[-1]})

    def cancel_fallback(self) -> None:
        if self.fallback is not None:
            self.fallback.cancel()
            self.fallback = None


class ChatSession:
    """Two clients in one chat, slot 0 (who waited longer) and slot 1."""

    def __init__(
        self, *, first: Client, second: Client, started_at: int, interests: tuple[str, ...]
    ) -> None:
        self.id = secrets.token_hex(16)
        self.clients = (first, second)
        self.started_at = started_at
        self.interests = interests
        self.ended = False
        self.ended_at_loop = 0.0  # event-loop time, for the report window
        self.reported_by: set[int] = set()
        # One receipt per participant (docs/retention.md): the log keeps only the digests.
        self.receipts = (new_receipt(), new_receipt())
        self._seq = 0
        self.flags_recorded: set[str] = set()  # risk flags already in the log
        self.escalated = False  # a risk event is in the log
        self.notified: set[int] = set()  # slots that got the safety message

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def slot_of(self, client: Client) -> int:
        return 0 if self.clients[0] is client else 1

    def peer_of(self, client: Client) -> Client:
        return self.clients[1 - self.slot_of(client)]


class ChatServer:
    def __init__(
        self,
        *,
        settings: ChatSettings,
        retention: RetentionSettings,
        session_log: SessionLog,
        vault: Vault,
        clock: Clock,
        reported_pairs: Iterable[tuple[str, str]] = (),
        detector: PiiDetector | None = None,
        warn_personal_info: bool = False,
        risk_policy: RiskPolicy | None = None,
        end_chats: bool = False,
        risk_process: bool = False,
    ) -> None:
        self._settings = settings
        # The safety engine (docs/safety.md): the detector runs when either part is on, since
        # the risk scorer reads its findings (a stated age) too.
        self._detector = detector if (warn_personal_info or risk_policy) else None
        self._warn = warn_personal_info and detector is not None
        self._risk_policy = risk_policy
        self._end_chats = end_chats
        # Sessions the risk scorer may still answer about, until it says it is done.
        self._scored: dict[str, ChatSession] = {}
        self._risk = (
            None
            if risk_policy is None
            else RiskWorker(risk_policy, self._on_risk, self._risk_done, inline=not risk_process)
        )
        self._log = session_log
        self._vault = vault
        self._clock = clock
        self._limits = Limits(
            max_frame_bytes=settings.max_frame_bytes,
            max_message_chars=settings.max_message_chars,
            max_interests=settings.max_interests,
            max_interest_chars=settings.max_interest_chars,
        )
        self._hello = encode(
            "hello",
            protocol=PROTOCOL_VERSION,
            limits={
                "max_message_chars": settings.max_message_chars,
                "max_frame_bytes": settings.max_frame_bytes,
                "messages_per_second": settings.messages_per_second,
                "max_interests": settings.max_interests,
                "max_interest_chars": settings.max_interest_chars,
                "heartbeat_interval": settings.heartbeat_interval,
                "heartbeat_timeout": settings.heartbeat_timeout,
                "report_window": settings.report_window,
            },
            retention={
                "session_days": retention.session_days,
                "raw_ip_days": retention.raw_ip_days,
                "reported_days": retention.reported_days,
            },
        )
        self._blocked = {frozenset(pair) for pair in reported_pairs if pair[0] != pair[1]}
        self._matchmaker: Matchmaker[Client] = Matchmaker(self._can_pair)
        self._clients: set[Client] = set()
        self._sessions: set[ChatSession] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._accepted = 0  # connections so far, to give each a heartbeat phase
        # Set by whoever runs the server: tells a shutdown's 1012 from a client's own.
        self.is_shutting_down: Callable[[], bool] = lambda: False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._heartbeat = asyncio.get_running_loop().create_task(self._heartbeat_loop())
        if self._risk is not None:
            await self._risk.start()

    async def shutdown(self) -> None:
        """End every chat (reason ``server_shutdown``) and wait for the log to have it all."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._risk is not None:
            await self._risk.close()  # what was said is scored, and acted on, first
        for session in list(self._sessions):
            self._end_session(session, reason="server_shutdown", by=None)
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- one connection --------------------------------------------------------------------

    async def serve(self, websocket: WebSocket, address: str) -> None:
        """Run one accepted connection until it closes."""
        loop = asyncio.get_running_loop()
        client = Client(
            websocket=websocket,
            address=address,
            pseudonym=self._vault.pseudonym(address),
            block_key=self._vault.network_pseudonym(address),
            settings=self._settings,
            now=loop.time(),
        )
        self._accepted += 1
        phase = (self._accepted % _HEARTBEAT_PHASES + 1) / _HEARTBEAT_PHASES
        client.next_ping = client.last_seen + self._settings.heartbeat_interval * phase
        self._clients.add(client)
        client.writer = loop.create_task(self._write_loop(client))
        self._send(client, self._hello)
        try:
            while not client.closing:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    if message.get("code") == CLOSE_SERVICE_RESTART and self.is_shutting_down():
                        client.leave_reason = "server_shutdown"
                    break
                client.last_seen = loop.time()
                raw = message.get("text")
                await self._on_frame(
                    client, raw if raw is not None else message.get("bytes") or b""
                )
        finally:
            try:
                if not client.closing:
                    # What they sent before leaving still reaches the stranger, as if serial.
                    await client.messages_logged()
            finally:
                self._clients.discard(client)
                self._leave(client, reason=client.leave_reason)
            client.closing = True
            client.writer.cancel()
            if client.closer is not None:
                await client.closer  # returning first would drop the connection unclosed

    async def _write_loop(self, client: Client) -> None:
        with contextlib.suppress(Exception):  # a failed write is a disconnect: the reader sees it
            while True:
                await client.websocket.send_text(await client.outbox.get())

    def _send(self, client: Client, text: str) -> None:
        if client.closing:
            return
        try:
            client.outbox.put_nowait(text)
        except asyncio.QueueFull:
            # They stopped reading. Their problem must not become the sender's: cut them off.
            log.info("closing %s: outbox full", _who(client))
            self._close(client, CLOSE_POLICY, "not reading", leave_reason="disconnected")

    def _close(self, client: Client, code: int, reason: str, *, leave_reason: str) -> None:
        """Close from our side: end the client's chat now, then close the socket."""
        if client.closing:
            return
        client.closing = True
        client.leave_reason = leave_reason
        self._leave(client, reason=leave_reason)
        if client.writer is not None:
            client.writer.cancel()
        client.closer = asyncio.get_running_loop().create_task(
            self._close_socket(client, code, reason)
        )

    async def _close_socket(self, client: Client, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.websocket.close(code, reason), timeout=5)

    # -- frames ----------------------------------------------------------------------------

    async def _on_frame(self, client: Client, raw: str | bytes) -> None:
        now = asyncio.get_running_loop().time()
        frame: ClientFrame | None = None
        try:
            if not client.frames.take(now):
                raise ProtocolError("rate_limited", "too many frames; slow down")
            frame = parse_frame(raw, self._limits)
            try:
                await self._dispatch(client, frame)
            except (ProtocolError, asyncio.CancelledError):
                raise
            except Exception:
                # A bug of ours must cost this one frame, not the connection or the chat. The
                # frame itself is not logged: it may hold a stranger's words.
                log.exception("internal error handling a %s frame", frame_type(frame))
                raise ProtocolError("internal_error", "the server failed on this frame") from None
        except ProtocolError as exc:
            answers = exc.frame_type or (None if frame is None else frame_type(frame))
            self._reply(client, _error_frame(exc.code, exc.message, in_reply_to=answers))
            if exc.code not in _INNOCENT_ERRORS and client.strikes.strike(now):
                log.info("closing %s: too many errors (last: %s)", _who(client), exc.code)
                self._close(client, CLOSE_POLICY, "too many errors", leave_reason="abuse")

    async def _dispatch(self, client: Client, frame: ClientFrame) -> None:
        if not isinstance(frame, SendMessage | Typing | Pong):
            # A stop (or next, report, join) takes effect after the messages sent before it:
            # "bye" then Esc must still deliver "bye".
            await client.messages_logged()
        match frame:
            case SendMessage(text, confirm):
                await self._on_message(client, text, confirm=confirm)
            case Cancel():
                self._require_chat(client)
                if client.warned is None:
                    raise ProtocolError("no_warning", "there is no warned message to cancel")
                self._settle_warning(client, "cancelled")
            case Typing(active):
                session = self._require_chat(client)
                self._send(session.peer_of(client), encode("typing", active=active))
            case Join(interests):
                if client.state is not State.IDLE:
                    raise ProtocolError("already_joined", "already waiting or chatting; send next")
                await self._join(client, interests)
            case Next(interests):
                self._leave(client, reason="next")
                await self._join(client, client.interests if interests is None else interests)
            case Stop():
                self._on_stop(client)
            case Report(reason, comment, chat):
                await self._on_report(client, reason, comment, chat)
            case Pong():
                pass

    def _require_chat(self, client: Client) -> ChatSession:
        if client.session is None:
            raise ProtocolError("not_in_chat", "you are not in a chat")
        return client.session

    async def _on_message(self, client: Client, text: str, *, confirm: bool = False) -> None:
        session = self._require_chat(client)
        if not client.messages.take(asyncio.get_running_loop().time()):
            raise ProtocolError("rate_limited", "too many messages; slow down")
        findings = [] if self._detector is None else self._detector.detect(text)
        if self._warn and findings and not confirm:
            # Not sent and not logged: the sender decides. A warning still pending for an
            # earlier text was answered by changing the text; the same text again (Edit,
            # then Enter with nothing changed) is the same warning, still undecided: it is
            # warned again and settled by what the sender does next.
            if text != client.warned_text:
                self._settle_warning(client, "edited")
                client.warned = tuple(sorted({f.kind for f in findings}))
                client.warned_text = text
            warning = encode("warning", text=text, findings=[f.as_json() for f in findings])
            self._reply(client, warning)
            return
        if self._warn and findings:
            client.warned = tuple(sorted({f.kind for f in findings}))
            self._settle_warning(client, "sent_anyway")
        else:
            self._settle_warning(client, "edited")
        slot, seq, at = session.slot_of(client), session.next_seq(), self._clock.now_ms()
        try:
            logged = self._log.message(
                session_id=session.id, seq=seq, slot=slot, sent_at=at, text=text
            )
        except (StoreError, VaultError):
            raise ProtocolError("log_unavailable", _NOT_LOGGED) from None
        client.logging.append(logged)
        logged.add_done_callback(partial(self._relay, client, session, text, seq, at, findings))
        if len(client.logging) >= _MAX_IN_FLIGHT:
            await asyncio.wait({client.logging[0]})

    def _relay(
        self,
        client: Client,
        session: ChatSession,
        text: str,
        seq: int,
        at: int,
        findings: list[Finding],
        logged: asyncio.Future[None],
    ) -> None:
        """Runs once the message is durable (or failed): only now may the stranger see it."""
        client.logging.popleft()  # futures resolve in submission order: this is the oldest
        if logged.cancelled() or logged.exception() is not None:
            self._send(client, _error_frame("log_unavailable", _NOT_LOGGED, in_reply_to="message"))
            return
        # Relay only if the chat is still on: a stranger who left meanwhile is gone. The
        # message stays in the log (it was said), and the sender learns it was not delivered.
        if session.ended:
            self._send(client, _error_frame("not_in_chat", _NOT_DELIVERED, in_reply_to="message"))
            return
        self._send(session.peer_of(client), encode("message", text=text, seq=seq, at=at))
        self._send(client, encode("sent", seq=seq, at=at))
        if self._risk is not None:
            kinds = [finding.kind for finding in findings]
            self._risk.observe(session.id, seq, str(session.slot_of(client)), text, kinds)

    def _reply(self, client: Client, frame: str) -> None:
        """Send a reply in the order of the frames it answers: after those of messages still
        on their way to the log (callbacks of one future run in the order they were added)."""
        if client.logging:
            client.logging[-1].add_done_callback(lambda _: self._send(client, frame))
        else:
            self._send(client, frame)

    # -- the safety engine (docs/safety.md) ------------------------------------------------

    def _settle_warning(self, client: Client, decision: str) -> None:
        """Log what the sender did about the message the server warned about: the kinds found
        and the decision, never the text."""
        kinds, client.warned, client.warned_text = client.warned, None, None
        session = client.session
        if kinds is None or session is None:
            return
        self._log_safety(
            session,
            slot=session.slot_of(client),
            kind="warning",
            detail={"kinds": list(kinds), "decision": decision},
        )

    def _risk_done(self, session_id: str) -> None:
        self._scored.pop(session_id, None)

    def _on_risk(self, session_id: str, assessment: Assessment, seqs: dict[int, int]) -> None:
        session = self._scored.get(session_id)
        if session is not None:
            self._act_on_risk(session, assessment, seqs)

    def _act_on_risk(
        self, session: ChatSession, assessment: Assessment, seqs: dict[int, int]
    ) -> None:
        """Do what the risk policy asks, once per change: log an escalation (preserving the
        session if asked), tell the people at risk, end the chat. ``seqs`` names the message
        of each reason by its seq in the chat."""
        assert self._risk_policy is not None
        decision = self._risk_policy.decide(assessment)
        new_flags = set(assessment.flags) - session.flags_recorded
        if (decision.review or decision.preserve) and (new_flags or not session.escalated):
            session.escalated = True
            session.flags_recorded.update(assessment.flags)
            # The scorer counts messages from 0; the log names them by their seq.
            reasons = [
                {**reason.as_json(), "message": seqs[reason.index]}
                for reason in assessment.reasons[-_MAX_REASONS_LOGGED:]
            ]
            self._log_safety(
                session,
                slot=None,
                kind="risk",
                detail={
                    "score": round(assessment.score, 1),
                    "level": assessment.level,
                    "flags": list(assessment.flags),
                    "reasons": reasons,
                    "review": decision.review,
                    "preserve": decision.preserve,
                    "end_chat": decision.end_chat and self._end_chats,
                },
                preserve=decision.preserve,
            )
            log.info(
                "session %s: risk %s (%s)", session.id, assessment.level, ",".join(assessment.flags)
            )
        if decision.notify is not None:
            notice = encode("safety", message=decision.notify, flags=list(assessment.flags))
            for sender in decision.notify_senders:
                slot = int(sender)
                if slot not in session.notified:
                    session.notified.add(slot)
                    self._send(session.clients[slot], notice)
        if decision.end_chat and self._end_chats and not session.ended:
            self._end_session(session, reason="safety", by=None)

    def _log_safety(
        self,
        session: ChatSession,
        *,
        slot: int | None,
        kind: str,
        detail: dict[str, object],
        preserve: bool = False,
    ) -> None:
        try:
            done = self._log.safety_event(
                session_id=session.id,
                slot=slot,
                at=self._clock.now_ms(),
                kind=kind,
                detail=detail,
                preserve=preserve,
            )
        except (StoreError, VaultError) as exc:
            log.error("safety event of session %s not recorded: %s", session.id, exc)
            return
        done.add_done_callback(partial(_check_recorded, session.id))

    def _on_stop(self, client: Client) -> None:
        if client.state is State.IDLE:
            raise ProtocolError("not_joined", "nothing to stop")
        reason = "stopped" if client.state is State.CHATTING else "cancelled"
        self._leave(client, reason="stopped")
        self._send(client, encode("ended", reason=reason))

    async def _on_report(
        self, client: Client, reason: str, comment: str | None, chat: str | None
    ) -> None:
        candidates = (client.session, self._recent_session(client))
        session = next((s for s in candidates if s is not None and chat in (None, s.id)), None)
        if session is None:
            # Naming the chat (from `matched`) keeps a report sent just after `next` from
            # landing on the new stranger.
            raise ProtocolError("nothing_to_report", "there is no such chat to report")
        slot = session.slot_of(client)
        if slot in session.reported_by:
            raise ProtocolError("already_reported", "you already reported this chat")
        session.reported_by.add(slot)
        try:
            await self._log.report(
                session_id=session.id,
                reporter_slot=slot,
                reason=reason,
                comment=comment,
                created_at=self._clock.now_ms(),
            )
        except (StoreError, VaultError):
            session.reported_by.discard(slot)
            raise ProtocolError(
                "log_unavailable", "your report could not be recorded; try again"
            ) from None
        reported = session.peer_of(client)
        if reported.block_key != client.block_key:
            self._blocked.add(frozenset((client.block_key, reported.block_key)))
        log.info("session %s reported by slot %d (%s)", session.id, slot, reason)
        self._send(client, encode("reported"))

    def _recent_session(self, client: Client) -> ChatSession | None:
        session = client.last_session
        now = asyncio.get_running_loop().time()
        if session is None or now - session.ended_at_loop > self._settings.report_window:
            return None
        return session

    # -- pairing and sessions --------------------------------------------------------------

    def _can_pair(self, a: Client, b: Client) -> bool:
        return a is not b and frozenset((a.block_key, b.block_key)) not in self._blocked

    async def _join(
        self, client: Client, interests: tuple[str, ...], *, announce: bool = True
    ) -> None:
        client.interests = interests
        client.state = State.WAITING
        if announce:
            self._send(client, encode("waiting", interests=list(interests)))
        match = self._matchmaker.join(client, interests)
        if match is not None:
            await self._start_session(match)
        elif interests:
            loop = asyncio.get_running_loop()
            client.fallback = loop.call_later(
                self._settings.interest_fallback, self._fall_back, client
            )

    def _fall_back(self, client: Client) -> None:
        client.fallback = None
        match = self._matchmaker.fall_back(client)
        if match is not None:
            self._spawn(self._start_session(match))

    async def _start_session(self, match: Match[Client]) -> None:
        """Record the new chat, then announce it; until then both are still waiting."""
        first, second = match.first, match.second
        session = ChatSession(
            first=first, second=second, started_at=self._clock.now_ms(), interests=match.shared
        )
        if self._risk is not None:
            self._scored[session.id] = session
        for client in session.clients:
            client.cancel_fallback()
            client.matching = session
        try:
            await self._log.session_started(
                session_id=session.id,
                started_at=session.started_at,
                interests=session.interests,
                addresses=(first.address, second.address),
                pseudonyms=(first.pseudonym, second.pseudonym),
                block_keys=(first.block_key, second.block_key),
                receipts=(session.receipts[0][1], session.receipts[1][1]),
            )
        except (StoreError, VaultError):
            log.error("session %s could not be recorded; not starting it", session.id)
            for client in session.clients:
                if client.matching is session:
                    client.matching, client.state = None, State.IDLE
                    self._send(
                        client,
                        _error_frame(
                            "log_unavailable", "the chat could not be recorded; try again"
                        ),
                    )
            return
        stayed = [c for c in session.clients if c.matching is session and not c.closing]
        if len(stayed) < 2:
            # Someone left before they ever saw the stranger: no chat took place. The log
            # closes the record; whoever stayed goes back to the queue as if nothing happened.
            left = next(c for c in session.clients if c not in stayed)
            self._spawn(self._record_end(session, reason="cancelled", by=session.slot_of(left)))
            for client in stayed:
                client.matching = None
                await self._join(client, client.interests, announce=False)
            return
        for client in session.clients:
            client.matching, client.state, client.session = None, State.CHATTING, session
        self._sessions.add(session)
        log.info("session %s started %s %s", session.id, _who(first), _who(second))
        for slot, client in enumerate(session.clients):
            self._send(
                client,
                encode(
                    "matched",
                    chat=session.id,
                    interests=list(session.interests),
                    receipt=session.receipts[slot][0],
                ),
            )

    def _leave(self, client: Client, *, reason: str) -> None:
        """Take ``client`` out of the queue or their chat; they are idle afterwards."""
        client.cancel_fallback()
        if client.state is State.WAITING:
            self._matchmaker.leave(client)
            client.matching = None  # a chat being set up for them will not start
        elif client.session is not None:
            self._end_session(client.session, reason=reason, by=client)
        client.state = State.IDLE

    def _end_session(self, session: ChatSession, *, reason: str, by: Client | None) -> None:
        if session.ended:
            return
        for client in session.clients:
            self._settle_warning(client, "left")
        self._release(session)
        # The server ending a chat for safety tells both people so; otherwise the stranger
        # of whoever ended it learns they left.
        frame = "ended" if reason == "safety" else "stranger_left"
        for client in session.clients:
            if client is not by:
                self._send(client, encode(frame, reason=reason))
        log.info("session %s ended: %s", session.id, reason)
        self._spawn(
            self._record_end(session, reason=reason, by=None if by is None else session.slot_of(by))
        )

    def _release(self, session: ChatSession) -> None:
        if self._risk is not None and not session.ended:
            self._risk.forget(session.id)
        session.ended = True
        session.ended_at_loop = asyncio.get_running_loop().time()
        self._sessions.discard(session)
        for client in session.clients:
            if client.session is session:
                client.session = None
                client.state = State.IDLE
                client.last_session = session

    async def _record_end(self, session: ChatSession, *, reason: str, by: int | None) -> None:
        try:
            await self._log.session_ended(
                session_id=session.id, ended_at=self._clock.now_ms(), reason=reason, ended_by=by
            )
        except (StoreError, VaultError) as exc:
            log.error("end of session %s could not be recorded: %s", session.id, exc)

    # -- heartbeats ------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        # Each connection is pinged on its own phase of the interval (see ``serve``), and the
        # loop wakes _HEARTBEAT_PHASES times an interval to ping whoever is due: pinging
        # everyone at once (and taking every pong at once) stalled every chat for tens of
        # milliseconds at a thousand connections (bench/relay.py).
        ping = encode("ping")
        loop = asyncio.get_running_loop()
        interval = self._settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval / _HEARTBEAT_PHASES)
            now = loop.time()
            for client in list(self._clients):
                if client.closing:
                    continue
                if now - client.last_seen > self._settings.heartbeat_timeout:
                    log.info("closing %s: heartbeat timeout", _who(client))
                    self._close(
                        client, CLOSE_HEARTBEAT, "heartbeat timeout", leave_reason="timeout"
                    )
                elif now >= client.next_ping:
                    client.next_ping = now + interval
                    self._send(client, ping)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


_NOT_LOGGED = "your message could not be recorded, so it was not sent"
_NOT_DELIVERED = "the stranger left before your message reached them"


def _error_frame(code: str, message: str, *, in_reply_to: str | None = None) -> str:
    reply = {"in_reply_to": in_reply_to} if in_reply_to else {}
    return encode("error", code=code, message=message, **reply)


def _check_recorded(session_id: str, done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("safety event of session %s not recorded: %s", session_id, done.exception())


def _who(client: Client) -> str:
    return f"ip:{client.pseudonym[:12]}"
