"""Training-curve plots (PNG) from a Keras ``CSVLogger`` history file."""

from __future__ import annotations

import csv
from pathlib import Path


def read_history(path: str | Path) -> dict[str, list[float]]:
    """Columns of a history.csv as float lists (the last row wins for a repeated epoch)."""
    rows: dict[int, dict[str, str]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("epoch", "").strip() == "":
                continue
            rows[int(row["epoch"])] = row
    columns: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
    return columns


def plot_curves(history_csv: str | Path, out_png: str | Path) -> Path:
    """One panel per metric (train and validation together), epochs on the x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = read_history(history_csv)
    if not history.get("epoch"):
        raise ValueError(f"No epochs in {history_csv}")
    epochs = [e + 1 for e in history["epoch"]]
    skip = {"epoch", "learning_rate", "epoch_seconds"}
    names = [k for k in history if k not in skip and not k.startswith("val_")]
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=(4.5 * max(1, len(names)), 3.4),
                                squeeze=False)
    for axis, name in zip(axes[0], names, strict=False):
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    out_png = Path(out_png)
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png
