"""Opt-out functions: the Dataverse webhook (HTTP), its queue's processor (queue trigger) and the opt-out timer.

- `optout_webhook`: POST /api/optout/webhook, auth level FUNCTION (register the webhook with Dataverse's
  WebhookKey authentication: it sends the function key as `?code=`). Queues one message, answers 202.
- `optout_queue`: the queue `%OPTOUT_QUEUE%` on the connection OPTOUT_QUEUE_STORAGE (a connection string
  locally; `OPTOUT_QUEUE_STORAGE__queueServiceUri` + `__credential=managedidentity` in Azure). Retries and the
  poison queue are the host's (host.json extensions.queues).
- `optout_timer`: `%OPTOUT_SCHEDULE%`: the flow's scopes for the mode (webhook dead-letter retries, the
  Campaign opt-out file).
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.flows.optout import OPTOUT
from shared.flows.optout_deps import optout_deps
from shared.flows.optout_webhook import Processor, WebhookRequest, receiver
from shared.wiring import services

log = logging.getLogger("sync.optout")

bp = func.Blueprint()
QUEUE_CONNECTION = "OPTOUT_QUEUE_STORAGE"


def handle_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """The HTTP function's body as a plain function (tests call it directly)."""
    answer = receiver(optout_deps(services())).handle(WebhookRequest(req.method, dict(req.headers), req.get_body()))
    return func.HttpResponse(json.dumps(answer.body), status_code=answer.status, mimetype="application/json")


def handle_message(msg: func.QueueMessage) -> None:
    counts = Processor(optout_deps(services())).process(msg.get_body().decode("utf-8"), msg.dequeue_count or 1)
    log.info("optout.message id=%s dequeue=%s counts=%s", msg.id, msg.dequeue_count,
             json.dumps(dict(counts), sort_keys=True))  # fmt: skip


@bp.route(route="optout/webhook", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def optout_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return handle_webhook(req)


@bp.queue_trigger(arg_name="msg", queue_name="%OPTOUT_QUEUE%", connection=QUEUE_CONNECTION)
def optout_queue(msg: func.QueueMessage) -> None:
    handle_message(msg)


@bp.timer_trigger(schedule="%OPTOUT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def optout_timer(timer: func.TimerRequest, context: func.Context) -> None:
    OPTOUT.run(services(), invocation_id=context.invocation_id)
