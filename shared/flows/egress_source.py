"""Where egress gets its email events: a small interface, and Campaign's SFTP export behind it.

The flow sees an `EventSource`: batches of parsed events (or rows that are not events), each with a `commit` step
it calls once every event of the batch is durable in Dynamics or dead-lettered, and a cursor it stores in its
checkpoint. `FileEventSource` reads the files Campaign's export workflows drop on its SFTP (through FileFeed: name
order, resume by row, archive after the last commit, unreadable files left in place). Another source, for example
Adobe I/O Events' journaling API, would implement the same two methods with its own cursor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from shared.core.delimited import Dialect, Record
from shared.core.events import BadRow, ColumnLayout, EmailEvent
from shared.flows.file_feed import FileFeed, FileFeedCursor, FileStore
from shared.flows.runner import RunContext


@dataclasses.dataclass
class EventBatch:
    source: str  # e.g. the file name
    items: Sequence[EmailEvent | BadRow]  # in source order
    commit: Callable[[], None]  # the source moves past the batch (and archives a finished file)


class EventSource(Protocol):
    def batches(self, cursor: Any, ctx: RunContext, *, save: Callable[[], None]) -> Iterator[EventBatch]:
        """Batches from the cursor on; each must be committed before the next is read. `save` stores the cursor."""
        ...

    def backlog(self, cursor: Any) -> str:
        """What waits, in words (status)."""
        ...


class FileEventSource:
    """Campaign's event export files (docs/campaign-event-export.md) in the SFTP export folder."""

    cursor_type = FileFeedCursor

    def __init__(
        self,
        store: FileStore,
        *,
        folder: str,
        archive_folder: str,
        layout: ColumnLayout,
        pattern: str,
        separator: str = ";",
        batch_size: int = 1000,
    ) -> None:
        self.layout = layout
        self.feed = FileFeed(store, folder=folder, archive_folder=archive_folder, pattern=pattern,
                             dialect=Dialect(separator), required=layout.required_columns(),
                             batch_size=batch_size)  # fmt: skip

    def batches(self, cursor: FileFeedCursor, ctx: RunContext, *, save: Callable[[], None]) -> Iterator[EventBatch]:
        for batch in self.feed.batches(cursor, ctx, save=save):
            items = [
                self.layout.parse(item.values, batch.file, item.line)
                if isinstance(item, Record)
                else BadRow(batch.file, item.line, f"{batch.file} line {item.line}: {item.reason}")
                for item in batch.items
            ]
            yield EventBatch(batch.file, items, batch.commit)

    def backlog(self, cursor: FileFeedCursor) -> str:
        waiting = self.feed.pending(cursor)
        where = f"; reading {cursor.file} after row {cursor.records}" if cursor.file else ""
        unreadable = f"; {len(cursor.failed)} unreadable file(s) left in place" if cursor.failed else ""
        return f"{len(waiting)} file(s) waiting{where}{unreadable}"
