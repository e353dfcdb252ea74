"""The Function App: one Blueprint per flow, no business logic here."""

import azure.functions as func

from shared.entrypoints import ingress
from shared.telemetry import configure_logging

configure_logging()  # once per worker process, before any function runs

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(ingress.bp)
