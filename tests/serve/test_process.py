"""The real process: `rnnkit serve` imports no TensorFlow, answers on a port, and drains
in-flight requests on SIGTERM before exiting 0."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.serve.conftest import APPS, EXPORTED, ROOT


def _environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def test_loading_and_serving_every_model_imports_no_tensorflow():
    code = f"""
import sys, json
from starlette.testclient import TestClient
from rnnkit.serve import load_models, create_app
import rnnkit.cli
models = load_models([{', '.join(repr(str(EXPORTED / a)) for a in APPS)}])
with TestClient(create_app(models).app) as client:
    status = [client.post("/v1/models/sentiment/predict", json={{"text": "good"}}).status_code,
              client.post("/v1/models/translation/predict", json={{"text": "one"}}).status_code]
print(json.dumps({{"status": status, "loaded": sorted(models),
                  "tf": sorted(m for m in sys.modules if m.split('.')[0] in
                               ('tensorflow', 'keras', 'tf_keras', 'tf2onnx'))}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_environment(), cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == sorted(APPS)
    assert report["status"] == [200, 200]
    assert report["tf"] == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


@contextlib.contextmanager
def running_server(export_dirs, *options: str):
    """A real `rnnkit serve` process on a free loopback port; yields its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rnnkit.cli", "serve", *map(str, export_dirs),
               "--port", str(port), "--log-level", "warning", *options]
    server = subprocess.Popen(command, env=_environment(), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/healthz")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_cli_serves_and_drains_on_sigterm(tmp_path: Path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rnnkit.cli", "serve", str(EXPORTED / "sentiment"),
               "--port", str(port), "--max-batch", "64", "--max-wait-ms", "1500"]
    server = subprocess.Popen(command, env=_environment(), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = _get(f"{base}/healthz")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        assert status == 200 and health["models"] == ["sentiment"]
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert "tensorflow" not in maps  # no TF shared library in the serving process

        answer: dict = {}

        def ask():
            request = urllib.request.Request(
                f"{base}/v1/models/sentiment/predict", data=b'{"text": "a lovely film"}',
                headers={"content-type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                answer["status"] = response.status
                answer["body"] = json.loads(response.read())

        worker = threading.Thread(target=ask)
        worker.start()
        time.sleep(0.5)  # the request now waits in its 1.5 s batch window
        server.send_signal(signal.SIGTERM)
        worker.join(30)
        assert answer.get("status") == 200, answer
        assert answer["body"]["result"]["label"] in ("negative", "positive")
        # uvicorn re-raises the captured SIGTERM once it has shut down cleanly
        assert server.wait(30) in (0, -signal.SIGTERM)
        log = server.stdout.read()
        assert "stopped: every queued request was answered" in log
        assert "Traceback" not in log
        try:
            _get(f"{base}/healthz")
            raise AssertionError("the server still answers after SIGTERM")
        except OSError:
            pass
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_cli_rejects_bad_arguments():
    bad = subprocess.run([sys.executable, "-m", "rnnkit.cli", "serve", "no/such/dir"],
                         capture_output=True, text=True, env=_environment(), cwd=ROOT,
                         timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: Export directory not found: no/such/dir"
    bad = subprocess.run([sys.executable, "-m", "rnnkit.cli", "serve", str(EXPORTED / "sentiment"),
                          "--max-batch", "0"], capture_output=True, text=True,
                         env=_environment(), cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "--max-batch must be >= 1" in bad.stderr
