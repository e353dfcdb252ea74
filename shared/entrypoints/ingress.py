"""Ingress timers: one for contacts, one for all custom tables (they share the budget fairly)."""

from __future__ import annotations

import azure.functions as func

from shared.flows.ingress import INGRESS, tables_to_sync
from shared.wiring import services

bp = func.Blueprint()


def _run(contacts: bool, invocation_id: str) -> None:
    svc = services()
    INGRESS.run(svc, [t.name for t in tables_to_sync(svc.config, contacts=contacts)], invocation_id=invocation_id)


@bp.timer_trigger(schedule="%INGRESS_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def ingress_contacts(timer: func.TimerRequest, context: func.Context) -> None:
    _run(contacts=True, invocation_id=context.invocation_id)


@bp.timer_trigger(schedule="%INGRESS_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def ingress_custom_tables(timer: func.TimerRequest, context: func.Context) -> None:
    _run(contacts=False, invocation_id=context.invocation_id)
