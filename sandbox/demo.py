"""The main job on the local sandbox: ingress from a Dataverse sandbox into a Campaign sandbox.

Starts Azurite, both sandboxes and an sshd (Campaign's SFTP), writes .local/local.settings.json pointing at
them, then runs the operator CLI exactly as an operator would: a first run (the initial load, inactive
contacts too: with the threshold lowered, contacts go by file and loyalty cards through the API), the initial
transfer (export, SFTP upload, the sandbox's import workflow, hand-over), a round of Dynamics changes and a
second run (the increment), an idle run, and `status`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys

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
    parser.add_argument(
        "--threshold",
        type=int,
        default=1000,
        help="INITIAL_TRANSFER_THRESHOLD: tables with more rows load by file (Adobe's is 500,000)",
    )
    args = parser.parse_args(argv)

    LOCAL.mkdir(exist_ok=True)
    with Azurite.start() as azurite, DataverseSandbox() as dv, SshdServer() as sshd, \
            CampaignSandbox.start(SandboxConfig(sftp_root=str(sshd.root))) as acs:  # fmt: skip
        settings = LOCAL / "local.settings.json"
        values = {**local_values(dv, acs, azurite), **file_path_values(sshd, args.threshold)}
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

        step("validate: settings and sync configuration (config/sync.example.json)")
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
        step("status")
        cli.main([*base, "status"])

        profiles, cards = len(acs.rows("profile")), len(acs.rows("cusLoyaltyCard"))
        step(f"Campaign sandbox now holds {profiles} profiles and {cards} loyalty cards")
        return 1 if failed else 0


def file_path_values(sshd: SshdServer, threshold: int) -> dict[str, str]:
    """Campaign's SFTP is the local sshd (no chroot: absolute folders), and the threshold lowered for the demo."""
    folders = {name: sshd.root / "d365_loads" / name for name in ("imports", "exports", "archive")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "SFTP_HOST": sshd.host,
        "SFTP_PORT": str(sshd.port),
        "SFTP_USERNAME": sshd.username,
        "SFTP_PRIVATE_KEY": sshd.client_private_key,
        "SFTP_HOST_KEY": sshd.host_public_key,
        "SFTP_UPLOAD_FOLDER": str(folders["imports"]),
        "SFTP_EXPORT_FOLDER": str(folders["exports"]),
        "SFTP_ARCHIVE_FOLDER": str(folders["archive"]),
        "INITIAL_TRANSFER_THRESHOLD": str(threshold),
        "DATAVERSE_PAGE_SIZE": "1000",  # small pages and parts, so a demo-sized table still makes several files
        "INITIAL_TRANSFER_PART_ROWS": "2000",
    }


def show_file_load(acs: CampaignSandbox, sshd: SshdServer) -> None:
    files = sorted((sshd.root / "d365_loads" / "imports").glob("*"))
    print(f"  files on SFTP: {', '.join(f'{f.name} ({f.stat().st_size:,} bytes)' for f in files) or 'none'}")
    for run in acs.import_history():
        print(f"  Campaign import workflow {run['workflow']}: {run['state']}, {run['loaded']:,} rows loaded "
              f"({run['inserted']:,} inserted, {run['updated']:,} updated, {run['rejected']:,} rejected)")  # fmt: skip


def local_values(dv: DataverseSandbox, acs: CampaignSandbox, azurite: Azurite) -> dict[str, str]:
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    return {**sample, **sandbox_settings(dv, acs, azurite.connection_string)}


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
