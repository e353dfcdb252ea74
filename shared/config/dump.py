"""The model back as a document, every default written out (load(dump(c)) == c); for the CLI and for tests."""

from __future__ import annotations

from typing import Any

from shared.config.model import EGRESS_EVENTS, FilterSet, SyncConfig, TableMapping


def dump_sync_config(config: SyncConfig) -> dict[str, Any]:
    egress, opt_out = config.egress, config.opt_out
    return {
        "version": 1,
        "ingress": {"tables": [_table(t) for t in config.tables]},
        "egress": {
            "enabled": egress.enabled,
            "events": {e: e in egress.events for e in EGRESS_EVENTS},
            "activityTables": dict(egress.activity_tables),
            "followUpTasks": {
                "onClick": egress.task_on_click,
                "onBounce": egress.task_on_bounce,
                "dueInDays": egress.task_due_days,
            },
            "source": {
                "pattern": egress.source_pattern,
                "separator": egress.source_separator,
                "columns": dict(egress.source_columns),
            },
            "activityColumns": dict(egress.activity_columns),
            **({"owner": egress.owner} if egress.owner else {}),
        },
        "optOut": {
            "mode": opt_out.mode.value,
            "pairs": [{"dynamics": p.dynamics, "campaign": p.campaign} for p in opt_out.pairs],
        },
    }


def _table(table: TableMapping) -> dict[str, Any]:
    fields = []
    for f in table.fields:
        field: dict[str, Any] = {"source": f.source, "target": f.target, "applyUpdates": f.apply_updates}
        if f.source_type is not None:
            field["sourceType"] = f.source_type
        if f.target_type is not None:
            field["targetType"] = f.target_type
        fields.append(field)
    return {
        "name": table.name,
        "enabled": table.enabled,
        "source": {"entity": table.entity, "entitySet": table.entity_set, "primaryKey": table.primary_key},
        "target": {
            "resource": table.resource,
            "keyAttribute": table.key_attribute,
            "lookupFilter": table.lookup_filter,
            "lookupParameter": table.lookup_parameter,
        },
        "fields": fields,
        "filters": _filters(table.filters),
        "replacements": [{"field": r.field, "from": r.from_value, "to": r.to_value} for r in table.replacements],
        "options": {"applyDeletes": table.apply_deletes, "picklists": table.picklists.value},
    }


def _filters(filters: FilterSet) -> dict[str, Any]:
    rules = []
    for rule in filters.rules:
        entry: dict[str, Any] = {"field": rule.field, "operator": rule.operator}
        if rule.value is not None:
            entry["value"] = list(rule.value) if isinstance(rule.value, tuple) else rule.value
        rules.append(entry)
    return {"combine": filters.combine.value, "deleteFilteredOut": filters.delete_filtered_out, "rules": rules}
