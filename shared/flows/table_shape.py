"""A table mapping checked against both instances and resolved into its TableShape, for every flow that moves
the table's rows (ingress through the API, initial transfer through files), so a row looks the same whichever
way it travels."""

from __future__ import annotations

from shared.clients.campaign import PROFILE_AND_SERVICES_EXT, CampaignClient, CampaignConfigError
from shared.clients.dataverse import DataverseClient
from shared.config.model import PicklistMode, TableMapping
from shared.core.shape import TableShape
from shared.http import ApiError, Outcome

CHOICE_TYPES = ("Picklist", "State", "Status")


class MappingMismatch(Exception):
    """The mapping does not fit the Dynamics or Campaign instance: nothing is written."""


def resolve_shape(
    table: TableMapping,
    dataverse: DataverseClient,
    campaign: CampaignClient,
    *,
    hash_exclude: frozenset[str] = frozenset(),
) -> TableShape:
    """Check the mapping against both instances before any write; every problem is reported at once.

    `hash_exclude`: attributes left out of the payload hashes (opt-outs another path writes, see optout_ingress)."""
    problems: list[str] = []
    dataverse.require_change_tracking(table.entity)  # names the table and how to enable it
    actual, missing = dataverse.column_types(table.entity, table.source_attributes())
    problems += [f"Dataverse table '{table.entity}' has no column '{name}'" for name in missing]
    declared = {f.source: f.source_type for f in table.fields if f.source_type}
    source = {name: declared.get(name) or kind for name, kind in actual.items()}
    labels: dict[str, dict[int, str]] = {}
    if table.picklists is PicklistMode.LABEL:
        for name, kind in source.items():
            if kind in CHOICE_TYPES:
                labels[name] = dict(dataverse.picklist_labels(table.entity, name))
    try:
        resource_type = campaign.resource_type(table.resource, root=PROFILE_AND_SERVICES_EXT)
    except ApiError as exc:
        if exc.outcome is not Outcome.RECORD_ERROR:
            raise  # unreachable or throttled: not a mapping problem
        raise MappingMismatch(f"Campaign resource '{table.resource}' cannot be read: {exc.describe()}") from exc
    # Unknown, read-only and type-mismatched targets; opt-out fields resolved to the instance's
    # spelling (denyList* or blackList*), whichever the configuration used.
    expected: dict[str, str | None] = {field.target: field.target_type for field in table.fields}
    expected[table.key_attribute] = None
    try:
        instance_names = campaign.validate_targets(table.resource, expected, root=PROFILE_AND_SERVICES_EXT)
    except CampaignConfigError as exc:
        problems.extend(f"Campaign resource '{table.resource}': {problem}" for problem in exc.problems)
        instance_names = {}
    technical = resource_type.res_types  # long, double, ...: what conversion speaks
    target = {
        field.target: field.target_type or technical[instance_names[field.target]]
        for field in table.fields
        if field.target in instance_names
    }
    try:
        campaign.validate_filter(table.resource, table.lookup_filter, table.lookup_parameter,
                                      root=PROFILE_AND_SERVICES_EXT)  # fmt: skip
    except CampaignConfigError as exc:  # names the filter and what the instance has
        problems.append(str(exc))
    if problems:
        raise MappingMismatch(f"mapping '{table.name}' does not fit the instances: " + "; ".join(problems))
    renames = {configured: name for configured, name in instance_names.items() if configured != name}
    lengths = {name: attr.length for name, attr in resource_type.details.items() if attr.length is not None}
    return TableShape(table, source_types=source, target_types=target, labels=labels, renames=renames,
                      max_lengths=lengths, hash_exclude=hash_exclude)  # fmt: skip
