"""Reading a Dataverse table through change tracking, resumable page by page, for any flow.

The cursor remembers where a read stands: during a full read (the first one, a replay, or a resync
after an expired delta token) the next link of the last durable page; between reads the delta link
of the last page of the previous read, which is where the next increments start. The reader yields
each page with a `commit` step: the caller makes the page's effects durable, then commits, and only
then does the cursor move and get saved. A run cut anywhere repeats at most one page.

A full read reports no deletes, so one that replaces a delta link (a resync or a replay) marks the
records it meets with its epoch; once it ends, the caller's sweep removes synced records it never
met (deleted in Dynamics meanwhile). The sweep runs before any increment is read.

A table's first full read and a replay may instead be handed to the file path (initial transfer): the
cursor then waits (phase `file-transfer`) until that flow hands it the delta link of its own export's
change-tracking read, and increments start from there.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar

from shared.clients.dataverse import ChangeTrackingExpired, DataverseClient, Page
from shared.flows.counts import Count
from shared.flows.runner import RunContext

log = logging.getLogger("sync.change_feed")

FULL_READ = "initial"  # reading every row (first run, replay, resync)
INCREMENTAL = "incremental"  # reading changes since delta_link
FILE_TRANSFER = "file-transfer"  # handed to the file path: waiting for its delta link


@dataclasses.dataclass
class ChangeFeedCursor:
    """Where a change-tracking read of one table stands."""

    KIND: ClassVar[str] = "change-feed"

    phase: str = FULL_READ
    next_link: str | None = None  # resume point inside the current read
    delta_link: str | None = None  # where the next incremental read starts
    pages: int = 0  # pages done in the current read
    sweep_epoch: int = 0  # set by a full read that replaced a delta link: records it did not meet are swept
    path_pending: bool = True  # a first read or a replay not yet started: choose API or file path first

    # -- reading

    def read_from(self) -> str | None:
        """The link to read from: inside a read its next link, between reads the delta link, else None."""
        return self.next_link or (self.delta_link if self.phase == INCREMENTAL else None)

    def position(self) -> str:
        """Where the next page comes from, as a short stable name (the links themselves are long)."""
        return f"{self.phase}:{self.pages}:{_short(self.read_from())}"

    @property
    def full_read(self) -> bool:
        return self.phase == FULL_READ

    @property
    def path_due(self) -> bool:
        """At the very start of a first read or a replay: the initial-load path is to be chosen."""
        return self.path_pending and self.phase == FULL_READ and self.next_link is None and self.pages == 0

    @property
    def waiting_for_file(self) -> bool:
        return self.phase == FILE_TRANSFER

    @property
    def sweep_due(self) -> bool:
        """A full read that needs its sweep has ended: sweep before reading increments."""
        return bool(self.sweep_epoch) and self.phase == INCREMENTAL

    def advance(self, page: Page) -> bool:
        """The page is durable: move past it. True when the read reached its end (the delta link)."""
        if page.delta_link:
            self.phase, self.delta_link, self.next_link, self.pages = INCREMENTAL, page.delta_link, None, 0
            return True
        self.next_link = page.next_link
        self.pages += 1
        return False

    # -- starting over, handing over

    def start_full_read(self, *, sweep_epoch: int, choose_path: bool = False) -> None:
        """Read every row again (replay, resync); records the read does not meet are swept when it ends.
        `choose_path`: a replay, which may go by file; a resync never does."""
        self.phase, self.next_link, self.delta_link, self.pages = FULL_READ, None, None, 0
        self.sweep_epoch = sweep_epoch
        self.path_pending = choose_path

    def read_through_api(self) -> None:
        """The initial-load path is the API: this read goes on as usual."""
        self.path_pending = False

    def load_by_file(self) -> None:
        """The initial load is handed to the file path: read nothing until `hand_over`."""
        self.phase, self.next_link, self.delta_link, self.pages, self.sweep_epoch = FILE_TRANSFER, None, None, 0, 0
        self.path_pending = False

    def sweep_done(self) -> None:
        self.sweep_epoch = 0

    def hand_over(self, delta_link: str) -> None:
        """Another flow loaded the table up to `delta_link` (initial transfer): continue with increments."""
        self.phase, self.delta_link, self.next_link, self.pages, self.sweep_epoch = INCREMENTAL, delta_link, None, 0, 0
        self.path_pending = False

    # -- storage

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ChangeFeedCursor:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {name: value for name, value in state.items() if name in fields}
        if state and "path_pending" not in state:
            values["path_pending"] = False  # stored before the file path existed: its path was the API
        return cls(**values)

    def describe(self) -> str:
        if self.phase == FILE_TRANSFER:
            return "file-transfer:waiting"
        if self.phase == FULL_READ:
            return f"full-read:page{self.pages}" + (":sweep-pending" if self.sweep_epoch else "")
        return f"incremental:{_short(self.delta_link)}" + (":sweep-pending" if self.sweep_epoch else "")


@dataclasses.dataclass
class FeedPage:
    """One page of changes, and the step that makes the read move past it."""

    rows: list[dict[str, Any]]
    deleted_ids: list[str]
    full_read: bool  # part of a full read: carry every field, report no deletes
    seen_epoch: int  # non-zero in a read that marks what it meets for the sweep
    last: bool  # the last page of the read: committing it reaches the delta link
    _commit: Callable[[], None] = dataclasses.field(repr=False)
    committed: bool = False

    def commit(self) -> None:
        """Call once the page's effects are durable; the cursor then moves and is saved."""
        if self.committed:
            raise RuntimeError("page committed twice")
        self._commit()
        self.committed = True


