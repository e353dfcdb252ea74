"""Initial-transfer timer: moves every table's file transfer on (export, upload, signal, follow the import)."""

from __future__ import annotations

import azure.functions as func

from shared.flows.initial_transfer import INITIAL_TRANSFER
from shared.wiring import services

bp = func.Blueprint()


@bp.timer_trigger(schedule="%INITIAL_TRANSFER_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def initial_transfer(timer: func.TimerRequest, context: func.Context) -> None:
    INITIAL_TRANSFER.run(services(), invocation_id=context.invocation_id)
