"""Which way a table's first load (or a replay) travels: as files through SFTP, or through the API.

Adobe's integration loads tables of more than 500,000 rows once as files imported by a Campaign workflow; the
API then carries the increments. The operator may force either path per table (`options.initialLoad`). The
row count comes from Dataverse's RetrieveTotalRecordCount, a snapshot taken within the last 24 hours that may
lag behind the table: the choice says so, so that the run summary does too.
"""

from __future__ import annotations

import dataclasses

from shared.config.model import InitialLoad

FILE = "file"
API = "api"
COUNT_LAGS = "RetrieveTotalRecordCount is a snapshot that may lag by up to 24 hours"


@dataclasses.dataclass(frozen=True)
class PathChoice:
    path: str  # FILE | API
    note: str  # why, for the run summary (no data, counts only)

    @property
    def by_file(self) -> bool:
        return self.path == FILE


def needs_count(mode: InitialLoad) -> bool:
    """Only `auto` looks at the table's size."""
    return mode is InitialLoad.AUTO


def choose_initial_path(mode: InitialLoad, count: int | None, threshold: int) -> PathChoice:
    """Over the threshold by file, at or under it by API, unless the mapping forces one."""
    if mode is InitialLoad.FILE:
        return PathChoice(FILE, "initial load by file: forced by options.initialLoad")
    if mode is InitialLoad.API:
        return PathChoice(API, "initial load through the API: forced by options.initialLoad")
    if count is None:
        raise ValueError("options.initialLoad 'auto' needs the table's row count")
    if count > threshold:
        return PathChoice(FILE, f"initial load by file: {count:,} rows counted, over INITIAL_TRANSFER_THRESHOLD "
                                f"{threshold:,} ({COUNT_LAGS})")  # fmt: skip
    return PathChoice(API, f"initial load through the API: {count:,} rows counted, not over "
                           f"INITIAL_TRANSFER_THRESHOLD {threshold:,} ({COUNT_LAGS})")  # fmt: skip
