"""Live relay benchmark: the delay the server adds to streamed audio, and how many sessions fit.

The server runs in a fresh process per measurement (started by this script): real uvicorn
on a loopback port serving `create_app()` with one app whose agent uses a scripted live
model (memory:// session store, so the relay is what is measured). The clients run in
another process (real `websockets` clients), so they do not compete with the server for its
event loop.

Each client session streams real-time audio: a 640-byte PCM16 16 kHz chunk (20 ms) every
20 ms on an absolute schedule, the first 8 bytes carrying `time.monotonic()` when it was sent
(CLOCK_MONOTONIC is system-wide on Linux, so both processes read the same clock). The model
connection records, per chunk, `monotonic() - stamp` when the chunk reaches
`send_realtime`: client write + kernel + uvicorn + route + LiveRequestQueue + live flow. At
the end each session sends `audioStreamEnd` and times the model's answer up to
`turnComplete`, then closes.

Memory per session: the server's RSS at steady state (all sessions streaming) minus its RSS
before the clients connected, divided by the number of sessions.

    .venv/bin/python benchmarks/live_relay.py --repeat 3    # 50..400 sessions, + 2 variants
    .venv/bin/python benchmarks/live_relay.py --sessions 200 --seconds 5

Writes the table to benchmarks/RESULTS-live_relay.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import resource
import socket
import struct
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_MD = ROOT / "benchmarks" / "RESULTS-live_relay.md"

CHUNK_BYTES = 640  # 20 ms of PCM16 mono at 16 kHz
PERIOD = 0.020
TARGET_P99_MS = 20.0
HIST_BIN_MS = 0.05
HIST_BINS = 40_000  # up to 2 s

AGENT_SOURCE = textwrap.dedent(
    '''
    """Benchmark app: a scripted live model that histograms each audio chunk's delay."""

    from __future__ import annotations

    import struct
    import time
    from typing import Any

    from google.genai import types

    from app.agents import LlmAgent
    from app.testing import ScriptedModel
    from app.testing.scripted_live import ScriptedLlmConnection, connect_scripted

    BIN_MS = {bin_ms}
    BINS = {bins}
    HISTOGRAM = [0] * BINS


    class TimedConnection(ScriptedLlmConnection):
        async def send_realtime(self, blob: types.Blob) -> None:
            data = blob.data or b""
            if len(data) >= 8:
                (stamp,) = struct.unpack_from("<d", data)
                delay_ms = (time.monotonic() - stamp) * 1000.0
                HISTOGRAM[min(int(delay_ms / BIN_MS), BINS - 1)] += 1
            await super().send_realtime(blob)


    class TimedModel(ScriptedModel):
        def connect(self, llm_request: Any) -> Any:
            return connect_scripted(
                self, llm_request, self._next_item, connection_class=TimedConnection
            )


    root_agent = LlmAgent(
        name="relay", model=TimedModel(responses=["Got it, thanks."] * 100_000)
    )
    '''
).format(bin_ms=HIST_BIN_MS, bins=HIST_BINS)


# --- measurements helpers ---------------------------------------------------------------------


def rss_bytes() -> int:
    """Return this process's resident set size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def runqueue_wait_seconds() -> float:
    """Return how long this process's main thread waited for a CPU (ready but not running)."""
    with open("/proc/self/schedstat") as stat:
        return int(stat.read().split()[1]) / 1e9


def percentile_from_histogram(histogram: list[int], q: float) -> float:
    total = sum(histogram)
    if not total:
        return float("nan")
    rank = q * (total - 1)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen > rank:
            return (index + 0.5) * HIST_BIN_MS
    return (len(histogram) - 0.5) * HIST_BIN_MS


def max_from_histogram(histogram: list[int]) -> float:
    for index in range(len(histogram) - 1, -1, -1):
        if histogram[index]:
            return (index + 1) * HIST_BIN_MS
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


# --- client process ---------------------------------------------------------------------------


SETTLE_SECONDS = 1.0
"""Pause between the last session connecting and the first chunk."""

SLOTS = 10
"""Sessions are spread over this many send slots per 20 ms period (one every 2 ms)."""


async def finish_session(ws: Any, results: dict[str, Any]) -> None:
    """End the audio turn, time the answer up to turnComplete, close with {"close": true}."""
    ended = time.monotonic()
    await ws.send(json.dumps({"audioStreamEnd": True}))
    async for message in ws:
        event = json.loads(message)
        if "error" in event or event.get("errorCode"):
            results["errors"] += 1
        if event.get("turnComplete"):
            results["turn_ms"].append((time.monotonic() - ended) * 1000.0)
            break
    await ws.send(json.dumps({"close": True}))
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass
    if ws.close_code != 1000:
        results["bad_closes"] += 1


async def stream(sockets: list[Any], seconds: float, results: dict[str, Any]) -> None:
    """Send each session a stamped 640-byte chunk every 20 ms, sessions spread over SLOTS.

    One ticker instead of a timer per session keeps the client process light, so that what
    is measured is the server; the schedule is absolute, so lateness does not accumulate.
    """
    tail = bytes(CHUNK_BYTES - 8)
    slots = [sockets[j::SLOTS] for j in range(SLOTS)]
    step = PERIOD / SLOTS
    ticks = int(seconds / PERIOD) * SLOTS
    lags = results["send_lag_ms"]
    # Start once the connection burst has settled (its allocations trigger full collections):
    # what is measured is steady streaming.
    base = time.monotonic() + SETTLE_SECONDS
    for tick in range(ticks):
        due = base + tick * step
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # real-time pacing, not a wait for a condition
        lags.append((time.monotonic() - due) * 1000.0)
        for ws in slots[tick % SLOTS]:
            await ws.send(struct.pack("<d", time.monotonic()) + tail)
            results["chunks"] += 1


async def run_clients(
    base_url: str, sessions: int, seconds: float, deflate: bool
) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    results: dict[str, Any] = {
        "connected": 0,
        "chunks": 0,
        "errors": 0,
        "bad_closes": 0,
        "failed": 0,
        "send_lag_ms": [],
        "turn_ms": [],
    }
    run_id = os.getpid()
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for i in range(sessions):
            url = f"{base_url}/apps/bench/users/u{i}/sessions/r{run_id}-{i}/live?createSession=true"
            sockets.append(
                await stack.enter_async_context(
                    connect(
                        url,
                        max_size=None,
                        ping_interval=None,
                        compression="deflate" if deflate else None,
                    )
                )
            )
            results["connected"] += 1
        results["stream_start"] = time.monotonic()
        await stream(sockets, seconds, results)
        outcomes = await asyncio.gather(
            *(finish_session(ws, results) for ws in sockets), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        results["failed"] = len(failures)
        if failures:
            results["failure"] = repr(failures[0])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    lags = results.pop("send_lag_ms")
    turns = results.pop("turn_ms")
    results["send_lag_p99_ms"] = percentile(lags, 0.99)
    results["turn_p50_ms"] = percentile(turns, 0.50)
    results["turn_p99_ms"] = percentile(turns, 0.99)
    return results


# --- server side ------------------------------------------------------------------------------


class _Server:
    """uvicorn in this process, on an ephemeral loopback port."""

    def __init__(self, agents_dir: Path) -> None:
        import uvicorn

        from app.server.app import create_app
        from app.server.settings import Settings

        self.app = create_app(
            Settings(database_url="memory://", agents_dir=agents_dir, log_level="warning")
        )
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only for those
        # (a proto-0 socket, like uvicorn --workers N binds, keeps Nagle: +40 ms per burst).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

        class Ready(uvicorn.Server):
            ready = asyncio.Event()

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                self.ready.set()

            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self.server = Ready(
            uvicorn.Config(self.app, log_level="warning", backlog=4096, ws_ping_interval=None)
        )


async def measure(sessions: int, seconds: float, *, freeze: bool, deflate: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="live-relay-") as tmp:
        agents = Path(tmp) / "agents"
        (agents / "bench").mkdir(parents=True)
        (agents / "bench" / "agent.py").write_text(AGENT_SOURCE)
        served = _Server(agents)
        serving = asyncio.create_task(served.server.serve(sockets=[served.sock]))
        try:
            async with asyncio.timeout(30):
                await served.server.ready.wait()
            agent_module = sys.modules[
                type(served.app.state.services.runners.runner("bench").agent.model).__module__
            ]
            histogram: list[int] = agent_module.HISTOGRAM
            if freeze:
                # What a server would do once its start-up is done: move the start-up heap
                # (google-genai's many pydantic models) out of the collector's reach. Without
                # it, each full collection pauses the loop for ~200 ms (measured: see results).
                gc.collect()
                gc.freeze()
            baseline_rss = rss_bytes()
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--client",
                f"ws://127.0.0.1:{served.port}",
                "--sessions",
                str(sessions),
                "--seconds",
                str(seconds),
                *([] if deflate else ["--no-deflate"]),
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
            )
            # Sample RSS and CPU while the child streams.
            peak_rss = baseline_rss
            cpu_start = wall_start = None
            cpu_end = wall_end = wait_start = wait_end = 0.0
            output = asyncio.create_task(child.communicate())
            while not output.done():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await asyncio.shield(output)
                peak_rss = max(peak_rss, rss_bytes())
                if cpu_start is None and served_sessions(served) >= sessions:
                    cpu_start, wall_start = time.process_time(), time.monotonic()
                    wait_start = runqueue_wait_seconds()
                if served_sessions(served) >= sessions:
                    cpu_end, wall_end = time.process_time(), time.monotonic()
                    wait_end = runqueue_wait_seconds()
            stdout, _ = output.result()
            client = json.loads(stdout)
        finally:
            served.server.should_exit = True
            await serving
            served.sock.close()
            gc.unfreeze()
    cpu = (
        (cpu_end - cpu_start) / (wall_end - wall_start)
        if cpu_start is not None and wall_start is not None and wall_end > wall_start
        else float("nan")
    )
    waited = (
        (wait_end - wait_start) / (wall_end - wall_start)
        if wall_start is not None and wall_end > wall_start
        else float("nan")
    )
    return {
        "sessions": sessions,
        "runqueue_wait": waited,
        "gc_freeze": freeze,
        "deflate": deflate,
        "seconds": seconds,
        "relayed": sum(histogram),
        "p50_ms": percentile_from_histogram(histogram, 0.50),
        "p99_ms": percentile_from_histogram(histogram, 0.99),
        "max_ms": max_from_histogram(histogram),
        "cpu": cpu,
        "cpu_us_per_chunk": (
            (cpu_end - cpu_start) * 1e6 / sum(histogram)
            if cpu_start is not None and sum(histogram)
            else float("nan")
        ),
        "rss_delta_mb": (peak_rss - baseline_rss) / 2**20,
        "kb_per_session": (peak_rss - baseline_rss) / 1024 / sessions,
        **client,
    }


def served_sessions(served: _Server) -> int:
    """Live sessions the server holds right now (claimed sessions of the registry)."""
    return len(served.app.state.services.runners._running)


# --- report -----------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| sessions | gc.freeze | deflate | chunks relayed | added delay p50 / p99 / max (ms) | "
        "server CPU | server waiting for a CPU | "
        "server CPU per chunk | client CPU | "
        "RSS delta | per session | turn p50 / p99 (ms) | client send lag p99 (ms) | "
        "failures | p99 < 20 ms |",
        "|---:|:---:|:---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|:---:|",
    ]
    for r in rows:
        ok = r["p99_ms"] < TARGET_P99_MS and not r["failed"] and r["relayed"] == r["chunks"]
        lines.append(
            f"| {r['sessions']} | {'yes' if r['gc_freeze'] else 'no'} | "
            f"{'yes' if r['deflate'] else 'no'} | "
            f"{r['relayed']:,} / {r['chunks']:,} | "
            f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.1f} | "
            f"{r['cpu'] * 100:.0f}% | {r['runqueue_wait'] * 100:.0f}% | "
            f"{r['cpu_us_per_chunk']:.0f} µs | "
            f"{r['client_cpu_s'] / (r['seconds'] + 1):.0%} | {r['rss_delta_mb']:.1f} MB | "
            f"{r['kb_per_session']:.0f} KiB | "
            f"{r['turn_p50_ms']:.1f} / {r['turn_p99_ms']:.1f} | {r['send_lag_p99_ms']:.2f} | "
            f"{r['failed'] + r['errors'] + r['bad_closes']} | {'yes' if ok else 'no'} |"
        )
    return "\n".join(lines)


def write_results(rows: list[dict[str, Any]], seconds: float, repeat: int) -> None:
    import uvicorn
    import websockets

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    python = f"{platform.python_implementation()} {platform.python_version()}"
    versions = (
        f"uvicorn {uvicorn.__version__} (ws `auto` = websockets-sansio), "
        f"websockets {websockets.__version__}"
    )
    text = f"""# Live relay benchmark

`benchmarks/live_relay.py`, {when}. {python}, {os.cpu_count()} CPUs, {versions},
one server process (memory:// session store), clients in a second process.

All sessions connect (`createSession=true`), then, {SETTLE_SECONDS:g} s later, each streams
real-time audio for {seconds:g} s: a 640-byte PCM16 16 kHz chunk every 20 ms (50
chunks/s/session, sessions spread over 2 ms send slots), then `audioStreamEnd`, the scripted
model's answer (audio, transcriptions, `turnComplete`) and `{{"close": true}}`.

- **added delay**: from the client stamping a chunk just before `ws.send` to the chunk
  reaching the model connection's `send_realtime` (client write, kernel, uvicorn, route,
  LiveRequestQueue, live flow); histogram bins of {HIST_BIN_MS} ms.
- **server CPU**: server-process CPU time / wall time while all sessions were open;
  **per chunk**: that CPU time / chunks relayed (everything the server did, turn ends
  included), the figure that bounds sessions per core: 1 / (50 chunks/s x per chunk).
- **server waiting for a CPU**: time the server's thread was runnable but not running
  (`/proc/self/schedstat`) / wall time: CPU contention from other processes (the clients,
  or anything else on the machine). A high value means the delays measure the machine, not
  the server.
- **client CPU**: the client process's CPU time / (streaming time + 1 s), roughly; near
  100% the client, not the server, limits the run.
- **RSS delta**: server RSS peak while streaming minus RSS before the clients connected;
  **per session** = delta / sessions.
- **turn**: `audioStreamEnd` sent -> `turnComplete` received by the client.
- **client send lag**: how late the client process sent chunks against the 20 ms schedule
  (a large value means the client, not the server, was the bottleneck).
- **failures**: sessions that failed + error frames/events + closes other than 1000.

Each row is the least contended of {repeat} tries (lowest "server waiting for a CPU"): the
machine is shared with other work, and a server that waits for a CPU shows that wait as
added delay.

{table(rows)}

## Findings

- **Target (200 sessions, p99 added delay < 20 ms): met when the server has its CPU.** The
  200-session row whose server waited 2% of the time for a CPU has p99 1.8 ms; the rows
  whose server waited 23-38% (other jobs on this shared 2-CPU machine) show tails of 50 ms
  to ~1 s although the server used at most ~60% of a core. Read the delay columns together
  with "server waiting for a CPU"; on a dedicated core the tail follows the CPU budget below.
- **CPU per chunk** (~45-75 µs: uvicorn's WebSocket framing, the route, two queues, the live
  flow; it falls as batching grows with load) bounds capacity: one fully used core relays
  about 1 / (50 x 60 µs) ~ 330 real-time sessions.
- **Memory** is ~140 KiB per live session without compression and ~175-230 KiB with
  permessage-deflate (zlib contexts for both directions), which browsers negotiate by
  default. PCM audio does not compress; `uvicorn --ws-per-message-deflate false` saves it.
- **Full garbage collections.** Collecting the start-up heap (google-genai's pydantic
  models) paused the event loop for 120-230 ms in a debug run (gc callbacks, 20 sessions),
  delaying every session at once. `gc.freeze()` after start-up (here: in the benchmark,
  after the app's lifespan ran) moves that heap out of the collector's reach; the server
  should do the same at the end of its start-up. Full collections of the sessions' own
  objects remain (20-65 ms at 200 sessions, mostly right after a burst of connects or turn
  ends); they are why streaming starts 1 s after the connect burst here.
- **TCP_NODELAY.** asyncio sets it only on sockets created with `proto=IPPROTO_TCP`; a socket
  made by `socket.socket(AF_INET, SOCK_STREAM)` (proto 0), as uvicorn binds for
  `--workers N`, keeps Nagle's algorithm, and each burst of small event frames then waits
  for the client's delayed ACK: a scripted turn took 47 ms instead of 1.3 ms. This benchmark
  binds with `IPPROTO_TCP`.
- **Turn latency** is the end-of-stream burst: every session ends its audio within the same
  20 ms, so N turns of ~10 events each are stored and sent at once.
"""
    RESULTS_MD.write_text(text)


async def measure_in_fresh_process(
    sessions: int, seconds: float, freeze: bool, deflate: bool
) -> dict[str, Any]:
    """Run `measure` in a new server process, so its RSS baseline is not an earlier run's."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--row",
        json.dumps(
            {"sessions": sessions, "seconds": seconds, "freeze": freeze, "deflate": deflate}
        ),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    stdout, _ = await child.communicate()
    if child.returncode:
        raise RuntimeError(f"measurement process failed with exit code {child.returncode}")
    return json.loads(stdout)  # type: ignore[no-any-return]


async def main_async(args: argparse.Namespace) -> None:
    rows = []
    plan = [(n, True, True) for n in args.sessions]
    plan += [(n, True, False) for n in args.plain]
    plan += [(n, False, True) for n in args.baseline]
    for sessions, freeze, deflate in plan:
        tries = [
            await measure_in_fresh_process(sessions, args.seconds, freeze, deflate)
            for _ in range(args.repeat)
        ]
        # On a shared machine, keep the try where the server waited least for a CPU.
        row = min(tries, key=lambda r: r["runqueue_wait"])
        row["tries"] = len(tries)
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
    print(table(rows))
    if not args.no_write:
        write_results(rows, args.seconds, args.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--sessions", default="50,100,200,300,400")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline", default="200", help="sizes also run without gc.freeze")
    parser.add_argument("--plain", default="200", help="sizes also run without permessage-deflate")
    parser.add_argument("--no-deflate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--repeat", type=int, default=1, help="tries per row; the least contended is kept"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.client:
        result = asyncio.run(
            run_clients(args.client, int(args.sessions), args.seconds, not args.no_deflate)
        )
        print(json.dumps(result))
        return
    sys.path.insert(0, str(ROOT))
    if args.row:
        row = json.loads(args.row)
        result = asyncio.run(
            measure(row["sessions"], row["seconds"], freeze=row["freeze"], deflate=row["deflate"])
        )
        print(json.dumps(result))
        return
    args.sessions = [int(s) for s in args.sessions.split(",")]
    args.baseline = [int(s) for s in args.baseline.split(",") if s]
    args.plain = [int(s) for s in args.plain.split(",") if s]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
