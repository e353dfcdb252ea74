"""Turn a checked document into the typed model, filling in the defaults. Only called on valid documents."""

from __future__ import annotations

from typing import Any

from shared.config.model import (
    EGRESS_EVENTS,
    EGRESS_FILE_PATTERN,
    EGRESS_SOURCE_FIELDS,
    Combine,
    EgressConfig,
    FieldMapping,
    FilterRule,
    FilterSet,
    OptOutConfig,
    OptOutMode,
    OptOutPair,
    PicklistMode,
    Replacement,
    SyncConfig,
    TableMapping,
)

DEFAULT_TASK_DUE_DAYS = 2


def build_sync_config(document: dict[str, Any]) -> SyncConfig:
    return SyncConfig(
        tables=tuple(_table(t) for t in document["ingress"]["tables"]),
        egress=_egress(document.get("egress", {})),
        opt_out=_opt_out(document.get("optOut", {})),
    )


def _table(raw: dict[str, Any]) -> TableMapping:
    source, target = raw["source"], raw["target"]
    options = raw.get("options", {})
    return TableMapping(
        name=raw.get("name", source["entitySet"]),
        entity=source["entity"],
        entity_set=source["entitySet"],
        primary_key=source["primaryKey"],
        resource=target["resource"],
        key_attribute=target["keyAttribute"],
        lookup_filter=target["lookupFilter"],
        lookup_parameter=target["lookupParameter"],
        fields=tuple(_field(f) for f in raw["fields"]),
        filters=_filters(raw.get("filters", {})),
        replacements=tuple(Replacement(r["field"], r["from"], r["to"]) for r in raw.get("replacements", [])),
        apply_deletes=options.get("applyDeletes", False),
        picklists=PicklistMode(options.get("picklists", PicklistMode.VALUE.value)),
        enabled=raw.get("enabled", True),
    )


def _field(raw: dict[str, Any]) -> FieldMapping:
    return FieldMapping(
        source=raw["source"],
        target=raw["target"],
        apply_updates=raw.get("applyUpdates", True),
        source_type=raw.get("sourceType"),
        target_type=raw.get("targetType"),
    )


def _filters(raw: dict[str, Any]) -> FilterSet:
    rules = tuple(
        FilterRule(r["field"], r["operator"], tuple(v) if isinstance(v := r.get("value"), list) else v)
        for r in raw.get("rules", [])
    )
    return FilterSet(
        rules=rules,
        combine=Combine(raw.get("combine", Combine.AND.value)),
        delete_filtered_out=raw.get("deleteFilteredOut", False),
    )


def _egress(raw: dict[str, Any]) -> EgressConfig:
    events = raw.get("events", {})
    tasks = raw.get("followUpTasks", {})
    source = raw.get("source", {})
    columns = source.get("columns", {})
    return EgressConfig(
        enabled=raw.get("enabled", False),
        events=frozenset(e for e in EGRESS_EVENTS if events.get(e, False)),
        activity_tables=dict(raw.get("activityTables", {})),
        task_on_click=tasks.get("onClick", False),
        task_on_bounce=tasks.get("onBounce", False),
        task_due_days=int(tasks.get("dueInDays", DEFAULT_TASK_DUE_DAYS)),
        source_columns={f: columns.get(f, f) for f in EGRESS_SOURCE_FIELDS},
        source_pattern=source.get("pattern", EGRESS_FILE_PATTERN),
        source_separator=source.get("separator", ";"),
        activity_columns={k: v for k, v in raw.get("activityColumns", {}).items() if not k.startswith("$")},
        owner=raw["owner"].lower() if raw.get("owner") else None,
    )


def _opt_out(raw: dict[str, Any]) -> OptOutConfig:
    return OptOutConfig(
        mode=OptOutMode(raw.get("mode", OptOutMode.DISABLED.value)),
        pairs=tuple(OptOutPair(p["dynamics"], p["campaign"]) for p in raw.get("pairs", [])),
    )
