"""Deterministic fake contacts, computed from (seed, index) on demand.

Seeding a million contacts stores nothing per row: a seeded row is a pure function of its index,
and its GUID encodes the index (low 48 bits = an invertible affine map of the index), so a GUID
in a URL finds its row without any lookup table. Names, e-mails (reserved example.* domains,
RFC 2606) and phone numbers (the fictional 555-01xx range) are fake by construction.
"""

from __future__ import annotations

import time
from typing import Any

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


def contact(index: int, seed: int, version: int) -> dict[str, Any]:
    """Seeded contact `index`: every column of the contact table, deterministic in (seed, index)."""
    h1 = _mix((seed << 40) ^ index)
    h2 = _mix(h1 ^ 0xC0FFEE)
    n_first = h1 % len(FIRST_NAMES)
    n_last = (h1 >> 8) % len(LAST_NAMES)
    first = FIRST_NAMES[n_first]
    last = LAST_NAMES[n_last]
    created = (h1 >> 20) % (5 * 365 * 86400)
    inactive = (h2 >> 16) % 20 == 0  # about 5 % inactive
    flags = h2 >> 24
    return {
        "contactid": _guid(h1, index),
        "firstname": first,
        "lastname": last,
        "fullname": f"{first} {last}",
        "emailaddress1": f"{_FIRST_LOWER[n_first]}.{_LAST_LOWER[n_last]}.{index}@{DOMAINS[index % 3]}",
        "telephone1": f"+1 {200 + (h2 >> 32) % 700} 555 01{(h2 >> 44) % 100:02d}",
        "mobilephone": None if h2 % 4 == 0 else f"+1 {300 + (h1 >> 36) % 600} 555 02{(h1 >> 48) % 100:02d}",
        "address1_city": CITIES[(h1 >> 16) % len(CITIES)],
        "birthdate": _BIRTHDATES[h2 % len(_BIRTHDATES)],
        "gendercode": (None, 1, 2)[(h1 >> 4) % 3],
        "preferredcontactmethodcode": 1 + (h1 >> 12) % 5,
        "donotemail": flags % 17 == 0,
        "donotbulkemail": flags % 7 == 0,
        "donotphone": flags % 11 == 0,
        "donotfax": flags % 3 != 0,
        "donotpostalmail": flags % 13 == 0,
        "donotbulkpostalmail": flags % 9 == 0,
        "donotsendmm": flags % 19 == 0,
        "followemail": flags % 5 != 0,
        "statecode": 1 if inactive else 0,
        "statuscode": 2 if inactive else 1,
        "createdon": _iso_2018(created),
        "modifiedon": _iso_2018(created + (h2 >> 40) % (200 * 86400)),
        "versionnumber": version,
        "parentcustomerid": None,
    }
