"""The whole local stack for end-to-end tests: Dataverse sandbox, Campaign sandbox, Azurite, wired
through the real settings and `build_services`, with retry waits made instant."""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from sandbox.settings import sandbox_settings
from shared.config.model import TableMapping
from shared.flows.ingress import INGRESS
from shared.flows.runner import RunSummary
from shared.settings import load_settings
from shared.wiring import Services, build_services
from tests.e2e.oracle import expected_records
from tests.security.leaks import LeakGuard

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((REPO / "config" / "sync.example.json").read_text())


def example_config(**table_overrides: dict[str, Any]) -> dict[str, Any]:
    """The shipped example, with per-table overrides merged in (e.g. contacts={"filters": {...}})."""
    config = copy.deepcopy(EXAMPLE)
    for table in config["ingress"]["tables"]:
        table.update(copy.deepcopy(table_overrides.get(table["name"], {})))
    return config


def stack_env(dv: DataverseSandbox, acs: CampaignSandbox, storage: str, prefix: str, config: Mapping[str, Any],
              **extra: str) -> dict[str, str]:  # fmt: skip
    return {
        **sandbox_settings(dv, acs, storage),
        "DATAVERSE_PAGE_SIZE": "500",
        "STATE_TABLE_PREFIX": prefix,
        "STATE_CONTAINER": prefix,
        "SYNC_CONFIG": json.dumps(config),
        **extra,
    }


@pytest.fixture(autouse=True)
def no_secret_or_personal_data_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every end-to-end test: no secret (any app setting wrapped in Secret, the sandboxes' client secrets) and no
    personal value of the sandboxes' rows in a log record (DEBUG), a run summary or a dead-letter reason."""
    guard = LeakGuard()
    guard.start()
    try:
        yield
    finally:
        guard.stop()
    leaks = guard.check(request.node.funcargs)
    if leaks:
        pytest.fail("leaked: " + "; ".join(f"{leak.kind} {leak.value!r} in {leak.where}" for leak in leaks[:10]))


@dataclasses.dataclass
class Stack:
    dv: DataverseSandbox
    acs: CampaignSandbox
    svc: Services
    waits: list[float]
    document: Mapping[str, Any]  # the mapping document as the test wrote it (the oracle reads this)
    env: Mapping[str, str]  # the app settings the stack runs with (a subprocess can use them too)
    # Called with each retry wait, after the clocks moved: a test's way to act while a run is inside a request
    # (stop a server, start a second run) at a point it chose by injecting a 429.
    on_wait: list[Callable[[float], None]] = dataclasses.field(default_factory=list)

    def run(self, *names: str, budget: float = 600.0, monotonic: Callable[[], float] = time.monotonic,
            dry_run: bool = False) -> list[RunSummary]:  # fmt: skip
        scopes = [t.name for t in self.svc.config.tables if t.enabled and (not names or t.name in names)]
        return INGRESS.run(self.svc, scopes, budget_seconds=budget, monotonic=monotonic, dry_run=dry_run)

    def table(self, name: str) -> TableMapping:
        return self.svc.config.table(name)

    def campaign_rows(self, table: TableMapping) -> list[dict[str, Any]]:
        return self.acs.rows(table.resource)

    def expected(self, table: TableMapping) -> dict[str, dict[str, Any]]:
        """What Campaign should hold: every Dynamics row passing the filters, shaped by the test's oracle."""
        return expected_records(self.document, table.name, self.dv.rows(table.entity_set))

    def assert_campaign_matches(self, table: TableMapping, *, fields: Callable[[str], bool] = lambda _: True,
                                allow_extra: bool = False) -> None:  # fmt: skip
        rows = self.campaign_rows(table)
        keys = [r[table.key_attribute] for r in rows]
        assert len(keys) == len(set(keys)), "duplicate records in Campaign"
        actual = {r[table.key_attribute]: r for r in rows}
        expected = self.expected(table)
        if allow_extra:
            assert set(expected) <= set(actual)
        else:
            assert set(actual) == set(expected)
        mismatches = [
            (key, name)
            for key, payload in expected.items()
            for name, value in payload.items()
            if fields(name) and not _same(value, actual[key].get(name))
        ]
        assert mismatches == [], mismatches[:5]


def make_stack(dv: DataverseSandbox, acs: CampaignSandbox, storage: str, prefix: str,
               config: Mapping[str, Any] | None = None, **extra: str) -> Stack:  # fmt: skip
    waits: list[float] = []
    hooks: list[Callable[[float], None]] = []

    def sleep(seconds: float) -> None:
        # Waiting is virtual: both sandboxes' clocks move on instead, so throttling windows and
        # Retry-After behave as in real time without the test waiting.
        waits.append(seconds)
        dv.advance_clock(seconds)
        acs.advance_clock(seconds)
        for hook in list(hooks):
            hook(seconds)

    env = stack_env(dv, acs, storage, prefix, config or EXAMPLE, **extra)
    return Stack(dv, acs, build_services(load_settings(env), sleep=sleep), waits, config or EXAMPLE, env, hooks)


@pytest.fixture
def stack_factory(
    dataverse_sandbox: DataverseSandbox, campaign_sandbox: CampaignSandbox, storage_connection_string: str,
    table_prefix: str,
) -> Callable[..., Stack]:  # fmt: skip
    def factory(config: Mapping[str, Any] | None = None, **extra: str) -> Stack:
        return make_stack(dataverse_sandbox, campaign_sandbox, storage_connection_string, table_prefix, config, **extra)

    return factory


def _same(expected: Any, actual: Any) -> bool:
    # Campaign renders an empty string or date as "": that is how a null we sent reads back.
    return expected == actual or (expected is None and actual == "")
