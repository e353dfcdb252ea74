"""A valid sync configuration document to start each test from (a fresh deep copy every time)."""

from __future__ import annotations

import copy
from typing import Any

_GOOD: dict[str, Any] = {
    "version": 1,
    "ingress": {
        "tables": [
            {
                "name": "contacts",
                "source": {"entity": "contact", "entitySet": "contacts", "primaryKey": "contactid"},
                "target": {
                    "resource": "profile",
                    "keyAttribute": "externalId",
                    "lookupFilter": "byExternalId",
                    "lookupParameter": "externalId_parameter",
                },
                "fields": [
                    {"source": "firstname", "target": "firstName"},
                    {"source": "emailaddress1", "target": "email", "applyUpdates": False},
                    {"source": "gendercode", "target": "gender", "sourceType": "Picklist", "targetType": "string"},
                    {"source": "donotbulkemail", "target": "denyListEmail", "sourceType": "Boolean"},
                ],
                "filters": {"combine": "or", "rules": [{"field": "statecode", "operator": "eq", "value": 0}]},
                "replacements": [{"field": "gendercode", "from": 1, "to": "male"}],
                "options": {"applyDeletes": True},
            },
            {
                "source": {
                    "entity": "new_loyaltycard",
                    "entitySet": "new_loyaltycards",
                    "primaryKey": "new_loyaltycardid",
                },
                "target": {
                    "resource": "cusLoyaltyCard",
                    "keyAttribute": "crmId",
                    "lookupFilter": "byCrmId",
                    "lookupParameter": "crmId_parameter",
                },
                "fields": [
                    {"source": "new_cardnumber", "target": "cardNumber"},
                    {"source": "new_points", "target": "points", "sourceType": "Integer", "targetType": "long"},
                ],
                "options": {"picklists": "label"},
            },
        ]
    },
    "egress": {
        "enabled": True,
        "events": {"send": True, "click": True},
        "activityTables": {"send": "new_campaignsends", "click": "new_campaignclicks"},
        "followUpTasks": {"onClick": True, "dueInDays": 3},
    },
    "optOut": {"mode": "toCampaign", "pairs": [{"dynamics": "donotbulkemail", "campaign": "blackListEmail"}]},
}


def good() -> dict[str, Any]:
    return copy.deepcopy(_GOOD)


def contacts(doc: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = doc["ingress"]["tables"][0]
    return table


def cards(doc: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = doc["ingress"]["tables"][1]
    return table


def custom_table(index: int) -> dict[str, Any]:
    """A valid custom table mapping, distinct per index."""
    return {
        "source": {"entity": f"new_t{index}", "entitySet": f"new_t{index}s", "primaryKey": f"new_t{index}id"},
        "target": {
            "resource": f"cusT{index}",
            "keyAttribute": "crmId",
            "lookupFilter": "byCrmId",
            "lookupParameter": "p",
        },
        "fields": [{"source": "new_name", "target": "name"}],
    }
