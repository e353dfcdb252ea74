"""The Function App: every registered flow's Blueprint, no business logic here."""

import azure.functions as func

from shared.registry import FLOWS
from shared.telemetry import configure_logging

configure_logging()  # once per worker process, before any function runs

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for _flow in FLOWS.values():
    app.register_functions(_flow.functions())
