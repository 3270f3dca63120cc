"""Load on ``tangrnn serve``: throughput and latency with 1, 8, 64 and 256 concurrent clients, on 127.0.0.1.

Each server is started as a user starts it and measured in turn, never two at once: ``tangrnn serve`` (requests
that arrive together decoded as one batch), the same server with ``--max_batch_size 1`` (one request at a time:
the baseline the batching is judged against), and optionally LitServe with its own dynamic batching
(``bench/litserve_poems.py``, the same decoder and answer). Each client sends one request after another
(by default one 五绝 with a seed drawn by the server) until the level's request count or time is spent.
The table gives poems/s, p50 and p99 latency, errors (anything but 200) and the server's resident memory
(its processes together) before and after the load. The load runs in this process, so on two cores it takes
some of the server's CPU; every server pays the same.

    python bench/serve_load.py                                   # tangrnn batched vs one at a time
    python bench/serve_load.py --servers tangrnn litserve        # the serving library, side by side
    python bench/serve_load.py --clients 1 8 --seconds 3         # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))

REPO = Path(__file__).resolve().parents[1]
SERVERS = {
    "tangrnn": [sys.executable, "-m", "tangrnn_core", "serve"],
    "tangrnn-one-at-a-time": [sys.executable, "-m", "tangrnn_core", "serve", "--max_batch_size", "1"],
    "litserve": [sys.executable, str(REPO / "bench" / "litserve_poems.py")],
}


@dataclass
class Level:
    server: str
    clients: int
    requests: int
    poems: int
    seconds: float
    latencies: list[float]
    errors: int
    memory_before: float
    memory_after: float

    @property
    def poems_per_second(self) -> float:
        return self.poems / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else float("nan")


def resident_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (LitServe decodes in child processes), MiB."""
    total, waiting = 0, [pid]
    while waiting:
        current = waiting.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                waiting += [int(child) for child in children]
        except (OSError, StopIteration):
            continue
    return total / 1024


async def run_level(base: str, clients: int, body: dict, requests: int, seconds: float) -> tuple:
    # aiohttp: its C parser costs the load a fraction of what a pure-Python client would take from the server's
    # two cores.
    latencies: list[float] = []
    errors = poems = 0
    sent = 0
    deadline = time.perf_counter() + seconds
    payload = json.dumps(body).encode()

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal errors, poems, sent
        while sent < requests and time.perf_counter() < deadline:
            sent += 1
            started = time.perf_counter()
            try:
                async with http.post(f"{base}/v1/poems", data=payload) as answer:
                    ok = answer.status == 200
                    kind = str(answer.status)
                    poems += len((await answer.json())["poems"]) if ok else 0
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as error:
                ok, kind = False, type(error).__name__
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors += 1
                print(f"error: {kind}", file=sys.stderr, flush=True)

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, errors, poems, elapsed


def measure(name: str, clients: list[int], body: dict, requests: int, seconds: float) -> list[Level]:
    from tiny_server import free_port

    port = free_port()
    command = [*SERVERS[name], "--port", str(port)]
    # A session of its own, so that stopping it stops its children too (LitServe decodes in child processes).
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(), start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    levels = []
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise SystemExit(f"{name}: the server exited with {server.returncode}: {' '.join(command)}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: no answer on /healthz within 3 minutes")
            time.sleep(0.5)
        asyncio.run(run_level(base, 4, body, 16, 30))  # warm-up: first batches, allocator, thread pools
        for count in clients:
            before = resident_mib(server.pid)
            latencies, errors, poems, elapsed = asyncio.run(run_level(base, count, body, requests, seconds))
            level = Level(
                name, count, len(latencies), poems, elapsed, latencies, errors, before, resident_mib(server.pid)
            )
            levels.append(level)
            print(
                f"{name}: {count} clients, {level.requests} requests, {level.poems_per_second:.1f} poems/s, "
                f"p99 {level.percentile(0.99):.0f} ms",
                file=sys.stderr,
                flush=True,
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # whatever of the group is still there
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers", nargs="+", choices=list(SERVERS), default=["tangrnn", "tangrnn-one-at-a-time"], help="in turn"
    )
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 64, 256], help="concurrency levels")
    parser.add_argument("--requests", type=int, default=3000, help="requests at most per level (default 3,000)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds at most per level (default 15)")
    parser.add_argument("--body", default='{"form": "五绝", "num_poems": 1}', help="the JSON body of every request")
    parser.add_argument("--output", type=Path, help="write every level's figures as JSON here")
    args = parser.parse_args()
    body = json.loads(args.body)

    levels = [
        level for name in args.servers for level in measure(name, args.clients, body, args.requests, args.seconds)
    ]
    header = ["server", "clients", "requests", "poems/s", "p50 ms", "p99 ms", "errors", "MiB before", "MiB after"]
    rows = [header] + [
        [
            level.server,
            str(level.clients),
            str(level.requests),
            f"{level.poems_per_second:.1f}",
            f"{level.percentile(0.5):.0f}",
            f"{level.percentile(0.99):.0f}",
            str(level.errors),
            f"{level.memory_before:.0f}",
            f"{level.memory_after:.0f}",
        ]
        for level in levels
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(f"POST /v1/poems {json.dumps(body, ensure_ascii=False)}, {os.cpu_count()} CPUs")
    for row in rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    by_key = {(level.server, level.clients): level for level in levels}
    for count in args.clients:
        alone = by_key.get(("tangrnn-one-at-a-time", count))
        for name in ("tangrnn", "litserve"):
            level = by_key.get((name, count))
            if level and alone:
                print(
                    f"{name} / one at a time, {count} clients: {level.poems_per_second / alone.poems_per_second:.2f}x"
                )
    if args.output:
        records = [
            {**level.__dict__, "p50_ms": level.percentile(0.5), "p99_ms": level.percentile(0.99)} for level in levels
        ]
        args.output.write_text(json.dumps(records, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
