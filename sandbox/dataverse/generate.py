"""Deterministic fake contacts, computed from (seed, index) on demand.

Seeding a million contacts stores nothing per row: a seeded row is a pure function of its index,
and its GUID encodes the index (low 48 bits = an invertible affine map of the index), so a GUID
in a URL finds its row without any lookup table. Names, e-mails (reserved example.* domains,
RFC 2606) and phone numbers (the fictional 555-01xx range) are fake by construction.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from sandbox.dataverse.users import SEED_USER

_M64 = (1 << 64) - 1
_M48 = (1 << 48) - 1
_A = 0x9E3779B97F4B  # odd, so invertible modulo 2**48
_A_INV = pow(_A, -1, 1 << 48)
_B = 0x5DEECE66D1B7

FIRST_NAMES = (  # noqa: SIM905 - a word list reads better than a column of strings
    "Ada Alan Alice Amara Anders Anna Arjun Aya Beatriz Ben Bianca Carlos Chen Chloe Clara Daniel Dara "
    "Diego Elena Elias Emeka Emma Erik Fatima Felix Freya Gabriel Grace Hana Hugo Ines Isaac Ivan Jade "
    "James Jana Javier Jin Johan Julia Kai Karim Kenji Lara Leila Leo Lina Lucas Luca Maja Marco Maria "
    "Mateo Maya Mei Mila Nadia Naomi Nico Nina Noah Nora Olga Omar Oscar Paula Pedro Priya Rafael Rania "
    "Rosa Ruth Sami Sara Sean Sofia Stefan Tara Theo Tomas Uma Vera Victor Wei Yara Yusuf Zara Zoe"
).split()
LAST_NAMES = (  # noqa: SIM905 - a word list reads better than a column of strings
    "Abbott Acosta Adams Aguilar Ahmed Alvarez Andersen Bauer Becker Bell Berg Blake Brandt Brooks "
    "Campbell Carter Castillo Chang Costa Cruz Dahl Das Diaz Dubois Eriksen Evans Fischer Fleming Garcia "
    "Gomez Graham Gupta Hansen Hart Hayes Herrera Hoffmann Holm Ito Jansen Jensen Kaur Keller Khan Kim "
    "Klein Kowalski Lambert Larsen Lee Lopez Marsh Martin Meyer Moreau Morris Nakamura Nguyen Novak Olsen "
    "Ortiz Park Patel Perez Petrov Quinn Ramos Reed Reyes Rossi Russo Sato Schmidt Silva Singh Sousa "
    "Suzuki Tan Torres Varga Vogel Wagner Walsh Weber Wong Young Zhang Ziegler"
).split()
CITIES = (  # noqa: SIM905 - a word list reads better than a column of strings
    "Aarhus Bergen Bilbao Bristol Dublin Graz Lille Lyon Malmo Porto Riga Tartu Turin Utrecht Vienna"
).split()
DOMAINS = ("example.com", "example.org", "example.net")

_FIRST_LOWER = [n.lower() for n in FIRST_NAMES]
_LAST_LOWER = [n.lower() for n in LAST_NAMES]
_EPOCH_2018 = 1514764800  # 2018-01-01T00:00:00Z
# Precomputed date and time-of-day strings: formatting dominates the cost of a generated row.
_DAYS = [time.strftime("%Y-%m-%d", time.gmtime(_EPOCH_2018 + d * 86400)) for d in range(6 * 366)]
_MINUTES = [f"T{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_BIRTHDATES = [f"{y:04d}-{m:02d}-{d:02d}" for y in range(1950, 2005) for m in range(1, 13) for d in range(1, 29)]


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _guid(h: int, index: int) -> str:
    return "%08x-%04x-4%03x-%04x-%012x" % (  # noqa: UP031 - measurably faster than an f-string here
        h >> 32,
        (h >> 16) & 0xFFFF,
        h & 0x0FFF,
        0x8000 | ((h >> 12) & 0x3FFF),
        (index * _A + _B) & _M48,
    )


def guid_for(index: int, seed: int) -> str:
    """The GUID of seeded row `index`: random-looking, version-4 shaped, index recoverable."""
    return _guid(_mix((seed << 40) ^ index), index)


def index_of(guid: str) -> int | None:
    """The index encoded in a GUID's last group (the caller checks it against guid_for)."""
    if len(guid) != 36:
        return None
    try:
        low = int(guid[24:], 16)
    except ValueError:
        return None
    return ((low - _B) * _A_INV) & _M48


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _iso_2018(offset: int) -> str:
    """ISO timestamp `offset` seconds after 2018-01-01T00:00:00Z."""
    seconds = offset % 86400
    return f"{_DAYS[offset // 86400]}{_MINUTES[seconds // 60]}{seconds % 60:02d}Z"


