"""The main job on the local sandbox: ingress (with a large table by file) from a Dataverse sandbox into a Campaign
sandbox, and egress of Campaign's email events back onto the Dynamics timeline.

Starts Azurite, both sandboxes and an sshd (Campaign's SFTP), writes .local/local.settings.json and .local/sync.json
(the shipped example with egress on) pointing at them, then runs the operator CLI exactly as an operator would:
provisioning of the egress activity tables, a first ingress run (the initial load, inactive contacts too: with the
threshold lowered, contacts go by file and loyalty cards through the API), the initial transfer (export, SFTP
upload, the sandbox's import workflow, hand-over), a round of Dynamics changes and a second run (the increment), an
idle run; then Campaign sends an email to synced profiles and exports its logs to the SFTP, egress runs, and the
activities and tasks on the Dynamics side are counted (with one contact's timeline). Then opt-outs in
bidirectional mode: an opt-out made in Dynamics reaches Campaign in seconds (the sandbox's webhook, the function
app's HTTP function, the queue on Azurite, the queue-triggered processor), one made in Campaign reaches Dynamics
through the export file, and `optout why` explains that contact; finally `status`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import time

from sandbox.azurite import Azurite
from sandbox.campaign import CampaignSandbox, SandboxConfig
from sandbox.dataverse import DataverseSandbox
from sandbox.settings import sandbox_settings
from sandbox.sshd import SshdServer
from shared import cli

REPO = pathlib.Path(__file__).resolve().parent.parent
LOCAL = REPO / ".local"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=5000, help="contacts seeded in Dynamics")
    parser.add_argument("--cards", type=int, default=200, help="loyalty cards created in Dynamics")
    parser.add_argument("--changes", type=int, default=100, help="Dynamics changes between the two runs")
    parser.add_argument("--deliver", type=int, default=200, help="synced profiles Campaign sends an email to")
    parser.add_argument(
        "--threshold",
        type=int,
        default=1000,
        help="INITIAL_TRANSFER_THRESHOLD: tables with more rows load by file (Adobe's is 500,000)",
    )
    args = parser.parse_args(argv)

    LOCAL.mkdir(exist_ok=True)
    with (
        Azurite.start() as azurite,
        DataverseSandbox() as dv,
        SshdServer() as sshd,
        CampaignSandbox.start(SandboxConfig(sftp_root=str(campaign_sftp_root(sshd)))) as acs,
    ):
        settings = LOCAL / "local.settings.json"
        values = {**local_values(dv, acs, azurite), **sftp_values(sshd, campaign_sftp_root(sshd), args.threshold)}
        settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2))
        step(f"Dynamics sandbox at {dv.url}: {args.contacts} contacts, {args.cards} loyalty cards")
        dv.seed_contacts(args.contacts)
        inactive = sum(1 for r in dv.rows("contacts") if r["statecode"] == 1)
        print(f"  ({inactive} of the contacts are inactive: the first load carries them too)")
        contact_ids = [r["contactid"] for r in dv.rows("contacts", limit=args.cards)]
        for n, contact in enumerate(contact_ids):
            dv.create("new_loyaltycards", {"new_name": f"card {n}", "new_cardnumber": f"C-{n:05d}",
                                           "new_points": n * 7 % 1000, "new_tier": 1 + n % 3,
                                           "new_validuntil": "2027-12-31",
                                           "new_ContactId@odata.bind": f"/contacts({contact})"})  # fmt: skip
        base = ["--settings", str(settings)]

        step("provision egress: the activity tables, their columns and event-id keys Dynamics needs")
        if cli.main([*base, "provision", "egress"]) != 0:
            return 2
        step("provision egress again: nothing left to create")
        cli.main([*base, "provision", "egress"])
        step("validate: settings and sync configuration (config/sync.example.json, egress on)")
        if cli.main([*base, "validate"]) != 0:
            return 2
        step(
            f"run 1: initial load. Over {args.threshold:,} rows a table goes by file: contacts are handed to the "
            "initial transfer, loyalty cards load through the API"
        )
        failed = cli.main([*base, "run", "ingress"])
        step(
            "initial transfer of contacts: export into Blob, upload to SFTP, the import workflow's signal, "
            "hand-over to ingress"
        )
        failed |= cli.main([*base, "run", "initial_transfer"])
        show_file_load(acs, sshd)

        step(f"Dynamics users make {args.changes} changes (creates, updates, deletes)")
        make_changes(dv, random.Random(42), args.changes)
        step("run 2: the increment (contacts from the delta link the export handed over)")
        failed |= cli.main([*base, "run", "ingress"])
        step("run 3: nothing changed, nothing written")
        failed |= cli.main([*base, "run", "ingress"])
        profiles, cards = len(acs.rows("profile")), len(acs.rows("cusLoyaltyCard"))
        step(f"Campaign sandbox now holds {profiles} profiles and {cards} loyalty cards")

        delivery = acs.deliver(count=min(args.deliver, profiles), seed=1, campaign_label="2019LoyaltyCamp",
                               delivery_label="Spring newsletter")  # fmt: skip
        exported = acs.export_logs()
        files = ", ".join(exported["files"].values())
        step(f"Campaign sends '{delivery['deliveryLabel']}' to {len(delivery['targets'])} synced profiles "
             f"({len(delivery['excluded'])} denylisted ones excluded); its export workflows drop "
             f"{sum(exported['rows'].values())} events on the SFTP ({files})")  # fmt: skip
        step("egress: the email events onto the Dynamics timeline")
        failed |= cli.main([*base, "run", "egress"])
        show_egress(dv)
        step("egress again: the files are archived, nothing to do")
        failed |= cli.main([*base, "run", "egress"])
        failed |= opt_outs(dv, acs, azurite, settings)
        step("status")
        cli.main([*base, "status"])
        return 1 if failed else 0


def show_file_load(acs: CampaignSandbox, sshd: SshdServer) -> None:
    files = sorted((campaign_sftp_root(sshd) / "d365_loads" / "imports").glob("*"))
    print(f"  files on SFTP: {', '.join(f'{f.name} ({f.stat().st_size:,} bytes)' for f in files) or 'none'}")
    for run in acs.import_history():
        print(f"  Campaign import workflow {run['workflow']}: {run['state']}, {run['loaded']:,} rows loaded "
              f"({run['inserted']:,} inserted, {run['updated']:,} updated, {run['rejected']:,} rejected)")  # fmt: skip


def opt_outs(dv: DataverseSandbox, acs: CampaignSandbox, azurite: Azurite, settings: pathlib.Path) -> int:
    """Opt-outs both ways (bidirectional), with the function app's own functions behind local host stand-ins."""
    import function_app
    import shared.wiring
    from sandbox.functions_host import LocalHttpHost, http_routes
    from sandbox.queue_pump import QueueOptions, QueuePump
    from shared.entrypoints.optout import handle_message
    from shared.wiring import build_services, load_configuration

    document = json.loads((LOCAL / "sync.json").read_text())
    document["optOut"]["mode"] = "bidirectional"
    sync = LOCAL / "sync-optout.json"
    sync.write_text(json.dumps(document, indent=2))
    values = {**json.loads(settings.read_text())["Values"], "SYNC_CONFIG": str(sync)}  # SFTP set for egress already
    optout_settings = LOCAL / "optout.settings.json"
    optout_settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2))
    base = ["--settings", str(optout_settings)]
    shared.wiring._services = build_services(*load_configuration(values))  # what the functions run with
    key = "demo-function-key"
    with LocalHttpHost(http_routes(function_app.app), [key]) as host:
        pump = QueuePump(azurite.connection_string, values["OPTOUT_QUEUE"], handle_message,
                         QueueOptions.from_host_json()).start(min_interval=0.1)  # fmt: skip
        try:
            url = host.url("optout/webhook")
            columns = ["donotbulkemail", "donotphone"]
            step(f"opt-out, bidirectional: a webhook step on contact Create/Update of {', '.join(columns)} -> {url}")
            dv.register_webhook(url, messages=["Create", "Update"], filtering_attributes=columns, auth="WebhookKey",
                                value=key)  # fmt: skip
            synced = {p["externalId"] for p in acs.rows("profile")}
            rows = [r for r in dv.rows("contacts", limit=500) if r["contactid"] in synced]
            in_dynamics = next(r["contactid"] for r in rows if not r["donotbulkemail"])
            in_campaign = next(
                r["contactid"] for r in rows if not r["donotbulkemail"] and r["contactid"] != in_dynamics
            )

            step(f"a Dynamics user opts contact {in_dynamics} out of bulk e-mail")
            started = time.monotonic()
            dv.update("contacts", in_dynamics, {"donotbulkemail": True})
            while not acs.find_rows("profile", externalId=in_dynamics)[0]["denyListEmail"]:
                if time.monotonic() - started > 30:
                    print("  not in Campaign after 30 s")
                    return 1
                time.sleep(0.02)
            print(f"  Campaign profile denyListEmail = true {time.monotonic() - started:.2f} s later")

            step(f"contact {in_campaign} clicks Campaign's unsubscription link; Campaign's export workflow runs")
            acs.advance_clock(1)
            acs.unsubscribe(external_id=in_campaign)
            exported = acs.export_optouts()
            print(f"  {exported['file']}: {exported['rows']} profile(s) modified since the last export")
            step("run optout --scope campaign-file: the export file into Dynamics")
            failed = cli.main([*base, "run", "optout", "--scope", "campaign-file"])
            row = dv.get("contacts", in_campaign) or {}
            print(f"  Dynamics contact donotbulkemail = {str(bool(row.get('donotbulkemail'))).lower()}")
            dv.flush_webhooks()  # Dataverse's webhook for the connector's own write: recognised, not sent back
            pump.drain()

            step(f"optout why {in_campaign}")
            cli.main([*base, "optout", "why", in_campaign])
            return failed
        finally:
            pump.stop()


