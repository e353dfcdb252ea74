"""Each bad configuration reports exactly the expected problems, at their JSON paths, all at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.config import ConfigError, parse_sync_config
from tests.config.docs import cards, contacts, custom_table, good

Doc = dict[str, Any]
T0 = "$.ingress.tables[0]"
T1 = "$.ingress.tables[1]"


def problems_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_sync_config(doc)
    return [(p.path, p.message) for p in caught.value.problems]


def paths_of(doc: Any) -> list[str]:
    return [path for path, _ in problems_of(doc)]


def _typo_key(d: Doc) -> None:
    contacts(d)["feilds"] = contacts(d).pop("fields")


def _unknown_nested_key(d: Doc) -> None:
    contacts(d)["fields"][1]["applyUpdate"] = True


def _missing_required(d: Doc) -> None:
    del cards(d)["target"]["lookupParameter"]
    del contacts(d)["fields"][0]["target"]


def _wrong_types(d: Doc) -> None:
    contacts(d)["enabled"] = "yes"
    d["egress"]["followUpTasks"]["dueInDays"] = 1.5


def _too_many_custom_tables(d: Doc) -> None:
    d["ingress"]["tables"] += [custom_table(i) for i in range(20)]  # 21 with the loyalty cards


def _too_many_fields(d: Doc) -> None:
    cards(d)["fields"] = [{"source": f"new_c{i}", "target": f"c{i}"} for i in range(51)]


def _entity_mapped_twice(d: Doc) -> None:
    twin = custom_table(1)
    twin["source"]["entity"] = "new_loyaltycard"
    d["ingress"]["tables"].append(twin)


def _second_profile_mapping(d: Doc) -> None:
    extra = custom_table(1)
    extra["target"].update(resource="profile", keyAttribute="externalId")
    d["ingress"]["tables"].append(extra)


def _profile_wrong_source(d: Doc) -> None:
    contacts(d)["source"] = {"entity": "account", "entitySet": "accounts", "primaryKey": "accountid"}


def _profile_wrong_key(d: Doc) -> None:
    contacts(d)["target"]["keyAttribute"] = "crmId"


def _custom_resource_name(d: Doc) -> None:
    cards(d)["target"]["resource"] = "LoyaltyCard"


def _two_sources_one_target(d: Doc) -> None:
    contacts(d)["fields"].append({"source": "nickname", "target": "firstName"})


def _field_onto_key(d: Doc) -> None:
    cards(d)["fields"].append({"source": "new_loyaltycardid", "target": "crmId"})


def _source_twice(d: Doc) -> None:
    contacts(d)["fields"].append({"source": "firstname", "target": "middleName"})


def _unknown_operator(d: Doc) -> None:
    contacts(d)["filters"]["rules"][0]["operator"] = "like"


def _in_needs_list(d: Doc) -> None:
    contacts(d)["filters"]["rules"] = [
        {"field": "statecode", "operator": "in", "value": []},
        {"field": "statuscode", "operator": "notin", "value": 2},
        {"field": "address1_city", "operator": "in"},
    ]


def _null_takes_no_value(d: Doc) -> None:
    contacts(d)["filters"]["rules"] = [{"field": "emailaddress1", "operator": "notnull", "value": "x"}]


def _scalar_operators_need_scalar(d: Doc) -> None:
    contacts(d)["filters"]["rules"] = [
        {"field": "statecode", "operator": "eq"},
        {"field": "statecode", "operator": "lt", "value": [1, 2]},
        {"field": "lastname", "operator": "contains", "value": 5},
    ]


def _replacement_unmapped_field(d: Doc) -> None:
    contacts(d)["replacements"].append({"field": "statecode", "from": 0, "to": "active"})


def _replacement_duplicate(d: Doc) -> None:
    contacts(d)["replacements"] += [
        {"field": "gendercode", "from": "1", "to": "M"},  # "1" means the same as 1
        {"field": "donotbulkemail", "from": True, "to": 1},
        {"field": "donotbulkemail", "from": "TRUE", "to": 2},
    ]


def _egress_without_events(d: Doc) -> None:
    d["egress"]["events"] = {"send": False}
    d["egress"]["followUpTasks"] = {"onBounce": True}


def _egress_missing_activity_table(d: Doc) -> None:
    d["egress"]["events"]["bounce"] = True


def _opt_out_without_pairs(d: Doc) -> None:
    d["optOut"] = {"mode": "bidirectional"}


def _opt_out_bad_fields(d: Doc) -> None:
    d["optOut"]["pairs"] = [
        {"dynamics": "donotbulkemail", "campaign": "blackListEmail"},
        {"dynamics": "emailaddress1", "campaign": "denyListPhone"},
        {"dynamics": "donotbulkemail", "campaign": "optedOut"},
        {"dynamics": "donotemail", "campaign": "denyListEmail"},  # same field as blackListEmail
    ]


def _opt_out_not_in_contact_mapping(d: Doc) -> None:
    d["optOut"]["pairs"].append({"dynamics": "donotphone", "campaign": "denyListPhone"})


def _opt_out_to_dynamics_overwritten_by_ingress(d: Doc) -> None:
    d["optOut"]["mode"] = "toDynamics"


def _opt_out_without_contact_mapping(d: Doc) -> None:
    d["ingress"]["tables"].pop(0)


def _unknown_types(d: Doc) -> None:
    contacts(d)["fields"][0].update(sourceType="Text", targetType="varchar")


def _incompatible_types(d: Doc) -> None:
    contacts(d)["fields"][0].update(sourceType="Date", targetType="boolean")
    cards(d)["fields"].append({"source": "new_tier", "target": "tier", "sourceType": "Picklist", "targetType": "long"})


def _lookup_filter_prefix(d: Doc) -> None:
    cards(d)["target"]["lookupFilter"] = "crmId"


def _bad_names(d: Doc) -> None:
    contacts(d)["name"] = "Contacts!"
    cards(d)["source"]["entity"] = "New_LoyaltyCard"


def _duplicate_names(d: Doc) -> None:
    cards(d)["name"] = "contacts"


def _default_name_unusable(d: Doc) -> None:
    cards(d)["source"]["entitySet"] = "New_LoyaltyCards"


def _version_and_root(d: Doc) -> None:
    d["version"] = 2
    d["ingres"] = {}


CASES: list[tuple[str, Callable[[Doc], None], list[str]]] = [
    ("typo in a table key", _typo_key, [f"{T0}.fields", f"{T0}.feilds"]),
    ("unknown field key", _unknown_nested_key, [f"{T0}.fields[1].applyUpdate"]),
    ("missing required keys", _missing_required, [f"{T0}.fields[0].target", f"{T1}.target.lookupParameter"]),
    ("wrong value types", _wrong_types, [f"{T0}.enabled", "$.egress.followUpTasks.dueInDays"]),
    ("21 custom tables", _too_many_custom_tables, ["$.ingress.tables"]),
    ("51 fields", _too_many_fields, [f"{T1}.fields"]),
    ("Dynamics table mapped twice", _entity_mapped_twice, ["$.ingress.tables[2].source.entity"]),
    ("two profile mappings", _second_profile_mapping, ["$.ingress.tables[2].target.resource"]),
    (
        "profile from another table",
        _profile_wrong_source,
        [f"{T0}.source.entity", f"{T0}.source.entitySet", f"{T0}.source.primaryKey"],
    ),
    ("profile keyed elsewhere", _profile_wrong_key, [f"{T0}.target.keyAttribute"]),
    ("custom resource without cus", _custom_resource_name, [f"{T1}.target.resource"]),
    ("two sources onto one target", _two_sources_one_target, [f"{T0}.fields[4].target"]),
    ("a field onto the key attribute", _field_onto_key, [f"{T1}.fields[2].target"]),
    ("a source mapped twice", _source_twice, [f"{T0}.fields[4].source"]),
    ("unknown filter operator", _unknown_operator, [f"{T0}.filters.rules[0].operator"]),
    (
        "in/notin without a list",
        _in_needs_list,
        [f"{T0}.filters.rules[0].value", f"{T0}.filters.rules[1].value", f"{T0}.filters.rules[2].value"],
    ),
    ("null with a value", _null_takes_no_value, [f"{T0}.filters.rules[0].value"]),
    (
        "scalar operators without a scalar",
        _scalar_operators_need_scalar,
        [f"{T0}.filters.rules[0].value", f"{T0}.filters.rules[1].value", f"{T0}.filters.rules[2].value"],
    ),
    ("replacement of an unmapped field", _replacement_unmapped_field, [f"{T0}.replacements[1].field"]),
    ("duplicate replacements", _replacement_duplicate, [f"{T0}.replacements[1].from", f"{T0}.replacements[3].from"]),
    ("egress on with no event", _egress_without_events, ["$.egress.events", "$.egress.followUpTasks.onBounce"]),
    ("egress event without a table", _egress_missing_activity_table, ["$.egress.activityTables.bounce"]),
    ("opt-out without pairs", _opt_out_without_pairs, ["$.optOut.pairs"]),
    (
        "opt-out fields",
        _opt_out_bad_fields,
        [
            "$.optOut.pairs[1].dynamics",
            "$.optOut.pairs[2].dynamics",
            "$.optOut.pairs[2].campaign",
            "$.optOut.pairs[3].campaign",
        ],
    ),
    ("opt-out not in the contact mapping", _opt_out_not_in_contact_mapping, ["$.optOut.pairs[1]"]),
    (
        "toDynamics field written by ingress",
        _opt_out_to_dynamics_overwritten_by_ingress,
        ["$.optOut.pairs[0].campaign"],
    ),
    ("opt-out without a contact mapping", _opt_out_without_contact_mapping, ["$.optOut.mode"]),
    ("unknown field types", _unknown_types, [f"{T0}.fields[0].sourceType", f"{T0}.fields[0].targetType"]),
    ("types that never convert", _incompatible_types, [f"{T0}.fields[0].targetType", f"{T1}.fields[2].targetType"]),
    ("lookup filter without by", _lookup_filter_prefix, [f"{T1}.target.lookupFilter"]),
    ("malformed names", _bad_names, [f"{T0}.name", f"{T1}.source.entity"]),
    ("duplicate mapping names", _duplicate_names, [f"{T1}.name"]),
    ("entity set unusable as a name", _default_name_unusable, [f"{T1}.source.entitySet"]),
    ("version and unknown root key", _version_and_root, ["$.version", "$.ingres"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in CASES], ids=[c[0] for c in CASES])
def test_bad_configuration_reports_exact_paths(mutate: Callable[[Doc], None], expected: list[str]) -> None:
    doc = good()
    mutate(doc)
    assert paths_of(doc) == expected


def test_at_least_twenty_distinct_bad_configurations() -> None:
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


def test_every_problem_is_reported_together() -> None:
    doc = good()
    _unknown_nested_key(doc)  # schema
    _profile_wrong_key(doc)  # semantic
    _field_onto_key(doc)  # semantic
    _null_takes_no_value(doc)  # semantic
    _egress_missing_activity_table(doc)  # semantic
    problems = problems_of(doc)
    assert len(problems) == 5
    assert [p for p, _ in problems] == [
        f"{T0}.target.keyAttribute",
        f"{T0}.fields[1].applyUpdate",
        f"{T0}.filters.rules[0].value",
        f"{T1}.fields[2].target",
        "$.egress.activityTables.bounce",
    ]


def test_error_text_lists_each_problem_on_its_own_line_path_first() -> None:
    doc = good()
    _two_sources_one_target(doc)
    _lookup_filter_prefix(doc)
    _version_and_root(doc)
    with pytest.raises(ConfigError) as caught:
        parse_sync_config(doc)
    lines = str(caught.value).splitlines()
    problem_lines = [line.removeprefix("  - ") for line in lines if line.startswith("  - ")]
    assert len(problem_lines) == len(caught.value.problems) == 4
    assert [line.split(":")[0] for line in problem_lines] == [
        "$.version",
        f"{T0}.fields[4].target",
        f"{T1}.target.lookupFilter",
        "$.ingres",
    ]


def test_messages_are_specific() -> None:
    doc = good()
    _two_sources_one_target(doc)
    _typo_key(doc)
    _too_many_fields(doc)
    _lookup_filter_prefix(doc)
    _null_takes_no_value(doc)
    assert problems_of(doc) == [
        (f"{T0}.fields", "is required"),
        (f"{T0}.filters.rules[0].value", "operator 'notnull' takes no value"),
        (f"{T0}.feilds", "unknown property; did you mean 'fields'?"),
        (f"{T1}.target.lookupFilter", "must be a Campaign filter name starting with 'by'"),
        (f"{T1}.fields", "51 fields; at most 50 are allowed per table"),
    ]


def test_semantic_checks_survive_a_structurally_broken_document() -> None:
    doc = good()
    contacts(doc)["fields"] = "firstname"  # not a list
    cards(doc)["source"] = None
    doc["optOut"]["pairs"] = [17]
    doc["egress"]["events"] = ["send"]
    cards(doc)["fields"].append({"source": "new_points", "target": "balance"})
    # Checks that depend on a broken part stay quiet (no "gendercode is not mapped", no "no event is on");
    # the rest still runs.
    assert paths_of(doc) == [
        f"{T0}.fields",
        f"{T1}.source",
        f"{T1}.fields[2].source",
        "$.egress.events",
        "$.optOut.pairs[0]",
    ]


@pytest.mark.parametrize("document", [[], "text", 3, None])
def test_a_document_that_is_not_an_object(document: Any) -> None:
    assert problems_of(document) == [("$", "must be an object")]


def test_fifty_fields_and_twenty_custom_tables_are_fine() -> None:
    doc = good()
    cards(doc)["fields"] = [{"source": f"new_c{i}", "target": f"c{i}"} for i in range(50)]
    doc["ingress"]["tables"] += [custom_table(i) for i in range(19)]
    config = parse_sync_config(doc)
    assert len(config.custom_tables) == 20
    assert len(config.table("new_loyaltycards").fields) == 50
