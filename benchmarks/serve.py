"""Load test of `rnnkit serve` on loopback: throughput and latency, micro-batching on vs off.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/serve.py                 # sentiment + speech
    ... --apps sentiment --clients 1,8 --requests 200 --time-cap 10 --markdown serve.md

For each app and each setting (batching on: `--max-batch 32 --max-wait-ms 5`; off:
`--max-batch 1`), a server subprocess (`python -m rnnkit.cli serve exported/<app>` on
127.0.0.1, a free port) is started, warmed up, and loaded by N closed-loop clients (one
keep-alive HTTP/1.1 connection each on asyncio streams, see `Connection`) for N in `--clients`: each client sends its next request
when the previous one is answered, until `--requests` requests are done or `--time-cap` seconds
have passed, whichever comes first, so every run stops by itself. Requests are real inputs:
the shipped sentiment test sentences (`{"text": ...}`) and the shipped held-out speech clips
(WAV files, base64 in JSON). Reported: completed requests, errors (non-200), throughput
(requests/s over the timed part), p50/p95/p99 latency and the mean items per runtime call
(from the server's `/metrics`). The load generator runs on the same cores as the server: on a
2-core machine its own CPU time is part of what the figures show.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"on": ["--max-batch", "32", "--max-wait-ms", "5"],
            "off": ["--max-batch", "1", "--max-wait-ms", "0"]}


@dataclass
class Cell:
    app: str
    batching: str
    clients: int
    done: int
    errors: int
    seconds: float
    latencies: list[float]
    mean_batch: float

    def row(self) -> str:
        ms = np.percentile(np.array(self.latencies) * 1000, [50, 95, 99]) if self.latencies \
            else [float("nan")] * 3
        return (f"| {self.app} | {self.batching} | {self.clients} | {self.done} | {self.errors} "
                f"| {self.done / self.seconds:.1f} | {ms[0]:.1f} | {ms[1]:.1f} | {ms[2]:.1f} "
                f"| {self.mean_batch:.1f} |")


HEADER = ("| app | batching | clients | requests | errors | throughput (req/s) | p50 ms | p95 ms "
          "| p99 ms | items per runtime call |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def payloads(app: str, count: int) -> list[bytes]:
    """JSON bodies of real inputs for ``app``."""
    if app == "sentiment":
        lines = (ROOT / "exported/sentiment/eval/test_sample.jsonl").read_text().splitlines()
        return [json.dumps({"text": json.loads(line)["text"]}).encode()
                for line in lines[:count]]
    if app == "speech_to_text":
        import soundfile

        sample = np.load(ROOT / "exported/speech_to_text/heldout_sample.npz")
        offsets, audio = sample["offsets"], sample["audio"]
        bodies = []
        for index in range(min(count, len(offsets) - 1)):
            buffer = io.BytesIO()
            soundfile.write(buffer, audio[offsets[index]:offsets[index + 1]], 16000,
                            format="WAV", subtype="PCM_16")
            bodies.append(json.dumps({"audio": base64.b64encode(buffer.getvalue()).decode()})
                          .encode())
        return bodies
    raise SystemExit(f"error: no load payloads for app {app!r} (sentiment, speech_to_text)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(app: str, batching: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "rnnkit.cli", "serve", str(ROOT / "exported" / app),
               "--port", str(port), "--threads", str(threads), "--log-level", "warning",
               *SETTINGS[batching]]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"error: the {app} server exited: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit(f"error: the {app} server did not start within 90 s")


def batch_counts(text: str, app: str) -> tuple[float, float]:
    """(items, runtime calls) so far, from the server's /metrics text."""
    values = []
    for kind in ("sum", "count"):
        match = re.search(rf'rnnkit_batch_size_{kind}{{model="{app}"}} (\S+)', text)
        values.append(float(match.group(1)) if match else 0.0)
    return values[0], values[1]


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load generator's client.

    Plain streams rather than an HTTP client library: with 32 concurrent requests an async
    client's connection pool cost more CPU than the server's own request handling on these
    2 cores (httpx: 8 -> 32 clients cut the measured sentiment throughput from ~900 to ~330
    requests/s, batching on or off alike), which would measure the client.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def load(base: str, app: str, bodies: list[bytes], clients: int, requests: int,
               time_cap: float) -> tuple[int, int, float, list[float], float]:
    host, port = base.removeprefix("http://").split(":")
    path = f"/v1/models/{app}/predict"
    connections = [Connection(host, int(port)) for _ in range(clients)]
    for connection in connections:
        await connection.open()
    for index, connection in enumerate(connections):  # warm up each connection and the model
        await connection.request("POST", path, bodies[index % len(bodies)])
    latencies: list[float] = []
    errors = 0
    issued = 0
    before = batch_counts((await connections[0].request("GET", "/metrics"))[1].decode(), app)
    began = time.perf_counter()
    stop_at = began + time_cap

    async def worker(connection: Connection):
        nonlocal issued, errors
        while issued < requests and time.perf_counter() < stop_at:
            body = bodies[issued % len(bodies)]
            issued += 1
            sent = time.perf_counter()
            status, _ = await connection.request("POST", path, body)
            latencies.append(time.perf_counter() - sent)
            if status != 200:
                errors += 1

    await asyncio.gather(*[worker(c) for c in connections])
    seconds = time.perf_counter() - began
    after = batch_counts((await connections[0].request("GET", "/metrics"))[1].decode(), app)
    for connection in connections:
        await connection.close()
    calls = after[1] - before[1]
    mean_batch = (after[0] - before[0]) / calls if calls else float("nan")
    return len(latencies), errors, seconds, latencies, mean_batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default="sentiment,speech_to_text")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=600,
                        help="requests per cell (speech: a third of it)")
    parser.add_argument("--time-cap", type=float, default=20.0, help="seconds per cell at most")
    parser.add_argument("--threads", type=int, default=1, help="runtime threads of the server")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    cells: list[Cell] = []
    for app in args.apps.split(","):
        bodies = payloads(app, 200)
        requests = args.requests if app == "sentiment" else max(1, args.requests // 3)
        for batching in ("on", "off"):
            server, base = start_server(app, batching, args.threads)
            try:
                for count in clients:
                    done, errors, seconds, latencies, mean_batch = asyncio.run(
                        load(base, app, bodies, count, requests, args.time_cap))
                    cell = Cell(app, batching, count, done, errors, seconds, latencies,
                                mean_batch)
                    cells.append(cell)
                    print(cell.row(), file=sys.stderr, flush=True)
            finally:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
    table = HEADER + "\n" + "\n".join(cell.row() for cell in cells)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
