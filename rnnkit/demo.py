"""``rnnkit demo``: every app trains on its default data, evaluates, exports and
checks runtime parity; one summary table at the end.

With ``ship=True`` (``make exported``) the default configs are trained and the
export goes to ``exported/<app>/`` — the shipped models.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnkit.task import Task


def _max_parity(value: Any) -> float | None:
    """Largest number under a manifest's ``parity`` entry (max abs diff vs Keras)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        numbers = [_max_parity(v) for k, v in value.items()
                   if "int8" not in str(k) and "float16" not in str(k)]
    elif isinstance(value, (list, tuple)):
        numbers = [_max_parity(v) for v in value]
    else:
        return None
    numbers = [n for n in numbers if n is not None]
    return max(numbers) if numbers else None


def _format_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict[str, str]], columns: Sequence[str]) -> str:
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}
    lines = ["| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |",
             "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(row.get(c, "").ljust(widths[c]) for c in columns) + " |")
    return "\n".join(lines)


def run_app(app: Task, runs_dir: Path, ship: bool) -> dict[str, str]:
    from rnnkit.config import load_config

    config = load_config(app.config_class, None, {} if ship else dict(app.demo_overrides))
    run_dir = runs_dir / app.name
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo always starts fresh (no resume)
    started = time.perf_counter()
    print(f"\n=== {app.name}: training ({'default' if ship else 'quick demo'} config) ===",
          flush=True)
    app.train(config, run_dir)
    train_seconds = time.perf_counter() - started
    print(f"=== {app.name}: evaluating ===", flush=True)
    metrics = app.evaluate(run_dir)
    out_dir = Path("exported") / app.name if ship else run_dir / "export"
    print(f"=== {app.name}: exporting to {out_dir} ===", flush=True)
    if ship:
        formats, quantize = app.shipped_formats, app.shipped_quantizations
    else:
        formats, quantize = app.export_formats, app.export_quantizations
    manifest = app.export(run_dir, out_dir, formats, quantize)
    parity = _max_parity(manifest.get("parity", {}))
    headline = ", ".join(
        f"{key}={_format_metric(metrics[key])}" for key in app.headline_metrics if key in metrics
    )
    formats = sorted(p.name for p in out_dir.iterdir() if p.name != "assets")
    return {
        "app": app.name,
        "train s": f"{train_seconds:.0f}",
        "metrics (test split)": headline,
        "export": f"{len(formats)} files",
        "max |Δ| vs Keras (fp32)": "n/a" if parity is None else f"{parity:.2e}",
        "status": "ok",
    }


def run_demo(apps: Sequence[Task], runs_dir: Path, ship: bool = False) -> int:
    rows = []
    failed = 0
    for app in apps:
        try:
            rows.append(run_app(app, runs_dir, ship))
        except Exception as error:  # one app failing must not hide the others' results
            failed += 1
            traceback.print_exc()
            rows.append({"app": app.name, "status": f"FAILED: {str(error).splitlines()[0][:60]}"})
    columns = ["app", "train s", "metrics (test split)", "export", "max |Δ| vs Keras (fp32)",
               "status"]
    print("\n" + format_table(rows, columns))
    return 1 if failed else 0
