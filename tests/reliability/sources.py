"""Seeding and changing Dynamics contacts for the cells: a known set of rows, one of them a record Campaign must
refuse (a first name over the profile attribute's 30 characters: Dynamics allows 50), and a deterministic mix of
creates, updates and deletes that never touches that record."""

from __future__ import annotations

import random

from sandbox.dataverse import DataverseSandbox

POISON_FIRST_NAME = "R" * 40  # Campaign's firstName holds 30: refused before writing, dead-lettered


def seed_contacts(dv: DataverseSandbox, count: int, seed: int) -> list[str]:
    dv.seed_contacts(count, seed=seed)
    return [r["contactid"] for r in dv.rows("contacts", limit=count)]


def add_poison(dv: DataverseSandbox) -> str:
    return dv.create("contacts", {"firstname": POISON_FIRST_NAME, "lastname": "Refused", "emailaddress1": None})


def change_contacts(dv: DataverseSandbox, ids: list[str], seed: int, count: int) -> None:
    """`count` changes among `ids` (creates, updates, deletes) as users would make them."""
    rng = random.Random(seed)
    live = list(ids)
    for n in range(count):
        kind = rng.choice(("create", "update", "update", "delete"))
        if kind == "create" or not live:
            dv.create("contacts", {"firstname": f"New{n}", "lastname": "Person", "emailaddress1": f"new{n}@example.org",
                                   "donotbulkemail": rng.random() < 0.3})  # fmt: skip
        elif kind == "update":
            dv.update("contacts", rng.choice(live), {"lastname": f"Changed{n}", "donotphone": rng.random() < 0.5})
        else:
            live.remove(victim := rng.choice(live))
            dv.delete("contacts", victim)
