"""Operator CLI: the same flow functions the timers call, plus pre-flight, status, replay, dead letters
and leases, for every registered flow.

    python -m shared.cli [--settings local.settings.json] validate [--offline]
    python -m shared.cli [--settings ...] run FLOW [--scope NAME ...] [--dry-run]
    python -m shared.cli [--settings ...] status [FLOW] [--no-backlog]
    python -m shared.cli [--settings ...] replay FLOW SCOPE
    python -m shared.cli [--settings ...] deadletters [list [FLOW] [--scope NAME]]
    python -m shared.cli [--settings ...] deadletters retry|purge FLOW --scope NAME [--yes]
    python -m shared.cli [--settings ...] deadletters drop FLOW --scope NAME RECORD_ID
    python -m shared.cli [--settings ...] leases [list]
    python -m shared.cli [--settings ...] leases clear FLOW SCOPE [--yes]
    python -m shared.cli [--settings ...] provision egress [--dry-run]
    python -m shared.cli [--settings ...] transfer retry TABLE
    python -m shared.cli [--settings ...] optout why CONTACT_ID [--limit N]

Every command takes --json (machine-readable output instead of tables). Settings come from the
environment; --settings adds the `Values` of a local.settings.json beneath it (an environment variable
wins over the file). Exit codes: 0 ok; 1 a run failed; 2 configuration problems (offline or live), an
unknown flow or scope; 3 a run was skipped because another run (live, or dead and not yet expired)
holds its lease; 4 a confirmation was refused. A run shows its progress on stderr (a progress bar on a
terminal, plain lines every few seconds otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import pathlib
import sys
import time
from collections.abc import Callable, Sequence

from shared.cli_progress import ProgressView
from shared.config.errors import ConfigError
from shared.core.parse import parse_guid
from shared.flows import egress_provision
from shared.flows.definition import FlowDefinition, UnknownScope
from shared.flows.initial_transfer import INITIAL_TRANSFER
from shared.flows.initial_transfer_cursor import NotRetryable, TransferCursor
from shared.ops import render
from shared.ops.preflight import preflight
from shared.ops.status import collect_status
from shared.registry import FLOWS
from shared.settings import read_local_settings
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.lease import clear_lease, held_leases
from shared.state.optout_audit import AuditLog
from shared.wiring import Services, build_services, load_configuration

OK, RUN_FAILED, CONFIG_PROBLEMS, SKIPPED, REFUSED = 0, 1, 2, 3, 4


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="JSON output for scripts instead of tables")
    root = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__.split("\n\n")[0])
    root.add_argument("--settings", type=pathlib.Path, help="a local.settings.json whose Values to use")
    sub = root.add_subparsers(dest="command", required=True)
    flows = list(FLOWS)

    validate = sub.add_parser("validate", parents=[common], help="check settings, mapping and the live systems")
    validate.add_argument("--offline", action="store_true", help="settings and mapping document only")
    run = sub.add_parser("run", parents=[common], help="run a flow now")
    run.add_argument("flow", choices=flows)
    run.add_argument("--scope", "--table", dest="scopes", action="append", help="only this scope (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="read and decide, write nothing; print the counts")
    status = sub.add_parser("status", parents=[common], help="per flow and scope: cursor, age, backlog, leases")
    status.add_argument("flow", nargs="?", choices=flows)
    status.add_argument("--no-backlog", action="store_true", help="skip the calls that estimate what waits")
    replay = sub.add_parser("replay", parents=[common], help="the flow's next run of the scope starts over")
    replay.add_argument("flow", choices=flows)
    replay.add_argument("scope")

    letters = sub.add_parser("deadletters", parents=[common], help="dead letters: list, retry now, purge, drop")
    actions = letters.add_subparsers(dest="action")
    listing = actions.add_parser("list", parents=[common], help="ids and reasons (the default)")
    listing.add_argument("flow", nargs="?", choices=flows)
    listing.add_argument("--scope", "--table", dest="scope")
    for name, text in (("retry", "make them due again and run the flow for the scope now"),
                       ("purge", "forget every dead letter of the scope")):  # fmt: skip
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("flow", choices=flows)
        action.add_argument("--scope", "--table", dest="scope", required=True)
        action.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    drop = actions.add_parser("drop", parents=[common], help="forget one dead letter")
    drop.add_argument("flow", choices=flows)
    drop.add_argument("--scope", "--table", dest="scope", required=True)
    drop.add_argument("record_id")

    leases = sub.add_parser("leases", parents=[common], help="run leases held now (live or dead runs)")
    lease_actions = leases.add_subparsers(dest="action")
    lease_actions.add_parser("list", parents=[common])
    clear = lease_actions.add_parser("clear", parents=[common], help="remove a dead run's lease")
    clear.add_argument("flow", choices=flows)
    clear.add_argument("scope")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    provision = sub.add_parser("provision", parents=[common], help="create in Dynamics what a flow needs")
    provision.add_argument("target", choices=["egress"], help="egress: the activity tables, columns and keys")
    provision.add_argument("--dry-run", action="store_true", help="print what would be created, create nothing")
    transfer = sub.add_parser("transfer", parents=[common], help="initial transfer by file: operator actions")
    transfer_actions = transfer.add_subparsers(dest="action", required=True)
    retry = transfer_actions.add_parser("retry", parents=[common],
                                        help="upload the staged files again and re-signal a failed import")  # fmt: skip
    retry.add_argument("scope", metavar="TABLE")

    optout = sub.add_parser("optout", parents=[common], help="opt-out sync: why a contact is (not) opted out")
    optout_actions = optout.add_subparsers(dest="action", required=True)
    why = optout_actions.add_parser("why", parents=[common], help="the contact's opt-out decisions, newest first")
    why.add_argument("contact", help="the Dynamics contactid")
    why.add_argument("--limit", type=int, default=50)
    return root


def main(argv: Sequence[str] | None = None, *, ask: Callable[[str], str] = input) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("sync").setLevel(logging.INFO)  # our own events; the SDKs' request logs stay quiet
    logging.getLogger("sync.run").setLevel(logging.WARNING)  # summaries are printed below, not logged twice
    env = dict(os.environ)
    try:
        if args.settings:
            env = {**read_local_settings(args.settings), **env}
        svc = build_services(*load_configuration(env))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return CONFIG_PROBLEMS
    commands: dict[str, Callable[[Services, argparse.Namespace, Callable[[str], str]], int]] = {
        "validate": _validate,
        "run": _run,
        "status": _status,
        "replay": _replay,
        "deadletters": _dead_letters,
        "leases": _leases,
        "provision": _provision,
        "transfer": _transfer,
        "optout": _optout_why,
    }
    try:
        return commands[args.command](svc, args, ask)
    except UnknownScope as exc:
        print(exc.args[0], file=sys.stderr)
        return CONFIG_PROBLEMS


def _validate(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    offline = f"settings valid; {len(svc.config.tables)} table mapping(s): " + ", ".join(
        t.name for t in svc.config.tables
    )
    if args.offline:
        render.emit_json({"offline": offline}) if args.json else print(f"OK: {offline}")
        return OK
    checks = preflight(svc, list(FLOWS.values()))
    if args.json:
        render.emit_json({"offline": offline, "checks": [dataclasses.asdict(c) for c in checks]})
    else:
        print(f"OK offline: {offline}")
        render.console().print(render.checks_table(checks))
    failed = [c for c in checks if not c.ok]
    if failed and not args.json:
        print(f"{sum(len(c.problems) for c in failed)} problem(s) on the live systems", file=sys.stderr)
    return CONFIG_PROBLEMS if failed else OK


def _run(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    with ProgressView() as progress:  # on stderr: stdout stays the summaries
        runs = FLOWS[args.flow].run(svc, args.scopes, dry_run=args.dry_run, progress=progress)
    summaries = [dataclasses.asdict(s) for s in runs]
    if args.json:
        render.emit_json(summaries)
    else:
        render.console().print(render.summaries_table(summaries))
    outcomes = {s["outcome"] for s in summaries}
    return RUN_FAILED if "failed" in outcomes else SKIPPED if "skipped" in outcomes else OK


def _status(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    definitions = [FLOWS[args.flow]] if args.flow else list(FLOWS.values())
    rows = collect_status(svc, definitions, with_backlog=not args.no_backlog)
    if args.json:
        render.emit_json([r.to_json() for r in rows])
    else:
        render.console().print(render.status_table(rows))
    return OK


def _replay(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    definition = FLOWS[args.flow]
    definition.check_scopes(svc.config, [args.scope])
    CheckpointStore(svc.state.table("checkpoints")).request_reset(definition.name, args.scope)
    print(f"replay requested for {args.flow} {args.scope}: its next run starts over")
    return OK


def _dead_letters(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    store = DeadLetterStore(svc.state.table("deadletters"))
    action = args.action or "list"
    if action == "list":
        args.flow, args.scope = getattr(args, "flow", None), getattr(args, "scope", None)
        if args.scope and not args.flow:
            print("--scope needs FLOW", file=sys.stderr)
            return CONFIG_PROBLEMS
        if args.flow and args.scope:
            FLOWS[args.flow].check_scopes(svc.config, [args.scope])
        letters = [dataclasses.asdict(d) for d in store.entries(args.flow, args.scope)]
        if args.json:
            render.emit_json(letters)
        else:
            columns = ("flow", "scope", "record_id", "attempts", "reason")
            render.console().print(render.rows_table("dead letters", letters, columns))
        return OK
    definition: FlowDefinition = FLOWS[args.flow]
    definition.check_scopes(svc.config, [args.scope])
    if action == "drop":
        store.resolve(args.flow, args.scope, args.record_id)
        return OK
    count = len(store.entries(args.flow, args.scope))
    if not args.yes and ask(f"{action} {count} dead letter(s) of {args.flow} {args.scope}? [y/N] ").lower() != "y":
        return REFUSED
    if action == "purge":
        print(f"purged {store.purge(args.flow, args.scope)} dead letter(s)")
        return OK
    store.rearm(args.flow, args.scope)
    return _run(svc, argparse.Namespace(flow=args.flow, scopes=[args.scope], dry_run=False, json=args.json), ask)


def _transfer(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    """`transfer retry TABLE`: a failed import is signalled again with the files already staged."""
    INITIAL_TRANSFER.check_scopes(svc.config, [args.scope])
    store = CheckpointStore(svc.state.table("checkpoints"))
    try:
        store.update(INITIAL_TRANSFER.name, args.scope, TransferCursor, lambda checkpoint: checkpoint.cursor.retry())
    except NotRetryable as exc:
        print(f"{args.scope}: {exc}", file=sys.stderr)
        return CONFIG_PROBLEMS
    print(f"retry requested for {args.scope}: the next initial_transfer run uploads the staged files and signals "
          "again")  # fmt: skip
    return OK


def _leases(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    table = svc.state.table("leases")
    if args.action == "clear":
        FLOWS[args.flow].check_scopes(svc.config, [args.scope])
        held = [lease for lease in held_leases(table) if (lease.flow, lease.scope) == (args.flow, args.scope)]
        if not held:
            print(f"no lease is held on {args.flow} {args.scope}")
            return OK
        until = render.local_time(held[0].expires_at)
        prompt = (f"run {held[0].owner[:8]} holds {args.flow} {args.scope} until {until}; clear it only if that run "
                  "is dead (a live run would then be overtaken). Clear? [y/N] ")  # fmt: skip
        if not args.yes and ask(prompt).lower() != "y":
            return REFUSED
        clear_lease(table, args.flow, args.scope)
        print(f"lease of {args.flow} {args.scope} cleared")
        return OK
    rows = [
        {**dataclasses.asdict(lease), "expires": render.local_time(lease.expires_at)} for lease in held_leases(table)
    ]
    if args.json:
        render.emit_json(rows)
    else:
        render.console().print(render.rows_table("leases", rows, ("flow", "scope", "owner", "expires")))
    return OK


def _provision(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    try:
        steps = egress_provision.plan(svc.config.egress, svc.dataverse)
    except egress_provision.ProvisionError as exc:
        print(f"cannot provision egress: {exc}", file=sys.stderr)
        return CONFIG_PROBLEMS
    if not args.dry_run:
        egress_provision.apply(steps, svc.dataverse)
    verb = "would create" if args.dry_run else "created"
    if args.json:
        render.emit_json({"dry_run": args.dry_run, "steps": [dataclasses.asdict(step) for step in steps]})
    elif not steps:
        print("nothing to create: every activity table, column and key egress needs exists")
    else:
        for step in steps:
            print(f"{verb}: {step.describe().removeprefix('create ')}")
        print(f"{len(steps)} metadata change(s) {verb}")
    return OK


def _optout_why(svc: Services, args: argparse.Namespace, ask: Callable[[str], str]) -> int:
    contact = parse_guid(args.contact)
    if contact is None:
        print(f"not a contact id (GUID): {args.contact!r}", file=sys.stderr)
        return CONFIG_PROBLEMS
    history = AuditLog(svc.state.table("optoutaudit")).history(contact, limit=args.limit)
    if args.json:
        render.emit_json([dataclasses.asdict(entry) for entry in history])
        return OK
    if not history:
        print(f"no opt-out decision recorded for contact {contact}")
        return OK
    print(f"opt-out decisions for contact {contact}, newest first:")
    for e in history:
        campaign = "not read" if e.campaign_value is None else f"{_flag(e.campaign_value)} at {_when(e.campaign_time)}"
        print(f"{_when(e.at)}  {e.attribute} = {_flag(e.value)}  via {e.source}: {e.verdict} ({e.rule})")
        print(f"    Dynamics {_flag(e.dynamics_value)} at {_when(e.dynamics_time)} (row version {e.version}); "
              f"Campaign {campaign}; winner {e.winner}" + (f"; {e.note}" if e.note else ""))  # fmt: skip
    return OK


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else "-"


if __name__ == "__main__":
    sys.exit(main())
