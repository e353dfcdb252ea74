"""The organisation's users: the application user of each registered app, and a few named Dynamics users.

An app registration acts in Dataverse through its application user (PA authenticate-oauth.md, "Connect as
an app"); WhoAmI answers that user's id. Changes made through the control API are made "as a Dynamics user",
by default DEFAULT_USER. Ids are deterministic so tests and separate processes agree on them.
"""

from __future__ import annotations

import dataclasses
import uuid

NAMESPACE = uuid.UUID("9b0c6a0e-5a8e-4f55-9e8c-d365d365d365")


def app_user_id(client_id: str) -> str:
    """The systemuserid of the application user bound to app registration `client_id`."""
    return str(uuid.uuid5(NAMESPACE, f"applicationuser:{client_id.lower()}"))


@dataclasses.dataclass(frozen=True)
class User:
    systemuserid: str
    fullname: str
    domainname: str
    applicationid: str | None = None  # set for application users

    @property
    def is_application_user(self) -> bool:
        return self.applicationid is not None


def _named(key: str, fullname: str) -> User:
    # Fictional people on a reserved domain (RFC 2606).
    return User(str(uuid.uuid5(NAMESPACE, f"user:{key}")), fullname, f"{key}@example.com")


NAMED_USERS: tuple[User, ...] = (
    _named("dana.marketing", "Dana Marketing"),
    _named("sam.sales", "Sam Sales"),
    _named("alex.service", "Alex Service"),
)
DEFAULT_USER = NAMED_USERS[0]  # who control-API mutations are made by, unless told otherwise
SEED_USER = NAMED_USERS[1]  # creator, modifier and owner of generated rows
BUSINESS_UNIT_ID = str(uuid.uuid5(NAMESPACE, "businessunit"))
ORGANIZATION_ID = str(uuid.uuid5(NAMESPACE, "organization"))


def application_user(client_id: str) -> User:
    return User(app_user_id(client_id), f"# {client_id}", f"{client_id.lower()}@sandbox.invalid", client_id.lower())


def user_row(user: User, version: int, now: str) -> dict[str, object]:
    """A systemusers row (stored form: lookups by id)."""
    first, _, last = user.fullname.partition(" ")
    return {
        "systemuserid": user.systemuserid,
        "fullname": user.fullname,
        "firstname": None if user.is_application_user else first,
        "lastname": user.fullname if user.is_application_user else last,
        "domainname": user.domainname,
        "internalemailaddress": None if user.is_application_user else user.domainname,
        "applicationid": user.applicationid,
        # Application users are non-interactive (accessmode 4) [U: value from the systemuser reference].
        "accessmode": 4 if user.is_application_user else 0,
        "isdisabled": False,
        "createdon": now,
        "modifiedon": now,
        "versionnumber": version,
        "createdby": None,
        "modifiedby": None,
        "modifiedonbehalfby": None,
    }