# One expression per column over (i = index, h1, h2 = its hashes, v = version). A read compiles the
# expressions of its $select into one function (cached), so it computes only those columns and pays
# no call per column: generation is most of the cost of serving a page.
_EXPRESSIONS: dict[str, str] = {
    "contactid": "_guid(h1, i)",
    "firstname": "FIRST_NAMES[h1 % NF]",
    "lastname": "LAST_NAMES[(h1 >> 8) % NL]",
    "fullname": "FIRST_NAMES[h1 % NF] + ' ' + LAST_NAMES[(h1 >> 8) % NL]",
    "emailaddress1": "f'{_FIRST_LOWER[h1 % NF]}.{_LAST_LOWER[(h1 >> 8) % NL]}.{i}@{DOMAINS[i % 3]}'",
    "telephone1": "f'+1 {200 + (h2 >> 32) % 700} 555 01{(h2 >> 44) % 100:02d}'",
    "mobilephone": "None if h2 % 4 == 0 else f'+1 {300 + (h1 >> 36) % 600} 555 02{(h1 >> 48) % 100:02d}'",
    "address1_city": "CITIES[(h1 >> 16) % len(CITIES)]",
    "birthdate": "_BIRTHDATES[h2 % len(_BIRTHDATES)]",
    "gendercode": "(None, 1, 2)[(h1 >> 4) % 3]",
    "preferredcontactmethodcode": "1 + (h1 >> 12) % 5",
    "donotemail": "(h2 >> 24) % 17 == 0",
    "donotbulkemail": "(h2 >> 24) % 7 == 0",
    "donotphone": "(h2 >> 24) % 11 == 0",
    "donotfax": "(h2 >> 24) % 3 != 0",
    "donotpostalmail": "(h2 >> 24) % 13 == 0",
    "donotbulkpostalmail": "(h2 >> 24) % 9 == 0",
    "donotsendmm": "(h2 >> 24) % 19 == 0",
    "followemail": "(h2 >> 24) % 5 != 0",
    "statecode": "1 if (h2 >> 16) % 20 == 0 else 0",  # about 5 % inactive
    "statuscode": "2 if (h2 >> 16) % 20 == 0 else 1",
    "createdon": "_iso_2018((h1 >> 20) % SPAN)",
    "modifiedon": "_iso_2018((h1 >> 20) % SPAN + (h2 >> 40) % (200 * 86400))",
    "versionnumber": "v",
    "parentcustomerid": "None",
    # Generated rows were created, last changed and are owned by one named Dynamics user (users.SEED_USER).
    "createdby": "SEED_USER",
    "modifiedby": "SEED_USER",
    "modifiedonbehalfby": "None",
    "ownerid": "SEED_USER",
}
COLUMNS = tuple(_EXPRESSIONS)
_NAMESPACE = {
    "_mix": _mix,
    "_guid": _guid,
    "_iso_2018": _iso_2018,
    "FIRST_NAMES": FIRST_NAMES,
    "LAST_NAMES": LAST_NAMES,
    "_FIRST_LOWER": _FIRST_LOWER,
    "_LAST_LOWER": _LAST_LOWER,
    "CITIES": CITIES,
    "DOMAINS": DOMAINS,
    "_BIRTHDATES": _BIRTHDATES,
    "NF": len(FIRST_NAMES),
    "NL": len(LAST_NAMES),
    "SPAN": 5 * 365 * 86400,
    "SEED_USER": SEED_USER.systemuserid,
}


@functools.lru_cache(maxsize=256)
def _row_function(columns: tuple[str, ...]) -> Callable[[int, int, int], dict[str, Any]]:
    # Columns added later through the metadata API are null on generated rows.
    items = ", ".join(f"{name!r}: {_EXPRESSIONS.get(name, 'None')}" for name in columns)
    source = (
        f"def row(i, seed, v):\n    h1 = _mix((seed << 40) ^ i)\n    h2 = _mix(h1 ^ 0xC0FFEE)\n    return {{{items}}}\n"
    )
    namespace = dict(_NAMESPACE)
    exec(compile(source, f"<contact row {len(columns)} columns>", "exec"), namespace)  # our own expressions only
    function: Callable[[int, int, int], dict[str, Any]] = namespace["row"]
    return function


def contact(index: int, seed: int, version: int, columns: tuple[str, ...] = COLUMNS) -> dict[str, Any]:
    """Seeded contact `index`, deterministic in (seed, index): the given columns (default all)."""
    return _row_function(columns)(index, seed, version)
