"""The CLI's progress view: plain periodic lines when stderr is not a terminal, a rich bar when it is."""

from __future__ import annotations

import io

from shared.cli_progress import ProgressView
from shared.flows.runner import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def export(done: int, total: int | None = 1_000_000, parts: int = 0) -> Progress:
    return Progress("initial_transfer", "contacts", "export", done, total, "rows", (("parts", parts),))


def test_plain_lines_every_interval_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    with ProgressView(out, terminal=False, interval=10.0, clock=clock) as view:
        view(export(0))
        clock.now += 4
        view(export(100_000))  # within the interval: no line
        clock.now += 6
        view(export(250_000, parts=2))
        clock.now += 30
        view(export(1_000_000, parts=10))  # the end of the stage always gets its line
    assert out.getvalue().splitlines() == [
        "initial_transfer contacts export: 0/1,000,000 rows (0%), parts 0",
        "initial_transfer contacts export: 250,000/1,000,000 rows (25%), parts 2, 25,000 rows/s, ETA 30 s",
        "initial_transfer contacts export: 1,000,000/1,000,000 rows (100%), parts 10, 25,000 rows/s",
    ]


def test_the_last_state_is_printed_when_the_run_stops_early() -> None:
    out, clock = io.StringIO(), Clock()
    with ProgressView(out, terminal=False, interval=60.0, clock=clock) as view:
        view(Progress("initial_transfer", "contacts", "upload", 0, 4, "parts"))
        clock.now += 2
        view(Progress("initial_transfer", "contacts", "upload", 1, 4, "parts"))
    lines = out.getvalue().splitlines()
    assert lines[-1] == "initial_transfer contacts upload: 1/4 parts (25%), 0.5 parts/s, ETA 6 s"


def test_a_terminal_gets_a_bar() -> None:
    out = io.StringIO()
    with ProgressView(out, terminal=True) as view:
        view(export(500_000, parts=5))
        view(export(1_000_000, parts=10))
    text = out.getvalue()
    assert "initial_transfer contacts export" in text and "1,000,000/1,000,000 rows (100%), parts 10" in text
    assert "\x1b[" in text  # drawn with terminal control codes
