"""Semantic rules of the egress and optOut blocks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from shared.config.findings import Finding
from shared.config.model import (
    EGRESS_EVENTS,
    EGRESS_REQUIRED_SOURCE_FIELDS,
    EGRESS_SOURCE_FIELDS,
    OPT_OUT_CAMPAIGN_FIELDS,
    OptOutMode,
    canonical_opt_out_field,
)
from shared.config.semantic.raw import RawTable, items, obj, text

# The Dynamics side of an opt-out pair must be a contact Boolean. Without metadata at load time the name decides:
# a standard donot* column (donotbulkemail, donotphone...) or a custom column with a publisher prefix
# (2-8 characters, e.g. new_ccpaoptout), since Dataverse has no standard column for some Campaign fields (ccpaOptOut).
DYNAMICS_OPT_OUT = re.compile(r"donot[a-z0-9_]+|[a-z][a-z0-9]{1,7}_[a-z0-9_]+")

_FOLLOW_UPS = {"onClick": "click", "onBounce": "bounce"}


def check_egress(egress: dict[str, Any]) -> Iterator[Finding]:
    if egress.get("enabled") is not True:
        return  # a disabled block may be half filled in, ready for later
    if "events" in egress and not isinstance(egress["events"], dict):
        return  # the schema reports it; what is on cannot be known
    events = obj(egress.get("events"))
    enabled = [event for event in EGRESS_EVENTS if events.get(event) is True]
    if not enabled:
        yield Finding(("egress", "events"), "enabled egress needs at least one event type set to true")
    tables = obj(egress.get("activityTables"))
    for event in enabled:
        if event not in tables:
            yield Finding(("egress", "activityTables", event), f"needs an activity table: '{event}' events are on")
    used: dict[str, str] = {}
    for event in enabled:
        entity_set = tables.get(event)
        if isinstance(entity_set, str) and used.setdefault(entity_set.lower(), event) != event:
            # The event id is unique per type only: a send and its later bounce share it.
            yield Finding(("egress", "activityTables", event), f"already used by '{used[entity_set.lower()]}' "
                          "events: each event type needs its own activity table")  # fmt: skip
    follow_ups = obj(egress.get("followUpTasks"))
    for key, event in _FOLLOW_UPS.items():
        if follow_ups.get(key) is True and event not in enabled:
            yield Finding(("egress", "followUpTasks", key), f"needs '{event}' events turned on")
    columns = obj(obj(egress.get("source")).get("columns"))
    merged = {field: columns.get(field, field) for field in EGRESS_SOURCE_FIELDS}  # the defaults count too
    yield from _distinct(("egress", "source", "columns"), merged, "column")
    for field in EGRESS_REQUIRED_SOURCE_FIELDS:
        if field in columns and columns[field] is None:
            yield Finding(("egress", "source", "columns", field), "cannot be left out: every event needs it")
    if "bounce" in enabled and "failureType" in columns and columns["failureType"] is None:
        yield Finding(("egress", "source", "columns", "failureType"), "cannot be left out while bounce events are on: "
                      "only hard bounces land")  # fmt: skip
    yield from _distinct(("egress", "activityColumns"), obj(egress.get("activityColumns")), "activity column")


def _distinct(path: tuple[str, ...], names: dict[str, Any], what: str) -> Iterator[Finding]:
    """Two fields may not share one name (the header's, or the activity table's)."""
    seen: dict[str, str] = {}
    for field, name in names.items():
        if field.startswith("$") or not isinstance(name, str):
            continue
        if seen.setdefault(name.lower(), field) != field:
            yield Finding((*path, field), f"{what} '{name}' is already used by {seen[name.lower()]}")


def check_opt_out(opt_out: dict[str, Any], contact: RawTable | None) -> Iterator[Finding]:
    pairs = [(i, p) for i, p in enumerate(items(opt_out.get("pairs"))) if isinstance(p, dict)]
    pair_findings = list(_check_pairs(pairs))
    yield from pair_findings
    flawed = {f.parts[2] for f in pair_findings}
    mode = _mode(opt_out.get("mode"))
    if mode is None or mode is OptOutMode.DISABLED:
        return
    if not items(opt_out.get("pairs")):
        yield Finding(("optOut", "pairs"), f"mode '{mode.value}' needs at least one pair")
    if contact is None:
        yield Finding(("optOut", "mode"), f"mode '{mode.value}' needs the contact -> profile mapping in ingress.tables")
    elif contact.fields_readable:
        yield from _check_against_contact_mapping(mode, [(i, p) for i, p in pairs if i not in flawed], contact)


def _mode(value: Any) -> OptOutMode | None:
    try:
        return OptOutMode(value)
    except ValueError:
        return None  # the schema reports it


def _check_pairs(pairs: list[tuple[int, dict[str, Any]]]) -> Iterator[Finding]:
    seen: dict[tuple[str, str], int] = {}
    for index, pair in pairs:
        dynamics, campaign = text(pair.get("dynamics")), text(pair.get("campaign"))
        if dynamics is not None and not DYNAMICS_OPT_OUT.fullmatch(dynamics):
            yield Finding(
                ("optOut", "pairs", index, "dynamics"),
                "must be a contact Boolean column: donot<name>, or a custom column <prefix>_<name>",
            )
        sides = (("dynamics", dynamics), ("campaign", canonical_opt_out_field(campaign) if campaign else None))
        for side, value in sides:
            if value is not None and seen.setdefault((side, value), index) != index:
                yield Finding(("optOut", "pairs", index, side), f"already paired in pairs[{seen[(side, value)]}]")


def _check_against_contact_mapping(
    mode: OptOutMode, pairs: list[tuple[int, dict[str, Any]]], contact: RawTable
) -> Iterator[Finding]:
    """D365 -> Campaign opt-outs travel with the contact mapping (Adobe's D365 docs); with toDynamics they never do."""
    mapped = {(text(f.get("source")), canonical_opt_out_field(str(f.get("target")))) for _, f in contact.fields}
    mapped_targets = {target for _, target in mapped}
    for index, pair in pairs:
        dynamics, campaign = text(pair.get("dynamics")), text(pair.get("campaign"))
        if dynamics is None or campaign not in OPT_OUT_CAMPAIGN_FIELDS:
            continue  # already reported; a cross-check would only repeat it
        campaign = canonical_opt_out_field(str(campaign))
        if mode is OptOutMode.TO_DYNAMICS and campaign in mapped_targets:
            yield Finding(
                ("optOut", "pairs", index, "campaign"),
                "is a target of the contact mapping too; with toDynamics Campaign owns it, ingress must not write it",
            )
        elif mode is not OptOutMode.TO_DYNAMICS and (dynamics, campaign) not in mapped:
            yield Finding(
                ("optOut", "pairs", index),
                f"map {dynamics} onto {campaign} in the contact mapping (tables[{contact.index}].fields): "
                "D365 -> Campaign opt-outs travel with it",
            )