def local_values(dv: DataverseSandbox, acs: CampaignSandbox, azurite: Azurite) -> dict[str, str]:
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    return {**sample, **sandbox_settings(dv, acs, azurite.connection_string)}


def campaign_sftp_root(sshd: SshdServer) -> pathlib.Path:
    """Campaign's SFTP root, a folder the demo's sshd serves, with the folders of the file flows."""
    root = sshd.root / "campaign"
    for folder in ("imports", "exports", "archive"):
        (root / "d365_loads" / folder).mkdir(parents=True, exist_ok=True)
    return root


def sftp_values(sshd: SshdServer, sftp_root: pathlib.Path, threshold: int) -> dict[str, str]:
    """The SFTP settings (the demo's sshd serves Campaign's SFTP root; no chroot, so absolute folders), a mapping
    document with egress on, and the initial-transfer threshold lowered for the demo."""
    document = json.loads((REPO / "config" / "sync.example.json").read_text())
    document["egress"]["enabled"] = True
    sync = LOCAL / "sync.json"
    sync.write_text(json.dumps(document, indent=2))
    return {
        "SFTP_HOST": sshd.host,
        "SFTP_PORT": str(sshd.port),
        "SFTP_USERNAME": sshd.username,
        "SFTP_PRIVATE_KEY": sshd.client_private_key,
        "SFTP_HOST_KEY": sshd.host_public_key,
        "SFTP_UPLOAD_FOLDER": str(sftp_root / "d365_loads" / "imports"),
        "SFTP_EXPORT_FOLDER": str(sftp_root / "d365_loads" / "exports"),
        "SFTP_ARCHIVE_FOLDER": str(sftp_root / "d365_loads" / "archive"),
        "SYNC_CONFIG": str(sync),
        "INITIAL_TRANSFER_THRESHOLD": str(threshold),
        "DATAVERSE_PAGE_SIZE": "1000",  # small pages and parts, so a demo-sized table still makes several files
        "INITIAL_TRANSFER_PART_ROWS": "2000",
    }


