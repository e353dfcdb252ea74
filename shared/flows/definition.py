"""What the registry knows of a flow: its name, its scopes, how to build a run of each, where its
Azure Functions live. The function app, the operator CLI and the wiring read only this."""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shared.config.model import SyncConfig
from shared.flows.runner import FlowBody, RunSummary, run_scopes

if TYPE_CHECKING:
    import azure.functions as func

    from shared.wiring import Services


@dataclasses.dataclass(frozen=True)
class Check:
    """One thing a pre-flight looked at on the live systems, and what is wrong with it (nothing: fine)."""

    subject: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class UnknownScope(KeyError):
    def __init__(self, flow: str, scope: str, known: Sequence[str]) -> None:
        super().__init__(f"flow '{flow}' has no scope '{scope}' (has: {', '.join(known) or 'none'})")


@dataclasses.dataclass(frozen=True)
class FlowDefinition:
    name: str
    description: str
    cursor_type: type[Any]  # what its checkpoints hold (status decodes it)
    scopes: Callable[[SyncConfig], list[str]]  # the scopes it runs, in order
    bodies: Callable[[Services, Sequence[str]], list[tuple[str, FlowBody]]]
    blueprint: str  # module path of its Azure Functions Blueprint (attribute `bp`)
    # Optional: checks of the live systems for these scopes (`validate`), and what waits for a scope (`status`).
    preflight: Callable[[Services, Sequence[str]], list[Check]] | None = None
    backlog: Callable[[Services, str], str] | None = None

    def run(
        self,
        services: Services,
        scopes: Sequence[str] | None = None,
        *,
        budget_seconds: float | None = None,
        invocation_id: str = "",
        dry_run: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> list[RunSummary]:
        """Run the given scopes (default: all), sharing one time budget fairly."""
        names = self.check_scopes(services.config, scopes)
        budget = services.settings.run.time_budget_seconds if budget_seconds is None else budget_seconds
        return run_scopes(self.name, self.bodies(services, names), state=services.state, budget_seconds=budget,
                          invocation_id=invocation_id, dry_run=dry_run, monotonic=monotonic)  # fmt: skip

    def check_scopes(self, config: SyncConfig, scopes: Sequence[str] | None) -> list[str]:
        known = self.scopes(config)
        if scopes is None:
            return known
        for scope in scopes:
            if scope not in known:
                raise UnknownScope(self.name, scope, known)
        return list(scopes)

    def functions(self) -> func.Blueprint:
        return importlib.import_module(self.blueprint).bp
