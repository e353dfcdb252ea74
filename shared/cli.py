"""Operator CLI: the same flow functions the timers call, plus status, replay and dead letters, for
every registered flow.

    python -m shared.cli [--settings local.settings.json] validate
    python -m shared.cli [--settings ...] run FLOW [--scope NAME ...] [--dry-run]
    python -m shared.cli [--settings ...] status [FLOW]
    python -m shared.cli [--settings ...] replay FLOW SCOPE
    python -m shared.cli [--settings ...] deadletters [FLOW] [--scope NAME] [--drop RECORD_ID | --purge]
    python -m shared.cli [--settings ...] optout why CONTACT_ID [--limit N] [--json]

Settings come from the environment; --settings adds the `Values` of a local.settings.json beneath it
(an environment variable wins over the file). Exit codes: 0 ok, 1 a run failed, 2 configuration problems.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import pathlib
import sys
import time
from collections.abc import Sequence

from shared.config.errors import ConfigError
from shared.core.parse import parse_guid
from shared.flows.definition import FlowDefinition, UnknownScope
from shared.registry import FLOWS
from shared.settings import read_local_settings
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.optout_audit import AuditLog
from shared.state.runs import RunLog
from shared.wiring import Services, build_services, load_configuration


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=pathlib.Path, help="a local.settings.json whose Values to use")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="check the app settings and the sync configuration; writes nothing")
    run = sub.add_parser("run", help="run a flow now")
    run.add_argument("flow", choices=list(FLOWS))
    run.add_argument("--scope", "--table", dest="scopes", action="append", help="only this scope (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="read and decide, write nothing; print the counts")
    status = sub.add_parser("status", help="checkpoints, last runs and dead-letter counts per flow and scope")
    status.add_argument("flow", nargs="?", choices=list(FLOWS))
    replay = sub.add_parser("replay", help="the flow's next run of the scope starts over and rewrites everything")
    replay.add_argument("flow", choices=list(FLOWS))
    replay.add_argument("scope")
    letters = sub.add_parser("deadletters", help="list dead letters (ids and reasons only)")
    letters.add_argument("flow", nargs="?", choices=list(FLOWS))
    letters.add_argument("--scope", "--table", dest="scope")
    action = letters.add_mutually_exclusive_group()
    action.add_argument("--drop", metavar="RECORD_ID", help="forget one dead letter (with FLOW and --scope)")
    action.add_argument("--purge", action="store_true", help="forget every dead letter of FLOW --scope")
    optout = sub.add_parser("optout", help="opt-out sync: why a contact is (not) opted out")
    optout_sub = optout.add_subparsers(dest="optout_command", required=True)
    why = optout_sub.add_parser("why", help="the contact's opt-out decisions, newest first")
    why.add_argument("contact", help="the Dynamics contactid")
    why.add_argument("--limit", type=int, default=50)
    why.add_argument("--json", action="store_true", help="print the audit rows as JSON")
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

    try:
        if args.command == "validate":
            print(f"OK: settings valid; {len(svc.config.tables)} table mapping(s): "
                  + ", ".join(t.name for t in svc.config.tables))  # fmt: skip
            return 0
        if args.command == "run":
            return _run(svc, FLOWS[args.flow], args.scopes, dry_run=args.dry_run)
        if args.command == "status":
            _print(_status(svc, [FLOWS[args.flow]] if args.flow else list(FLOWS.values())))
            return 0
        if args.command == "replay":
            definition = FLOWS[args.flow]
            definition.check_scopes(svc.config, [args.scope])
            CheckpointStore(svc.state.table("checkpoints")).request_reset(definition.name, args.scope)
            print(f"replay requested for {args.flow} {args.scope}: its next run starts over")
            return 0
        if args.command == "optout":
            return _optout_why(svc, args.contact, args.limit, as_json=args.json)
        return _dead_letters(svc, args)
    except UnknownScope as exc:
        print(exc.args[0], file=sys.stderr)
        return 2


def _run(svc: Services, definition: FlowDefinition, scopes: list[str] | None, *, dry_run: bool) -> int:
    summaries = definition.run(svc, scopes, dry_run=dry_run)
    _print([dataclasses.asdict(s) for s in summaries])
    return 1 if any(s.outcome == "failed" for s in summaries) else 0


def _status(svc: Services, definitions: list[FlowDefinition]) -> list[dict[str, object]]:
    checkpoints = CheckpointStore(svc.state.table("checkpoints"))
    runs = RunLog(svc.state.table("runs"))
    letters = DeadLetterStore(svc.state.table("deadletters"))
    out: list[dict[str, object]] = []
    for definition in definitions:
        for scope in definition.scopes(svc.config):
            stored = checkpoints.stored(definition.name, scope)
            cursor = definition.cursor_type.from_state(stored.cursor if stored else {})
            last = runs.latest(definition.name, scope, limit=1)
            out.append(
                {
                    "flow": definition.name,
                    "scope": scope,
                    "cursor": cursor.describe(),
                    "generation": stored.generation if stored else 0,
                    "replay_requested": stored.reset_requested if stored else False,
                    "last_checkpoint": {"outcome": stored.last_outcome, "run_started_at": stored.last_run_at}
                    if stored
                    else None,
                    "dead_letters": len(letters.entries(definition.name, scope)),
                    "last_run": last[0] if last else None,
                }
            )
    return out


def _dead_letters(svc: Services, args: argparse.Namespace) -> int:
    store = DeadLetterStore(svc.state.table("deadletters"))
    if args.drop or args.purge:
        if not (args.flow and args.scope):
            print("--drop and --purge need FLOW and --scope", file=sys.stderr)
            return 2
        FLOWS[args.flow].check_scopes(svc.config, [args.scope])
        if args.drop:
            store.resolve(args.flow, args.scope, args.drop)
        else:
            print(f"purged {store.purge(args.flow, args.scope)} dead letter(s)")
        return 0
    _print([dataclasses.asdict(d) for d in store.entries(args.flow, args.scope if args.flow else None)])
    return 0


def _optout_why(svc: Services, contact: str, limit: int, *, as_json: bool) -> int:
    contact_id = parse_guid(contact)
    if contact_id is None:
        print(f"not a contact id (GUID): {contact!r}", file=sys.stderr)
        return 2
    history = AuditLog(svc.state.table("optoutaudit")).history(contact_id, limit=limit)
    if as_json:
        _print([dataclasses.asdict(entry) for entry in history])
        return 0
    if not history:
        print(f"no opt-out decision recorded for contact {contact_id}")
        return 0
    print(f"opt-out decisions for contact {contact_id}, newest first:")
    for e in history:
        campaign = "not read" if e.campaign_value is None else f"{_flag(e.campaign_value)} at {_when(e.campaign_time)}"
        print(f"{_when(e.at)}  {e.attribute} = {_flag(e.value)}  via {e.source}: {e.verdict} ({e.rule})")
        print(f"    Dynamics {_flag(e.dynamics_value)} at {_when(e.dynamics_time)} (row version {e.version}); "
              f"Campaign {campaign}; winner {e.winner}" + (f"; {e.note}" if e.note else ""))  # fmt: skip
    return 0


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else "-"


def _print(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


if __name__ == "__main__":
    sys.exit(main())
