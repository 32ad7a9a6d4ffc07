"""Stalled-reader benchmark: what SSE readers that stop reading cost the server in memory.

Starts the server in a fresh process per protocol (uvicorn on the `create_app` factory, one
worker, `--loop auto` as `agent-service serve` runs it, memory:// sessions), serving
`benchmarks/stalled_agents`, whose `burst` model yields a large answer in chunks without
awaiting between them (the worst case for a transport that collects writes). For each
protocol:

1. one small burst run read to the end (warms the code paths), then the server's RSS;
2. N clients each start a streamed run of the large answer, read the response head, and stop
   reading; one more request (`/healthz`) goes through the event loop after them;
3. the server's RSS again (growth / N = memory per stalled reader), then the clients close
   and the RSS is read once more.

The protocols compared: uvicorn's own httptools protocol, and ours (`agent-service serve`'s
coalescing protocol). `--protocol LABEL=MODULE:CLASS` adds any other uvicorn `--http` class,
e.g. an older copy of `app/server/protocols.py` put on PYTHONPATH:

    .venv/bin/python benchmarks/stalled_reader.py                      # 4 readers, 20 MiB
    mkdir -p /tmp/prefix
    git show d53300f:app/server/protocols.py > /tmp/prefix/prefix_protocols.py
    PYTHONPATH=/tmp/prefix .venv/bin/python benchmarks/stalled_reader.py \\
        --protocol before=prefix_protocols:CoalescingHttpToolsProtocol

Kernel socket buffers (here up to `net.ipv4.tcp_wmem`'s maximum per connection on the server
side) are not in the RSS and are the same for every protocol. Writes the table to
benchmarks/RESULTS-stalled_reader.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from app.server.protocols import protocol_class
from app.testing.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ROOT / "benchmarks" / "stalled_agents"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS-stalled_reader.md"
RUN_PATH = "/apps/burst/users/u/sessions/{sid}:run"
MIB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=4, help="stalled readers (default 4)")
    parser.add_argument("--answer-mib", type=int, default=20, help="answer size (default 20)")
    parser.add_argument("--chunk-bytes", type=int, default=8192, help="chunk size (8192)")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (default auto)")
    parser.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="LABEL=SPEC",
        help="one more uvicorn --http to measure (module:Class or h11/httptools)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS md")
    args = parser.parse_args(argv)

    ours = protocol_class("auto")
    protocols = {
        "uvicorn (httptools)": "httptools",
        "ours (agent-service serve)": f"{ours.__module__}:{ours.__qualname__}",
    }
    for item in args.protocol:
        label, _, spec = item.partition("=")
        protocols[label] = spec
    chunks = args.answer_mib * MIB // args.chunk_bytes
    rows = []
    for label, spec in protocols.items():
        row = measure(spec, args.loop, args.readers, chunks, args.chunk_bytes)
        row["label"] = label
        row["http"] = spec
        rows.append(row)
        print(json.dumps(row))
    table = render(rows, args, chunks)
    print(table)
    if not args.no_write:
        RESULTS_MD.write_text(table)
    return 0


def measure(http: str, loop: str, readers: int, chunks: int, chunk_bytes: int) -> dict[str, float]:
    """RSS (MiB) of a fresh server before, during and after `readers` stalled readers."""
    port = free_port()
    env = {
        **os.environ,
        "AGENT_SERVICE_DATABASE_URL": "memory://",
        "AGENT_SERVICE_AGENTS_DIR": str(AGENTS),
        "AGENT_SERVICE_LOG_LEVEL": "warning",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.server.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--loop",
        loop,
        "--http",
        http,
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        _wait_healthy(server, port)
        _read_whole_run(port, "warm", 4, chunk_bytes)
        before = _rss_mib(server.pid)
        started = time.monotonic()
        stalled = [_stall(port, f"s{i}", chunks, chunk_bytes) for i in range(readers)]
        _get(port, "/healthz")  # served after every run's writer stopped (or finished)
        stall_s = time.monotonic() - started
        during = _rss_mib(server.pid)
        kernel = _send_queue_bytes(port) / MIB
        for sock in stalled:
            sock.close()
        _get(port, "/healthz")
        after = _rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "rss_before_mib": round(before, 1),
        "rss_stalled_mib": round(during, 1),
        "growth_per_reader_mib": round((during - before) / readers, 2),
        "kernel_send_queue_per_reader_mib": round(kernel / readers, 2),
        "rss_after_close_mib": round(after, 1),
        "seconds_to_stall": round(stall_s, 2),
    }


def _request(port: int, sid: str, count: int, chunk_bytes: int) -> bytes:
    body = json.dumps(
        {
            "newMessage": {"role": "user", "parts": [{"text": f"burst {count} {chunk_bytes}"}]},
            "streaming": True,
            "createSession": True,
        }
    ).encode()
    return (
        f"POST {RUN_PATH.format(sid=sid)} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


def _stall(port: int, sid: str, count: int, chunk_bytes: int) -> socket.socket:
    """Start a streamed run, read its response head, and read nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(_request(port, sid, count, chunk_bytes))
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)  # byte by byte: take nothing of the body beyond the head
        if not data:
            raise RuntimeError(f"connection closed before the head: {head!r}")
        head += data
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"run refused: {head!r}")
    return sock


