"""`python -m bench`: run every benchmark and print one table of figures, each against a baseline or a bound.

    python -m bench [--quick] [--only NAME ...] [--json FILE]

--quick runs a reduced variant (CI, under two minutes); the exit status is 1 when a figure misses its target.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import traceback

from bench import cores
from bench.context import Context
from bench.figures import Figure, exit_code, render
from bench.machine import cpu_times, describe, steal_share
from bench.registry import BENCHMARKS, select


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the reduced variant CI runs")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help=f"run only these ({', '.join(b.name for b in BENCHMARKS)})"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        chosen = select(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    logging.getLogger("sync").setLevel(logging.ERROR)  # retries under a budget are expected here, not news
    machine = describe()
    cores.claim()  # the connector on a core of its own, each service placed on the others as it starts
    ctx = Context(quick=args.quick)
    figures: list[Figure] = []
    started = time.monotonic()
    run_start = cpu_times()
    try:
        for benchmark in chosen:
            ctx.log(f"{benchmark.name}: {benchmark.summary}")
            before = cpu_times()
            try:
                measured = benchmark.load()(ctx)
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                traceback.print_exc()
                measured = [Figure(benchmark.name, "(benchmark)", None, "", blocked=f"{type(exc).__name__}: {exc}")]
            steal = steal_share(before, cpu_times())
            figures.extend(dataclasses.replace(figure, steal=steal) for figure in measured)
    finally:
        ctx.close()
    elapsed = time.monotonic() - started
    variant = "quick" if args.quick else "full"
    run_steal = steal_share(run_start, cpu_times())
    stolen = f", hypervisor steal {run_steal:.0%}" if run_steal is not None else ""
    print(render(figures, f"{machine.line()}, {cores.describe()}; {variant} run, {elapsed:.0f} s{stolen}"))
    if args.json:
        payload = {"machine": machine.as_json(), "cores": cores.describe(), "variant": variant,
                   "seconds": round(elapsed, 1), "steal": None if run_steal is None else round(run_steal, 4),
                   "figures": [f.as_json() for f in figures]}  # fmt: skip
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2, ensure_ascii=False)
    return exit_code(figures)


if __name__ == "__main__":
    sys.exit(main())
