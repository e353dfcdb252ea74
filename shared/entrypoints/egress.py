"""Egress timer: Campaign's email events from its SFTP export onto the Dynamics contact timeline."""

from __future__ import annotations

import azure.functions as func

from shared.flows.egress import EGRESS
from shared.wiring import services

bp = func.Blueprint()


@bp.timer_trigger(schedule="%EGRESS_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def egress_events(timer: func.TimerRequest, context: func.Context) -> None:
    svc = services()
    EGRESS.run(svc, invocation_id=context.invocation_id)  # no scope when egress is off: nothing runs