class ChangeFeed:
    """Yields the pages of one table from a cursor; `save` persists the envelope that holds the cursor."""

    def __init__(
        self,
        dataverse: DataverseClient,
        entity_set: str,
        select: tuple[str, ...],
        *,
        clock: Callable[[], float] = time.time,
        prefetch: int = 0,
    ) -> None:
        self.dataverse = dataverse
        self.entity_set = entity_set
        self.select = select
        self.clock = clock
        self.prefetch = prefetch  # pages fetched ahead by a thread while the caller works on one (0: none)

    def pages(
        self,
        cursor: ChangeFeedCursor,
        ctx: RunContext,
        *,
        save: Callable[[], None],
        sweep: Callable[[int], None] | None = None,
    ) -> Generator[FeedPage, None, None]:
        """Pages from the cursor until the read reaches its delta link (then the generator ends).

        Raises OutOfTime (through ctx) before fetching a page once the budget is spent; restarts once as
        a full read when the delta token expired; runs `sweep(epoch)` when a full read that needs one
        has ended."""
        if cursor.waiting_for_file:
            raise RuntimeError("the table is handed to the file path: nothing to read until it hands back")
        restarted = False
        while True:
            self._sweep_if_due(cursor, ctx, save, sweep)
            link = cursor.read_from()
            changes: Generator[Page, None, None] = self.dataverse.iter_changes(self.entity_set, list(self.select), link)
            if self.prefetch:
                changes = prefetched(changes, depth=self.prefetch)
            try:
                while True:
                    ctx.check_time()
                    page = next(changes, None)
                    if page is None:
                        break
                    feed_page = FeedPage(
                        rows=page.rows,
                        deleted_ids=[str(i).lower() for i in page.deleted_ids],
                        full_read=cursor.full_read,
                        seen_epoch=cursor.sweep_epoch,
                        last=page.delta_link is not None,
                        _commit=functools.partial(self._advance, cursor, page, ctx, save),
                    )
                    yield feed_page
                    if not feed_page.committed:
                        raise RuntimeError("a page must be committed before the next one is read")
            except ChangeTrackingExpired:
                if restarted:
                    raise
                restarted = True
                self._resync(cursor, ctx, save)
                continue
            finally:
                changes.close()
            self._sweep_if_due(cursor, ctx, save, sweep)
            return

    def _advance(
        self,
        cursor: ChangeFeedCursor,
        page: Page,
        ctx: RunContext,
        save: Callable[[], None],
    ) -> None:
        cursor.advance(page)
        save()
        ctx.cursor_to = cursor.describe()
        ctx.heartbeat()

    def _resync(self, cursor: ChangeFeedCursor, ctx: RunContext, save: Callable[[], None]) -> None:
        log.warning(
            "change_feed.resync entity_set=%s reason=change-tracking token expired (0x80044352); full read",
            self.entity_set,
        )
        ctx.note("delta token expired: full read started")
        ctx.counts[Count.RESYNCS] += 1
        cursor.start_full_read(sweep_epoch=int(self.clock()))
        save()

    @staticmethod
    def _sweep_if_due(
        cursor: ChangeFeedCursor, ctx: RunContext, save: Callable[[], None], sweep: Callable[[int], None] | None
    ) -> None:
        if not cursor.sweep_due:
            return
        if sweep is not None:
            sweep(cursor.sweep_epoch)  # idempotent: a run cut during it starts it again
        cursor.sweep_done()
        save()
        ctx.cursor_to = cursor.describe()


def prefetched(pages: Generator[Page, None, None], depth: int = 1) -> Generator[Page, None, None]:
    """The same pages, fetched at most `depth` ahead by a thread while the consumer works on the current one:
    a page is fetched only once the consumer has taken the one before it, so a run that stops reads at most
    `depth` pages it does not use. Errors of a fetch are raised where that page would have been; closing this
    generator stops the thread."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue()
    credits = threading.Semaphore(depth)  # pages fetched and not yet taken by the consumer
    stop = threading.Event()

    def credit() -> bool:
        while not stop.is_set():
            if credits.acquire(timeout=0.05):
                return True
        return False

    def fetch() -> None:
        try:
            while credit():
                page = next(pages, None)
                if page is None:
                    slots.put(("end", None))
                    return
                slots.put(("page", page))
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(("error", exc))
        finally:
            pages.close()

    worker = threading.Thread(target=fetch, name="change-feed-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            credits.release()  # the next page may be fetched while the consumer works on this one
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)  # a fetch in flight finishes on its own and then sees `stop`


def _short(link: str | None) -> str:
    if not link:
        return "-"
    return hashlib.sha256(link.encode()).hexdigest()[:12]
