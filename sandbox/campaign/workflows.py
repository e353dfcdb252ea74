"""Workflow executions with External signal activities (api/using/triggering-a-signal-activity.md).

- `GET /workflow/execution/<id>` returns `activities.activity.<signal>.trigger.href`, of the form
  `.../workflow/execution/<PKey>/activities/activity/<PKey>/trigger`.
- `POST` on it with `{"source": ..., "parameters": {...}}`: `source` is mandatory; every parameter
  must be declared in the activity with a matching type (string, number, boolean, datetime), else
  the documented RST-360011 "'x' parameter isn't defined in signal activity" error; payload <= 64 KB.
- The workflow must already be started, and one activity cannot be triggered more often than every
  10 minutes (window configurable here). Inside the window Adobe's SDK sees a non-JSON text reply;
  its status is undocumented [U]: the sandbox answers 400 text/plain.
- Commands (`POST .../commands {"method": start|pause|resume|stop}`, controlling-a-workflow.md).
  The execution's status field is undocumented [U]: the sandbox calls it `state`.
Every trigger attempt is recorded, refused ones with their reason.

A workflow whose config has an `import` block is the initial-transfer import (imports.py): an accepted trigger
moves it to `running`; it ends `finished` or `error` (with `lastError`, a field name chosen by the sandbox [U]),
and only `start` makes it `started` (triggerable) again. While it runs, `stop` abandons the import (nothing is
written) and the other commands are refused.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping
from typing import Any

from sandbox.campaign import errors
from sandbox.campaign.imports import ImportJob, ImportSpec
from sandbox.campaign.schema import format_datetime, parse_datetime

PARAMETER_TYPES = ("string", "number", "boolean", "datetime")
MAX_PAYLOAD = 64 * 1024
_COMMANDS = {"start": "started", "pause": "paused", "resume": "started", "stop": "stopped"}


@dataclasses.dataclass
class Signal:
    name: str
    pkey: str
    parameters: dict[str, str]  # name -> type
    last_accepted: float | None = None


@dataclasses.dataclass
class Workflow:
    id: str
    pkey: str
    label: str
    state: str
    signals: dict[str, Signal]
    triggers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    import_spec: ImportSpec | None = None
    last_error: str | None = None
    job: ImportJob | None = None

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> Workflow:
        signals = {}
        for name, params in dict(raw.get("signals") or {}).items():
            for pname, ptype in dict(params).items():
                if ptype not in PARAMETER_TYPES:
                    raise ValueError(f"signal {name!r}: parameter {pname!r} has unknown type {ptype!r}")
            signals[name] = Signal(name, "@" + secrets.token_urlsafe(18), dict(params))
        return cls(
            id=str(raw["id"]),
            pkey="@" + secrets.token_urlsafe(18),
            label=str(raw.get("label", raw["id"])),
            state=str(raw.get("state", "started")),
            signals=signals,
            import_spec=ImportSpec.from_config(raw["import"]) if raw.get("import") else None,
        )

    def render(self, base: str) -> dict[str, Any]:
        activities = {
            name: {
                "PKey": sig.pkey,
                "name": name,
                "type": "signal",
                "trigger": {"href": f"{base}workflow/execution/{self.pkey}/activities/activity/{sig.pkey}/trigger"},
            }
            for name, sig in self.signals.items()
        }
        rendered: dict[str, Any] = {
            "PKey": self.pkey,
            "internalName": self.id,
            "label": self.label,
            "state": self.state,
            "href": f"{base}workflow/execution/{self.pkey}",
            "activities": {"activity": activities},
        }
        if self.state == "error" and self.last_error:
            rendered["lastError"] = self.last_error
        return rendered

    def command(self, body: Any) -> None:
        method = body.get("method") if isinstance(body, Mapping) else None
        if method not in _COMMANDS:
            raise errors.bad_request("The 'method' of a workflow command must be start, pause, resume or stop.")
        if self.state == "running":
            if method != "stop":
                raise errors.bad_request(f"The workflow '{self.id}' is running an import: only 'stop' is possible.")
            if self.job is not None and not self.job.settled:
                self.job.settled = True
                self.job.run["state"] = "stopped"
                self.job.run["error"] = "stopped by a command before the import ended: nothing was written"
        self.state = _COMMANDS[method]
        if self.state == "started":
            self.last_error = None

    def trigger(self, activity_pkey: str, raw_body: bytes, body: Any, now: float, window: float) -> dict[str, Any]:
        signal = next((s for s in self.signals.values() if s.pkey == activity_pkey), None)
        if signal is None:
            raise errors.invalid_pkey(activity_pkey)
        record: dict[str, Any] = {"activity": signal.name, "at": format_datetime(now), "accepted": False}
        self.triggers.append(record)
        if isinstance(body, Mapping):
            record["source"] = body.get("source")
            record["parameters"] = body.get("parameters")
        try:
            self._check(signal, raw_body, body, now, window)
        except errors.SandboxError as refusal:
            record["reason"] = _reason(refusal)
            raise
        record["accepted"] = True
        signal.last_accepted = now
        event = "@" + secrets.token_urlsafe(18)
        record["PKey"] = event
        return {"PKey": event, "activity": signal.name, "source": body["source"]}

    def _check(self, signal: Signal, raw_body: bytes, body: Any, now: float, window: float) -> None:
        if len(raw_body) > MAX_PAYLOAD:
            raise errors.bad_request("The signal payload exceeds 64 KB.")
        if self.state != "started":
            raise errors.bad_request(
                f"The workflow '{self.id}' is not started: its External signal cannot be triggered."
            )
        if not isinstance(body, Mapping) or not isinstance(body.get("source"), str) or not body["source"]:
            raise errors.bad_request("The 'source' parameter is mandatory.")
        params = body.get("parameters", {})
        if not isinstance(params, Mapping):
            raise errors.bad_request("'parameters' must be an object.")
        for name, value in params.items():
            declared = signal.parameters.get(name)
            if declared is None:
                raise errors.bad_request(
                    f"'{name}' parameter isn't defined in signal activity.",
                    "XTK-170006 Unable to parse expression 'HandleTrigger(@name, $(source), $({parameters}))'.",
                    "RST-360000 Error while assessing 'HandleTrigger(@name, $(source), $({parameters}))' expression "
                    "('xtk:workflow:execution/activities/signal/trigger' resource)",
                )
            if not _fits(declared, value):
                raise errors.bad_request(f"The value of the '{name}' parameter is not valid ({declared} expected).")
        if signal.last_accepted is not None and now - signal.last_accepted < window:
            raise errors.SandboxError(
                400,
                f"{errors.RST_GENERIC}\nThe '{signal.name}' External signal activity of workflow '{self.id}' "
                "cannot be triggered more often than every 10 minutes.",
                content_type="text/plain; charset=utf-8",
            )


def _fits(declared: str, value: Any) -> bool:
    if declared == "string":
        return isinstance(value, str)
    if declared == "number":
        if isinstance(value, str):  # the doc sample sends every value as a string
            try:
                float(value)
            except ValueError:
                return False
            return True
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if declared == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if declared == "datetime":
        return isinstance(value, str) and parse_datetime(value) is not None
    return False


def _reason(refusal: errors.SandboxError) -> str:
    body = refusal.body
    text = body.get("message", "") if isinstance(body, Mapping) else str(body)
    lines = str(text).splitlines()
    return lines[1] if len(lines) > 1 else (lines[0] if lines else json.dumps(body))
