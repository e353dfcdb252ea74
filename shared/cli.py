"""Operator CLI: the same flow functions the timers call, plus status, replay and dead letters.

    python -m shared.cli [--settings local.settings.json] validate
    python -m shared.cli [--settings ...] run ingress [--table NAME]
    python -m shared.cli [--settings ...] status
    python -m shared.cli [--settings ...] replay TABLE
    python -m shared.cli [--settings ...] deadletters [--table NAME] [--drop RECORD_ID]

Settings come from the environment; --settings adds the `Values` of a local.settings.json beneath it.
Exit codes: 0 ok, 1 a run failed, 2 configuration problems.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import pathlib
import sys
from collections.abc import Sequence

from shared.config.errors import ConfigError
from shared.flows.ingress import FLOW as INGRESS
from shared.flows.ingress_run import run_ingress
from shared.settings import read_local_settings
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.runs import RunLog
from shared.wiring import Services, build_services, load_configuration


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=pathlib.Path, help="a local.settings.json whose Values to use")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="check the app settings and the sync configuration; writes nothing")
    run = sub.add_parser("run", help="run a flow now")
    run.add_argument("flow", choices=[INGRESS])
    run.add_argument("--table", help="only this mapping (by name)")
    sub.add_parser("status", help="checkpoints, last runs and dead-letter counts per table")
    replay = sub.add_parser("replay", help="the next run reloads the whole table and rewrites every record")
    replay.add_argument("table")
    letters = sub.add_parser("deadletters", help="list dead letters (ids and reasons only)")
    letters.add_argument("--table")
    letters.add_argument("--drop", metavar="RECORD_ID", help="forget one dead letter (with --table)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("sync").setLevel(logging.INFO)  # our own events; the SDKs' request logs stay quiet
    logging.getLogger("sync.run").setLevel(logging.WARNING)  # summaries are printed below, not logged twice
    env = dict(os.environ)
    if args.settings:
        env = {**read_local_settings(args.settings), **env}
    try:
        svc = build_services(*load_configuration(env))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2

    if args.command == "validate":
        print(f"OK: settings valid; {len(svc.config.tables)} table mapping(s): "
              + ", ".join(t.name for t in svc.config.tables))  # fmt: skip
        return 0
    if args.command == "run":
        return _run(svc, args.table)
    if args.command == "status":
        _print(_status(svc))
        return 0
    if args.command == "replay":
        svc.config.table(args.table)  # unknown names fail loudly
        CheckpointStore(svc.state.table("checkpoints")).request_reset(INGRESS, args.table)
        print(f"replay requested for {args.table}: the next ingress run reloads it")
        return 0
    letters_store = DeadLetterStore(svc.state.table("deadletters"))
    if args.drop:
        if not args.table:
            print("--drop needs --table", file=sys.stderr)
            return 2
        letters_store.resolve(INGRESS, args.table, args.drop)
        return 0
    _print([dataclasses.asdict(d) for d in letters_store.entries(INGRESS, args.table)])
    return 0


def _run(svc: Services, table_name: str | None) -> int:
    tables = [svc.config.table(table_name)] if table_name else [t for t in svc.config.tables if t.enabled]
    contacts_first = sorted(tables, key=lambda t: not t.is_profile)
    summaries = run_ingress(contacts_first, svc.ingress_deps(), svc.state,
                            budget_seconds=svc.settings.run.time_budget_seconds)  # fmt: skip
    _print([dataclasses.asdict(s) for s in summaries])
    return 1 if any(s.outcome == "failed" for s in summaries) else 0


def _status(svc: Services) -> list[dict[str, object]]:
    checkpoints = CheckpointStore(svc.state.table("checkpoints"))
    runs = RunLog(svc.state.table("runs"))
    letters = DeadLetterStore(svc.state.table("deadletters"))
    out: list[dict[str, object]] = []
    for table in svc.config.tables:
        cp = checkpoints.load(INGRESS, table.name)
        last = runs.latest(INGRESS, table.name, limit=1)
        out.append(
            {
                "flow": INGRESS,
                "table": table.name,
                "phase": cp.phase,
                "generation": cp.generation,
                "pages_in_current_read": cp.pages,
                "replay_requested": cp.reset_requested,
                "last_checkpoint": {"outcome": cp.last_outcome, "run_started_at": cp.last_run_at},
                "dead_letters": len(letters.entries(INGRESS, table.name)),
                "last_run": last[0] if last else None,
            }
        )
    return out


def _print(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


if __name__ == "__main__":
    sys.exit(main())
