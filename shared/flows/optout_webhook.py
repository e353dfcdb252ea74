"""Dynamics -> Campaign in seconds: the webhook receiver, the queue processor, and the timer's retries.

Receiver (HTTP): authenticate (the Functions key is checked by the host; the optional shared header secret
here, in constant time) -> validate the RemoteExecutionContext -> one queue message -> 202. It never calls
Campaign: Dataverse gives a webhook 60 seconds and retries only 502/503/504 once, so that budget must not
decide whether an opt-out is lost. A queue that cannot be written answers 503 (Dataverse's one retry).

Processor (queue trigger): decode -> skip the connector's own writes (echo) -> read the contact when the body
was not enough -> in bidirectional mode read the Campaign profile -> decide per attribute against the
newest-applied record -> write -> save -> audit. Older or equal changes write nothing, so duplicated,
replayed and reordered deliveries converge. An error that is the record's (a 400 from Campaign) is
dead-lettered at once; any other error is raised so the host retries the message, and on its last attempt
(host.json maxDequeueCount) it is mirrored into the dead letters before the host moves it to the poison queue.
The opt-out timer retries those dead letters from the contact's current state.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from shared.config.model import OptOutMode
from shared.core.errors import RecordError
from shared.core.optout import WEBHOOK, Decision, Mark, Rule, Side, Verdict, Winner, decide_to_campaign, row_mark
from shared.core.webhook import FETCH, Ignored, MessageError, OptOutMessage, Rejected, decode_message, parse_webhook
from shared.flows.counts import Count
from shared.flows.executor import Applied, RecordExecutor, record_failure
from shared.flows.optout_apply import ContactResult, OptOutWriter, campaign_side
from shared.flows.optout_deps import FLOW, TO_CAMPAIGN_MODES, WEBHOOKS, OptOutCursor, OptOutDeps, max_dequeue_count
from shared.flows.runner import FlowBody, RunContext
from shared.http import ApiError

log = logging.getLogger("sync.optout.webhook")

SECRET_HEADER = "x-optout-webhook-secret"
MAX_BODY_BYTES = 1024 * 1024  # Dataverse sends at most 256 KB; anything far larger is not Dataverse


# ------------------------------------------------------------------ receiver


@dataclasses.dataclass(frozen=True)
class WebhookRequest:
    method: str
    headers: Mapping[str, str]  # any case; looked up lower-case
    body: bytes


@dataclasses.dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


class WebhookReceiver:
    def __init__(self, *, mode: OptOutMode, columns: frozenset[str], send: Callable[[str], str],
                 secret: str | None = None) -> None:  # fmt: skip
        self.mode = mode
        self.columns = columns
        self.send = send
        self.secret = secret.encode() if secret else None

    def handle(self, request: WebhookRequest) -> WebhookAnswer:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if request.method.upper() != "POST":
            return _refuse(405, "only POST")
        if self.secret is not None:
            given = headers.get(SECRET_HEADER, "").encode()
            if not hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(self.secret).digest()):
                return _refuse(401, f"missing or wrong {SECRET_HEADER} header")
        if self.mode not in TO_CAMPAIGN_MODES:
            return WebhookAnswer(200, {"status": "ignored", "reason": f"optOut.mode is {self.mode.value}: Dynamics "
                                                                    "opt-outs are not sent to Campaign"})  # fmt: skip
        content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type not in ("application/json", "text/json"):
            return _refuse(415, "Content-Type must be application/json")
        if len(request.body) > MAX_BODY_BYTES:
            return _refuse(413, f"body over {MAX_BODY_BYTES} bytes")
        parsed = parse_webhook(request.body, headers, columns=self.columns)
        if isinstance(parsed, Rejected):
            log.warning("optout.webhook_rejected status=%d reason=%s", parsed.status, parsed.reason)
            return _refuse(parsed.status, parsed.reason)
        if isinstance(parsed, Ignored):
            return WebhookAnswer(200, {"status": "ignored", "reason": parsed.reason})
        try:
            message_id = self.send(parsed.to_json())
        except Exception as exc:  # the queue is unreachable: 503 gets Dataverse's one retry
            log.error("optout.queue_unavailable error=%s", type(exc).__name__)
            return _refuse(503, "the opt-out queue cannot be written now")
        return WebhookAnswer(202, {"status": "queued", "kind": parsed.kind, "contact": parsed.contact,
                                   "message": message_id})  # fmt: skip


def _refuse(status: int, reason: str) -> WebhookAnswer:
    return WebhookAnswer(status, {"status": "refused", "reason": reason})


def receiver(deps: OptOutDeps) -> WebhookReceiver:
    secret = deps.settings.optout.webhook_secret
    return WebhookReceiver(mode=deps.mode, columns=deps.columns, send=lambda text: deps.queue().send(text),
                           secret=secret.reveal() if secret else None)  # fmt: skip


# ------------------------------------------------------------------ processor


class Processor:
    def __init__(self, deps: OptOutDeps, *, dry_run: bool = False, max_dequeue: int | None = None) -> None:
        self.deps = deps
        self.writer: OptOutWriter = deps.writer(dry_run=dry_run)
        self.pairs = self.writer.pairs
        self.max_dequeue = max_dequeue if max_dequeue is not None else max_dequeue_count()

    def process(self, text: str, dequeue_count: int = 1) -> collections.Counter[str]:
        """Apply one queue message. Returns the counts; raises what the host must retry."""
        try:
            message = decode_message(text)
        except MessageError as exc:
            key = "message-" + hashlib.sha256(text.encode()).hexdigest()[:16]
            self.deps.dead_letters.record(FLOW, WEBHOOKS, key, f"queue message not applicable: {exc}")
            return collections.Counter({Count.DEAD_LETTERED: 1})
        if self.deps.mode not in TO_CAMPAIGN_MODES:
            return collections.Counter()
        try:
            return self.apply(message)
        except (RecordError, ApiError) as exc:
            reason = record_failure(exc)
            if reason is not None:  # the record's own fault: retrying the message cannot help
                self.deps.dead_letters.record(FLOW, WEBHOOKS, message.contact, reason)
                return collections.Counter({Count.DEAD_LETTERED: 1})
            self._last_attempt(message, dequeue_count, exc)
            raise
        except Exception as exc:
            self._last_attempt(message, dequeue_count, exc)
            raise

    def _last_attempt(self, message: OptOutMessage, dequeue_count: int, exc: BaseException) -> None:
        if dequeue_count >= self.max_dequeue:  # the host moves it to the poison queue next
            reason = exc.describe() if isinstance(exc, ApiError) else type(exc).__name__
            self.deps.dead_letters.record(FLOW, WEBHOOKS, message.contact,
                                          f"poison after {dequeue_count} attempts: {reason}")  # fmt: skip

    def apply(self, message: OptOutMessage) -> collections.Counter[str]:
        counts: collections.Counter[str] = collections.Counter()
        own = self.deps.own_user()
        if message.user is not None and message.user == own:
            counts[Count.OPTOUT_ECHOES] += 1
            self._audit_echo(message)
            return counts
        if message.kind == FETCH or message.modifiedon is None or message.version is None:
            row = self.writer.read_contact(message.contact)
            if row is None:
                return collections.Counter({Count.OPTOUT_CONTACT_MISSING: 1})
            mark = row_mark(row)
            if mark is None:
                raise RecordError("contact read without modifiedon/versionnumber")
            values = {c: bool(row.get(c)) for c in self.pairs.columns if row.get(c) is not None}
        else:
            mark = Mark(message.modifiedon, message.version)
            values = {c: v for c, v in message.values.items() if c in self.pairs.columns}
        return self.apply_values(message.contact, values, mark)

    def apply_values(self, contact: str, values: Mapping[str, bool], mark: Mark) -> collections.Counter[str]:
        sides: dict[str, Side] = {}
        href: str | None = None
        if self.deps.mode is OptOutMode.BIDIRECTIONAL:
            profile = self.writer.profiles.read(contact)
            if profile is None:
                return collections.Counter({Count.OPTOUT_NO_PROFILE: 1})
            href = profile.href or None
            sides = {p.attribute: campaign_side(profile.body, p) for p in self.pairs.items}
        candidates = [(self.pairs.by_column(column), value) for column, value in sorted(values.items())]

        def decide(record: Any) -> list[Decision]:
            return [
                decide_to_campaign(pair.attribute, value, mark, record.get(pair.attribute),
                                   campaign=sides.get(pair.attribute))
                for pair, value in candidates
                if pair
            ]  # fmt: skip

        result: ContactResult = self.writer.carry_out(contact, decide, source=WEBHOOK, href=href)
        return result.counts

    def _audit_echo(self, message: OptOutMessage) -> None:
        if message.modifiedon is None or message.version is None or self.writer.dry_run:
            return
        mark = Mark(message.modifiedon, message.version)
        entries = []
        for column, value in sorted(message.values.items()):
            pair = self.pairs.by_column(column)
            if pair is not None:
                entries.append(Decision(pair.attribute, Verdict.SKIP, value, Rule.ECHO, Winner.AGREE,
                                        Side(value, mark.modifiedon), None, mark))  # fmt: skip
        self.deps.audit.append(self.writer.audit_entries(message.contact, entries, WEBHOOK))


# ------------------------------------------------------------------ the timer's scope


def webhooks_body(deps: OptOutDeps) -> FlowBody:
    """Retry the dead letters of the webhook path from each contact's current state; report the queue backlog."""

    def body(ctx: RunContext) -> bool:
        checkpoint = deps.checkpoints.load(FLOW, WEBHOOKS, OptOutCursor)
        checkpoint.cursor.scope = WEBHOOKS
        ctx.cursor_from = checkpoint.cursor.describe()

        def save(outcome: str) -> None:
            checkpoint.last_outcome, checkpoint.last_run_at = outcome, ctx.started_at
            ctx.cursor_to = checkpoint.cursor.describe()
            if not ctx.dry_run:
                deps.checkpoints.save(checkpoint)

        if checkpoint.reset_requested:
            checkpoint.begin_replay()
            ctx.note("replay: the webhook path has no position to reset; `replay ingress contacts` rewrites every "
                     "contact's opt-outs through the same newest-applied record")  # fmt: skip
        # The backlog first: status shows it even when the retries below stop on an outage.
        queued, poisoned = deps.queue().backlog()
        ctx.counts[Count.OPTOUT_QUEUED] = queued
        ctx.counts[Count.OPTOUT_POISONED] = poisoned
        if poisoned:
            ctx.note(f"{poisoned} message(s) in {deps.queue().poison.queue_name}: their contacts are dead letters "
                     "(deadletters optout --scope webhooks) and are retried from Dynamics by this timer")  # fmt: skip
        checkpoint.cursor.queued, checkpoint.cursor.poisoned = queued, poisoned
        save("partial")
        processor = Processor(deps, dry_run=ctx.dry_run)
        due = deps.dead_letters.due(FLOW, WEBHOOKS, deps.dead_letter_max_attempts)
        contacts = [d.record_id for d in due if not d.record_id.startswith("message-")]
        executor = RecordExecutor(FLOW, WEBHOOKS, deps.dead_letters, ctx, max_parallel=deps.max_parallel)
        lock = threading.Lock()

        def retry(contact: str, _: None) -> Applied[None]:
            counts = processor.apply(OptOutMessage(FETCH, contact, why="dead-letter retry"))
            with lock:
                ctx.counts.update(counts)
            return Applied(Count.READ)

        executor.run([(c, None) for c in contacts], retry, known_letters=contacts,
                     failed_count=Count.DEAD_LETTER_RETRIES_FAILED,
                     succeeded_count=Count.DEAD_LETTER_RETRIES_OK)  # fmt: skip
        save("completed")
        return True

    return body