def _read_whole_run(port: int, sid: str, count: int, chunk_bytes: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(_request(port, sid, count, chunk_bytes))
        received = b""
        while data := sock.recv(65536):
            received += data
    if b"event: end" not in received:
        raise RuntimeError(f"warm-up run did not end: {received[-300:]!r}")


def _get(port: int, path: str) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        response.read()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _send_queue_bytes(port: int) -> int:
    """Bytes queued in the kernel's send buffers of the server's connections (/proc/net/tcp)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            total += int(fields[4].split(":")[0], 16)
    return total


def _wait_healthy(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("server exited at start-up")
        try:
            _get(port, "/healthz")
            return
        except OSError:
            time.sleep(0.1)  # process start-up: nothing to wait on but the socket
    raise RuntimeError("server did not become healthy")


def render(rows: list[dict[str, float | str]], args: argparse.Namespace, chunks: int) -> str:
    """Return the markdown table of one pass."""
    wmem = Path("/proc/sys/net/ipv4/tcp_wmem")
    lines = [
        "# Stalled SSE readers: server memory",
        "",
        f"Measured {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, uvicorn `--loop "
        f"{args.loop}`, memory:// sessions. Each of {args.readers} clients starts a streamed "
        f"run of a {args.answer_mib} MiB answer ({chunks} chunks of {args.chunk_bytes} bytes "
        "yielded without awaiting), reads the response head and stops reading. "
        "`benchmarks/stalled_reader.py` reproduces it "
        f"(`--readers {args.readers} --answer-mib {args.answer_mib}`).",
        "",
        "| protocol | `--http` | RSS before | RSS, readers stalled | growth per reader |"
        " kernel send queue per reader | RSS after they close | s to stall |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | `{row['http']}` | {row['rss_before_mib']} MiB | "
            f"{row['rss_stalled_mib']} MiB | {row['growth_per_reader_mib']} MiB | "
            f"{row['kernel_send_queue_per_reader_mib']} MiB | "
            f"{row['rss_after_close_mib']} MiB | {row['seconds_to_stall']} |"
        )
    lines += [
        "",
        "Growth per reader = (RSS with the readers stalled - RSS before) / readers. Not in the "
        "RSS: the kernel's socket buffers, the same for every protocol (the server's send "
        "queue, from /proc/net/tcp, up to `net.ipv4.tcp_wmem`'s maximum = "
        f"`{wmem.read_text().split()[-1] if wmem.exists() else '?'}` bytes, plus the client's "
        "receive window). `s to stall` is the wall time from the first request to the "
        "`/healthz` answer after the last head (the machine is shared; indicative only).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
