"""How far a long run is, shown by the operator CLI on stderr (stdout stays the JSON summaries).

On a terminal: a progress bar per flow, scope and stage (rows exported of the counted total, parts, rate,
ETA), drawn by rich. Elsewhere (a log file, CI, a pipe): one plain line per stage every `interval` seconds
and when the stage ends. Flows report through `RunContext.report`; they never import this module.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bars
from rich.text import Text

from shared.flows.runner import Progress

Key = tuple[str, str, str]


class ProgressView:
    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        terminal: bool | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, force_terminal=terminal)
        self.interval = interval
        self.clock = clock
        self._bars: Bars | None = None
        self._tasks: dict[Key, TaskID] = {}
        self._plain: dict[Key, _Plain] = {}

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self._bars = Bars(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[figures]}"),
                _RateColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bars.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
        for key, plain in self._plain.items():
            if not plain.printed_last:
                self._line(key, plain)

    def __call__(self, progress: Progress) -> None:
        key = (progress.flow, progress.scope, progress.stage)
        if self._bars is not None:
            self._bar(key, progress)
        else:
            self._plain_update(key, progress)

    # -- terminal

    def _bar(self, key: Key, progress: Progress) -> None:
        assert self._bars is not None
        figures = _figures(progress)
        task = self._tasks.get(key)
        if task is None:
            self._tasks[key] = self._bars.add_task(
                " ".join(key), total=progress.total, completed=progress.done, figures=figures, unit=progress.unit
            )
        else:
            self._bars.update(task, total=progress.total, completed=progress.done, figures=figures)

    # -- plain lines

    def _plain_update(self, key: Key, progress: Progress) -> None:
        now = self.clock()
        plain = self._plain.get(key)
        if plain is None:
            plain = self._plain[key] = _Plain(started=now, first_done=progress.done, last_line=None)
        plain.latest, plain.at = progress, now
        finished = progress.total is not None and progress.done >= progress.total
        if plain.last_line is None or now - plain.last_line >= self.interval or finished:
            self._line(key, plain)

    def _line(self, key: Key, plain: _Plain) -> None:
        progress = plain.latest
        if progress is None:
            return
        plain.last_line = plain.at
        plain.printed_last = progress.total is not None and progress.done >= progress.total
        text = f"{' '.join(key)}: {_figures(progress)}"
        elapsed = plain.at - plain.started
        rate = (progress.done - plain.first_done) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            text += f", {_rate(rate)} {progress.unit}/s"
            if progress.total is not None and progress.done < progress.total:
                text += f", ETA {_duration((progress.total - progress.done) / rate)}"
        print(text, file=self.stream, flush=True)


class _Plain:
    def __init__(self, started: float, first_done: int, last_line: float | None) -> None:
        self.started = started
        self.first_done = first_done
        self.last_line = last_line
        self.latest: Progress | None = None
        self.at = started
        self.printed_last = False


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed: Any = task.finished_speed or task.speed
        return Text(f"{_rate(speed)} {task.fields.get('unit', '')}/s" if speed else "")


def _figures(progress: Progress) -> str:
    text = f"{progress.done:,}"
    if progress.total:
        text += f"/{progress.total:,} {progress.unit} ({100 * progress.done / progress.total:.0f}%)"
    else:
        text += f" {progress.unit}"
    for name, value in progress.detail:
        text += f", {name} {value:,}"
    return text


def _rate(per_second: float) -> str:
    return f"{per_second:,.1f}" if per_second < 10 else f"{per_second:,.0f}"


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