def show_egress(dv: DataverseSandbox) -> None:
    """What landed on the Dynamics sandbox, and one contact's timeline as Dynamics shows it (activitypointers)."""
    document = json.loads((LOCAL / "sync.json").read_text())
    tables = document["egress"]["activityTables"]
    landed = {event: dv.count(entity_set) for event, entity_set in tables.items() if not event.startswith("$")}
    tasks = dv.rows("tasks", limit=100_000)
    step(f"Dynamics sandbox: {sum(landed.values())} activities ({', '.join(f'{n} {e}' for e, n in landed.items())}) "
         f"and {len(tasks)} follow-up tasks")  # fmt: skip
    pointers = dv.rows("activitypointers", limit=100_000)
    clicked = next((p["_regardingobjectid_value"] for p in pointers if p["activitytypecode"] == "new_campaignclick"),
                   None)  # fmt: skip
    if clicked is None:
        return
    contact = dv.get("contacts", clicked) or {}
    print(f"  timeline of contact {contact.get('fullname') or clicked}:")
    for row in sorted((p for p in pointers if p["_regardingobjectid_value"] == clicked),
                      key=lambda p: p.get("actualend") or p.get("scheduledend") or ""):  # fmt: skip
        when = row.get("actualend") or f"due {row.get('scheduledend')}"
        print(f"    {when}  {row['activitytypecode']:<18} {row['subject']}")


def make_changes(dv: DataverseSandbox, rng: random.Random, count: int) -> None:
    ids = [r["contactid"] for r in dv.rows("contacts", limit=5000)]
    for n in range(count):
        kind = rng.choice(("create", "update", "update", "delete"))
        if kind == "create":
            dv.create(
                "contacts", {"firstname": f"New{n}", "lastname": "Contact", "emailaddress1": f"new{n}@example.org"}
            )
        elif kind == "update":
            dv.update("contacts", rng.choice(ids), {"lastname": f"Renamed{n}", "donotbulkemail": rng.random() < 0.5})
        else:
            victim = ids.pop(rng.randrange(len(ids)))
            dv.delete("contacts", victim)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
