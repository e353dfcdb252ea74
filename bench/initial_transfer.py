"""Initial-transfer benchmark: contacts from the Dataverse sandbox (its own process) through Blob staging on Azurite
to a real sshd, timed against the sandbox's raw paging of the same rows in the same run.

Per size: start the Dataverse sandbox seeded with N contacts and a Campaign sandbox with an SFTP root (each in
its own process; the Campaign import is held back with a long import delay, so its parsing of the files never
competes with the connector); read every row twice with plain `requests` + JSON over the change-tracking pages
(the same `$select` and page size the connector uses): the faster read is the raw paging time; then run the
connector's operator CLI in its own process (`run ingress` hands the table over, `run initial_transfer` exports,
uploads and signals) and take the run's duration and the process's peak RSS.

Figures: rows/s of the transfer, the ratio transfer time / raw paging time (target <= 1.15), peak RSS of the
connector process (target <= 200 MB) and its growth between the smaller and the larger size (target <= 1.2x).

    .venv/bin/python -m bench.initial_transfer [--rows 1000000] [--small 100000] [--quick] [--profile FILE]

`--quick` runs 20,000 and 100,000 rows. `--profile FILE` runs the larger transfer under cProfile (slower; for
finding where the time goes, not for the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import requests

from bench import cores, machine
from bench.figures import Figure, at_most, quick_floor
from sandbox.azurite import Azurite
from sandbox.sshd import SshdServer
from shared.auth.dataverse_token import DataverseTokenProvider
from shared.settings import SPECS

REPO = pathlib.Path(__file__).resolve().parent.parent
PAGE_SIZE = 5000
TARGET_RATIO = 1.15
QUICK_RATIO_FLOOR = 2.0  # at 100,000 rows the run's fixed costs (SFTP, Blob, state) weigh more: see quick_floor
TARGET_RSS_MB = 200.0
TARGET_RSS_GROWTH = 1.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.initial_transfer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="contacts of the larger run")
    parser.add_argument("--small", type=int, default=100_000, help="contacts of the smaller run (RSS growth)")
    parser.add_argument("--quick", action="store_true", help="20,000 and 100,000 rows")
    parser.add_argument("--profile", type=pathlib.Path, help="cProfile output of the larger transfer")
    args = parser.parse_args(argv)
    described = machine.describe()
    cores.claim()
    sizes = QUICK_SIZES if args.quick else (args.small, args.rows)
    small, large = measure_sizes(sizes, args.profile)
    growth = large["peak_rss_mb"] / small["peak_rss_mb"]
    table = [
        ("rows", f"{large['rows']:,}", "", ""),
        ("raw paging (plain requests + JSON)", f"{large['raw_seconds']:.1f} s", f"{large['raw_rows_s']:,.0f} rows/s",
         ""),
        ("whole transfer (export + upload + signal)", f"{large['transfer_seconds']:.1f} s",
         f"{large['transfer_rows_s']:,.0f} rows/s", ""),
        ("  of which export / upload", f"{large['export_seconds']:.1f} s / {large['upload_seconds']:.1f} s", "", ""),
        ("  export time waiting for pages", f"{large['export_waiting_seconds']:.1f} s", "", ""),
        ("connector CPU per row (user + system)", f"{large['connector_cpu_us_per_row']:.1f} us", "", ""),
        ("transfer / raw paging", f"{large['ratio']:.2f}", f"target <= {TARGET_RATIO}",
         _verdict(large["ratio"] <= TARGET_RATIO)),
        ("peak RSS of the connector process", f"{large['peak_rss_mb']:.0f} MB", f"target <= {TARGET_RSS_MB:.0f} MB",
         _verdict(large["peak_rss_mb"] <= TARGET_RSS_MB)),
        (f"peak RSS {large['rows']:,} / {small['rows']:,} rows", f"{growth:.2f}x", f"target <= {TARGET_RSS_GROWTH}x",
         _verdict(growth <= TARGET_RSS_GROWTH)),
    ]  # fmt: skip
    width = max(len(row[0]) for row in table)
    print(f"\ninitial transfer. {described.line()}, {cores.describe()}")
    for name, value, target, verdict in table:
        print(f"  {name:<{width}}  {value:>18}  {target:<22} {verdict}")
    ok = large["ratio"] <= TARGET_RATIO and large["peak_rss_mb"] <= TARGET_RSS_MB and growth <= TARGET_RSS_GROWTH
    return 0 if ok else 1


QUICK_SIZES = (20_000, 100_000)


def run(ctx: Any) -> list[Figure]:
    """For `python -m bench` (bench/registry.py): the same measurement, as figures."""
    small, large = measure_sizes(QUICK_SIZES if ctx.quick else (100_000, 1_000_000), None)
    name = "initial_transfer"
    return [
        Figure(name, f"whole transfer, {large['rows']:,} contacts", large["transfer_seconds"], "s",
               reference=large["raw_seconds"], reference_label="raw paging of the same rows",
               target=quick_floor(at_most(TARGET_RATIO), at_most(QUICK_RATIO_FLOOR), quick=ctx.quick),
               note=f"{large['transfer_rows_s']:,} rows/s"),
        Figure(name, "peak RSS of the connector process", large["peak_rss_mb"], "MB", target=at_most(TARGET_RSS_MB)),
        Figure(name, f"peak RSS at {large['rows']:,} rows", large["peak_rss_mb"], "MB",
               reference=small["peak_rss_mb"], reference_label=f"at {small['rows']:,} rows",
               target=at_most(TARGET_RSS_GROWTH)),
    ]  # fmt: skip


def measure_sizes(sizes: tuple[int, int], profile: pathlib.Path | None) -> tuple[dict, dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp, Azurite.start() as azurite, SshdServer() as sshd:
        cores.place(azurite.process.pid)
        cores.place(sshd.pid)
        for rows in sizes:
            results.append(measure(rows, pathlib.Path(tmp), azurite, sshd, profile if rows == sizes[-1] else None))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results[0], results[1]


def measure(rows: int, tmp: pathlib.Path, azurite: Azurite, sshd: SshdServer, profile: pathlib.Path | None) -> dict:
    root = sshd.root / f"bench-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    with _process("sandbox.dataverse", "--contacts", str(rows)) as dv, _process(
        "sandbox.campaign", "--sftp-root", str(root), "--import-delay", "1e9"
    ) as acs:  # fmt: skip
        raw = min(raw_paging(dv, rows), raw_paging(dv, rows))
        settings = tmp / f"settings-{rows}.json"
        values = connector_values(dv, acs, azurite, sshd, root)
        settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
        handed = _cli(settings, "run", "ingress")
        assert handed["summaries"][0]["counts"] == {"handed_to_file": 1}, handed
        run = _cli(settings, "run", "initial_transfer", profile=profile)
    [summary] = run["summaries"]
    assert summary["outcome"] == "completed", summary
    assert summary["counts"]["exported"] == rows, summary["counts"]
    seconds = float(summary["duration_seconds"])
    return {
        "rows": rows,
        "raw_seconds": round(raw, 2),
        "raw_rows_s": round(rows / raw),
        "transfer_seconds": seconds,
        "transfer_rows_s": round(rows / seconds),
        "export_seconds": _note_seconds(summary["notes"], "export done"),
        "upload_seconds": _note_seconds(summary["notes"], "upload done"),
        "export_waiting_seconds": _note_seconds(summary["notes"], "export done", " s of it waiting for pages"),
        "ratio": round(seconds / raw, 3),
        "peak_rss_mb": round(run["peak_rss_kb"] / 1024, 1),
        "connector_cpu_us_per_row": round(run["cpu_s"] / rows * 1e6, 1),  # whole process: start-up included
        "parts": summary["counts"].get("parts_staged", 0),
        "bytes": sum(p.stat().st_size for p in (root / "d365_loads" / "imports").glob("*")),
    }


def raw_paging(dv: dict[str, Any], rows: int) -> float:
    """Every row through the change-tracking pages with plain requests + JSON: what any reader pays at least."""
    tokens = DataverseTokenProvider(dv["tenant_id"], dv["client_id"], resource_url=dv["url"],
                                    client_secret=dv["client_secret"], authority_host=dv["authority_host"],
                                    verify=dv["ca_path"])  # fmt: skip
    select = ",".join(_select())
    session = requests.Session()
    headers = {"Authorization": f"Bearer {tokens.token()}", "Accept": "application/json",
               "OData-MaxVersion": "4.0", "OData-Version": "4.0",
               "Prefer": f"odata.track-changes,odata.maxpagesize={PAGE_SIZE}"}  # fmt: skip
    url: str | None = f"{dv['api_url']}contacts?$select={select}"
    seen = 0
    started = time.perf_counter()
    while url:
        body = session.get(url, headers=headers, timeout=120, verify=dv["ca_path"]).json()
        seen += len(body["value"])
        url = body.get("@odata.nextLink")
    elapsed = time.perf_counter() - started
    assert seen == rows, (seen, rows)
    return elapsed


def connector_values(dv: dict, acs: dict, azurite: Azurite, sshd: SshdServer, root: pathlib.Path) -> dict[str, str]:
    values = {spec.name: spec.default for spec in SPECS if spec.default is not None}
    config = copy.deepcopy(json.loads((REPO / "config" / "sync.example.json").read_text()))
    config["ingress"]["tables"] = [t for t in config["ingress"]["tables"] if t["name"] == "contacts"]
    config["ingress"]["tables"][0]["options"]["initialLoad"] = "file"
    prefix = "b" + uuid.uuid4().hex[:10]
    values.update({
        "DATAVERSE_URL": dv["url"], "DATAVERSE_TENANT_ID": dv["tenant_id"], "DATAVERSE_CLIENT_ID": dv["client_id"],
        "DATAVERSE_CLIENT_SECRET": dv["client_secret"], "DATAVERSE_AUTHORITY_HOST": dv["authority_host"],
        "DATAVERSE_CA_BUNDLE": dv["ca_path"], "DATAVERSE_PAGE_SIZE": str(PAGE_SIZE),
        "CAMPAIGN_BASE_URL": acs["base_url"].split("/acme/")[0], "CAMPAIGN_ORGANIZATION": "acme",
        "CAMPAIGN_IMS_URL": acs["ims_url"].split("/ims/")[0], "CAMPAIGN_CLIENT_ID": acs["client_id"],
        "CAMPAIGN_CLIENT_SECRET": acs["client_secret"],
        "SFTP_HOST": sshd.host, "SFTP_PORT": str(sshd.port), "SFTP_USERNAME": sshd.username,
        "SFTP_PRIVATE_KEY": sshd.client_private_key, "SFTP_HOST_KEY": sshd.host_public_key,
        "SFTP_UPLOAD_FOLDER": str(root / "d365_loads" / "imports"),
        "STATE_STORAGE_CONNECTION_STRING": azurite.connection_string, "STATE_TABLE_PREFIX": prefix,
        "STATE_CONTAINER": prefix, "SYNC_CONFIG": json.dumps(config), "RUN_TIME_BUDGET_SECONDS": "3600",
    })  # fmt: skip
    return values


def _select() -> list[str]:
    config = json.loads((REPO / "config" / "sync.example.json").read_text())
    [contacts] = [t for t in config["ingress"]["tables"] if t["name"] == "contacts"]
    names = [contacts["source"]["primaryKey"], *(f["source"] for f in contacts["fields"])]
    return list(dict.fromkeys(names))


@contextlib.contextmanager
def _process(module: str, *args: str) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen([sys.executable, "-m", module, "--port", "0", *args], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{module} did not start")
        cores.place(process.pid)
        yield json.loads(line)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cli(settings: pathlib.Path, *args: str, profile: pathlib.Path | None = None) -> dict[str, Any]:
    """The operator CLI in its own process; its summaries and its peak RSS (KiB, from wait4)."""
    env = {k: v for k, v in os.environ.items() if k not in {s.name for s in SPECS}}
    prefix = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else [sys.executable]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        command = [*prefix, "-m", "shared.cli", "--settings", str(settings), *args, "--json"]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}): {err.read().decode()[-3000:]}")
    return {"summaries": json.loads(text), "peak_rss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}


def _note_seconds(notes: list[str], prefix: str, figure: str = " s in this run") -> float:
    """A figure the flow wrote into its notes: `<prefix>: ..., <seconds><figure>...`."""
    for note in notes:
        if note.startswith(prefix):
            for part in note.split(", "):
                if part.endswith(figure):
                    return float(part[: -len(figure)])
    return 0.0


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


if __name__ == "__main__":
    sys.exit(main())
