"""The benchmarks `python -m bench` runs, in order. Each is a module with `run(ctx) -> list[Figure]`."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from bench.context import Context
from bench.figures import Figure


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    summary: str

    def load(self) -> Callable[[Context], list[Figure]]:
        run: Callable[[Context], list[Figure]] = importlib.import_module(self.module).run
        return run


BENCHMARKS = (
    Benchmark("projection", "bench.projection", "CPU per row of the compiled projection and filters vs the reference"),
    Benchmark("read", "bench.read_shape", "read + shape 100,000 contacts vs plain requests and Airbyte's source"),
    Benchmark("economy", "bench.economy", "Dataverse requests per page of a change-tracking read, and per idle read"),
    Benchmark("throttle", "bench.throttle", "Campaign writes under a request budget: throughput, 429s, failures"),
    Benchmark("ingress", "bench.ingress_increment", "changed contacts through ingress vs its parallelism bound"),
    Benchmark("initial_transfer", "bench.initial_transfer", "contacts by file (Blob, SFTP) vs raw paging; peak RSS"),
    Benchmark("optout", "bench.optout", "opt-out latency: Dynamics update -> webhook -> queue -> Campaign profile"),
    Benchmark("egress", "bench.egress", "Campaign email events onto Dynamics: requests per event vs one per event"),
    Benchmark("scaling", "bench.scaling", "initial loads of 10,000 and 100,000 contacts: linear time, flat memory"),
)


def select(only: list[str] | None) -> list[Benchmark]:
    if not only:
        return list(BENCHMARKS)
    known = {b.name: b for b in BENCHMARKS}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[name] for name in only]
