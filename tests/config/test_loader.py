"""Loading: inline JSON vs a file, unreadable input, the typed model with its defaults, round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.config import ConfigError, dump_sync_config, load_sync_config, parse_sync_config
from shared.config.model import (
    Combine,
    EgressConfig,
    FieldMapping,
    FilterRule,
    OptOutMode,
    OptOutPair,
    PicklistMode,
    Replacement,
)
from tests.config.docs import good

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "sync.example.json"


def only_problem(value: str, base_dir: Path | None = None) -> tuple[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_sync_config(value, base_dir)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    return problem.path, problem.message


def test_inline_json_and_a_file_give_the_same_config(tmp_path: Path) -> None:
    text = json.dumps(good(), indent=2)
    (tmp_path / "sync.json").write_text(text, encoding="utf-8")
    inline = load_sync_config("  " + text)
    assert load_sync_config("sync.json", base_dir=tmp_path) == inline
    assert load_sync_config(str(tmp_path / "sync.json")) == inline


def test_relative_path_without_base_dir_is_relative_to_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "sync.json").write_text(json.dumps(good()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_sync_config("conf/sync.json").table("contacts").resource == "profile"


def test_a_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    (tmp_path / "sync.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(good()).encode())
    assert load_sync_config("sync.json", base_dir=tmp_path).contacts is not None


def test_missing_file_is_one_problem_naming_the_path(tmp_path: Path) -> None:
    path, message = only_problem("config/nope.json", base_dir=tmp_path)
    assert path == "$"
    assert message == f"file not found: {tmp_path / 'config' / 'nope.json'}"


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    path, message = only_problem(str(tmp_path))
    assert path == "$" and message.startswith(f"cannot read {tmp_path}")


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{\n  "version": 1,\n  "ingress": {"tables": [}\n}\n', encoding="utf-8")
    path, message = only_problem("bad.json", base_dir=tmp_path)
    assert path == "$"
    assert message.startswith(f"invalid JSON ({tmp_path / 'bad.json'}) at line 3, column 26:")


def test_malformed_inline_json() -> None:
    assert only_problem('{"version": 1,')[1].startswith("invalid JSON (inline JSON) at line 1, column 15:")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(constant: str) -> None:
    assert only_problem('{"version": ' + constant + "}") == (
        "$",
        f"invalid JSON (inline JSON): {constant} is not allowed",
    )


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_value(value: str) -> None:
    assert only_problem(value)[0] == "$"


def test_a_key_written_twice_is_a_problem_not_a_silent_override() -> None:
    text = json.dumps(good()).replace('"name": "contacts"', '"name": "contacts", "name": "people"', 1)
    with pytest.raises(ConfigError) as caught:
        load_sync_config(text)
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("$.ingress.tables[0].name", "key written twice; write each key once")
    ]


def test_the_model_carries_values_and_defaults() -> None:
    config = parse_sync_config(good())
    contacts, cards = config.tables
    assert config.contacts is contacts and config.custom_tables == (cards,)
    assert contacts.fields[1] == FieldMapping("emailaddress1", "email", apply_updates=False)
    assert contacts.fields[2] == FieldMapping("gendercode", "gender", True, "Picklist", "string")
    assert contacts.filters.combine is Combine.OR
    assert contacts.filters.rules == (FilterRule("statecode", "eq", 0),)
    assert contacts.filters.delete_filtered_out is False
    assert contacts.replacements == (Replacement("gendercode", 1, "male"),)
    assert (contacts.apply_deletes, contacts.picklists, contacts.enabled) == (True, PicklistMode.VALUE, True)
    assert contacts.source_attributes() == (
        "contactid",
        "firstname",
        "emailaddress1",
        "gendercode",
        "donotbulkemail",
        "statecode",
    )
    assert cards.name == "new_loyaltycards"  # defaults to the entity set
    assert (cards.apply_deletes, cards.picklists) == (False, PicklistMode.LABEL)
    assert cards.filters.rules == () and cards.replacements == ()
    assert config.egress == EgressConfig(
        enabled=True,
        events=frozenset({"send", "click"}),
        activity_tables={"send": "new_campaignsends", "click": "new_campaignclicks"},
        task_on_click=True,
        task_on_bounce=False,
        task_due_days=3,
    )
    assert config.opt_out.mode is OptOutMode.TO_CAMPAIGN
    assert config.opt_out.pairs == (OptOutPair("donotbulkemail", "blackListEmail"),)


def test_list_filter_values_become_tuples() -> None:
    doc = good()
    doc["ingress"]["tables"][0]["filters"]["rules"] = [{"field": "statecode", "operator": "in", "value": [0, 1]}]
    assert parse_sync_config(doc).tables[0].filters.rules == (FilterRule("statecode", "in", (0, 1)),)


def test_egress_and_opt_out_blocks_are_optional() -> None:
    doc = good()
    del doc["egress"], doc["optOut"]
    config = parse_sync_config(doc)
    assert config.egress == EgressConfig()
    assert config.opt_out.mode is OptOutMode.DISABLED


def test_round_trip_through_dump() -> None:
    config = parse_sync_config(good())
    dumped = dump_sync_config(config)
    assert parse_sync_config(json.loads(json.dumps(dumped))) == config


def test_the_shipped_example_validates_and_round_trips() -> None:
    config = load_sync_config(str(EXAMPLE))
    assert [t.name for t in config.tables] == ["contacts", "loyaltycards"]
    contacts, cards = config.tables
    assert (contacts.resource, contacts.key_attribute, contacts.lookup_filter) == (
        "profile",
        "externalId",
        "byExternalId",
    )
    assert (cards.entity_set, cards.resource, cards.key_attribute) == ("new_loyaltycards", "cusLoyaltyCard", "crmId")
    assert (cards.lookup_filter, cards.lookup_parameter) == ("byCrmId", "crmId_parameter")
    assert {f.source: f.target for f in cards.fields} == {
        "new_cardnumber": "cardNumber",
        "new_points": "points",
        "new_tier": "tier",
        "new_validuntil": "validUntil",
        "_new_contactid_value": "contactId",
    }
    assert ("donotbulkemail", "denyListEmail") in {(f.source, f.target) for f in contacts.fields}
    assert parse_sync_config(dump_sync_config(config)) == config


def test_the_documented_examples_validate() -> None:
    """docs/mapping.md's complete example loads, and its filter snippet is a valid filters block."""
    text = (REPO / "docs" / "mapping.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    complete = next(b for b in blocks if '"version": 1' in b)
    config = load_sync_config(complete)
    assert [t.name for t in config.tables] == ["contacts", "loyaltycards"]
    snippet = next(b for b in blocks if b.lstrip().startswith('"filters"'))
    doc = good()
    doc["ingress"]["tables"][0]["filters"] = json.loads("{" + snippet + "}")["filters"]
    assert parse_sync_config(doc).tables[0].filters.delete_filtered_out is True
