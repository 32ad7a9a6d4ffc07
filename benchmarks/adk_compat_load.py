"""The ADK-compatible API under load: the reference ADK bench's own load generator, speaking
the reference protocol (its `adk` profile: `POST /apps/.../sessions/{sid}` then `/run_sse`),
against our `/adk`, and our native `:run` (profile `ours`) on the same server, back to back.

    .venv/bin/python benchmarks/adk_compat_load.py
    .venv/bin/python benchmarks/adk_compat_load.py --duration 5 --workloads w1 --concurrency 1

Same setup as `http_load.py` (throwaway Postgres, one uvicorn worker, asyncio + h11). Writes
the raw loadgen JSON to benchmarks/results/ and the table to benchmarks/RESULTS-adk_compat.md.
A run counts as an error when its stream does not hold the events the workload expects, so
`errors = 0` on the `adk` rows also says the reference client got the reference framing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import http_load  # benchmarks/, the script's own directory

from app.testing.postgres import PostgresCluster, find_bin_dir, free_port

RESULTS_MD = http_load.ROOT / "benchmarks" / "RESULTS-adk_compat.md"
TARGETS = (
    ("native :run", ["--profile-file", str(http_load.PROFILE)], ""),
    ("/adk/run_sse", ["--profile", "adk"], "/adk"),
)


def main(argv: list[str] | None = None) -> int:
    """Run both targets and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="w1,w2,w4")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    args.loop, args.http = "asyncio", "h11"
    bin_dir = find_bin_dir()
    if bin_dir is None:
        print("PostgreSQL server binaries not found", file=sys.stderr)
        return 2
    cluster = PostgresCluster(bin_dir, Path(tempfile.mkdtemp(prefix="adk-load-pg-")), free_port())
    cluster.init()
    with (cluster.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(http_load._BENCH_PG_SETTINGS)
    cluster.start()
    server = None
    try:
        url = asyncio.run(http_load._create_database(cluster))
        port = free_port()
        http_load.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        log_path = http_load.RESULTS_DIR / "adk_compat-server.log"
        server = http_load._start_server(url, port, args, log_path)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        results: dict[str, Any] = {}
        for label, profile, prefix in TARGETS:
            out = http_load.RESULTS_DIR / f"adk_compat-{prefix.strip('/') or 'native'}-{stamp}.json"
            command = http_load._loadgen_command(
                profile, port, server.pid, cluster, args, label, out
            )
            command[command.index("--base") + 1] += prefix
            subprocess.run(command, check=True)
            results[label] = json.loads(out.read_text())
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        cluster.destroy()
    table = render(results, args)
    print(table)
    RESULTS_MD.write_text(table)
    return 0


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The Markdown table: one row per target, workload and concurrency."""
    lines = [
        "# ADK-compatible API under load",
        "",
        f"`.venv/bin/python benchmarks/adk_compat_load.py --workloads {args.workloads} "
        f"--concurrency {args.concurrency} --duration {args.duration:g}`, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}, 2 cores shared with other work (`other load`).",
        "",
        "| target | wl | conc | runs/s | p50 ms | p99 ms | server CPU ms/run | errors "
        "| other load (cores) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for wl in ("w1", "w2", "w4"):
        for label, _, _ in TARGETS:
            for row in results.get(label, {}).get(wl, []):
                lat = row["lat_ms"]
                lines.append(
                    f"| {label} | {wl.upper()} | {row['concurrency']} | {row['runs_per_s']} | "
                    f"{lat['p50']} | {lat['p99']} | {row['server_cpu_ms_per_run']} | "
                    f"{row['errors']} | {row.get('other_cpu_cores')} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
