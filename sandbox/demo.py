"""The main job on the local sandbox: ingress from a Dataverse sandbox into a Campaign sandbox.

Starts Azurite, both sandboxes, writes .local/local.settings.json pointing at them, then runs the
operator CLI exactly as an operator would: a first run (the initial load, inactive contacts too), a
round of Dynamics changes and a second run (the increment), an idle run, and `status`.
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
from shared import cli

REPO = pathlib.Path(__file__).resolve().parent.parent
LOCAL = REPO / ".local"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=5000, help="contacts seeded in Dynamics")
    parser.add_argument("--cards", type=int, default=200, help="loyalty cards created in Dynamics")
    parser.add_argument("--changes", type=int, default=100, help="Dynamics changes between the two runs")
    args = parser.parse_args(argv)

    LOCAL.mkdir(exist_ok=True)
    with Azurite.start() as azurite, DataverseSandbox() as dv, CampaignSandbox.start(SandboxConfig()) as acs:
        settings = LOCAL / "local.settings.json"
        settings.write_text(json.dumps({"IsEncrypted": False, "Values": local_values(dv, acs, azurite)}, indent=2))
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
        step("run 1: initial load")
        failed = cli.main([*base, "run", "ingress"])

        step(f"Dynamics users make {args.changes} changes (creates, updates, deletes)")
        make_changes(dv, random.Random(42), args.changes)
        step("run 2: the increment")
        failed |= cli.main([*base, "run", "ingress"])
        step("run 3: nothing changed, nothing written")
        failed |= cli.main([*base, "run", "ingress"])
        step("status")
        cli.main([*base, "status"])

        profiles, cards = len(acs.rows("profile")), len(acs.rows("cusLoyaltyCard"))
        step(f"Campaign sandbox now holds {profiles} profiles and {cards} loyalty cards")
        return 1 if failed else 0


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
