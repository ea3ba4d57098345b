"""The inference benchmark: its timing protocol, and a quick end-to-end run of the script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "inference.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("rnnkit_benchmark_inference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_rotated_timing_gives_every_runner_its_count_in_blocks_after_an_untimed_call(
    monkeypatch,
):
    bench = _load_benchmark()
    calls: list[str] = []
    pauses: list[tuple[int, float]] = []  # (calls made before the pause, seconds)
    monkeypatch.setattr(bench.time, "sleep", lambda s: pauses.append((len(calls), s)))
    runners = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    times = bench._time_rotated(runners, repeats=12)
    assert {name: len(values) for name, values in times.items()} == {"a": 12, "b": 12, "c": 12}
    assert all(value >= 0.0 for values in times.values() for value in values)
    # Turns of one untimed + BLOCK timed calls (the last turn shorter), rotating a, b, c.
    block = bench.BLOCK
    turns, previous, run = [], None, 0
    for name in calls:
        if name != previous and previous is not None:
            turns.append((previous, run))
            run = 0
        previous, run = name, run + 1
    turns.append((previous, run))
    assert [name for name, _ in turns[:3]] == ["a", "b", "c"]
    assert turns[0][1] == block + 1
    per_runner = {name: sum(n for t, n in turns if t == name) for name in runners}
    rounds = -(-12 // block)
    assert per_runner == {name: 12 + rounds for name in runners}
    # A settle pause before every turn, and only there.
    starts, position = [], 0
    for _, length in turns:
        starts.append(position)
        position += length
    assert pauses == [(start, bench.SETTLE_S) for start in starts]
    assert bench.SETTLE_S > 0


@pytest.mark.slow
def test_quick_benchmark_prints_both_tables(tmp_path):
    out = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--apps", "sentiment", "--markdown", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert "### Synthetic LSTM(32) classifier, 16 steps" in text
    assert "| ORT, rnnkit native LSTM fp32 |" in text
    # int8 is compared with the same quantization of the plain conversion.
    assert "| ORT, tf2onnx plain int8 (1 Loop) |" in text
    # The sentiment export is measured on every runtime, none of them failing.
    rows = [line for line in text.splitlines() if line.startswith("| sentiment/model |")]
    assert len(rows) == 14, rows
    assert not any("n/a" in row for row in rows), rows
    assert "rnnkit model.onnx → 0 Loop, 1 LSTM" in text
