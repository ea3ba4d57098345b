"""The real-photo check: caption the committed photos with one or more models, score them
against hand-written references (BLEU-1..4, CIDEr-D) and draw a comparison grid.

The photos are scikit-image's sample photos (CC0 / public domain) in ``tests/fixtures/photos``
with ``captions.json``: three captions per photo written by hand for this project (see that
folder's README). A model is an export directory (runs on ONNX Runtime or LiteRT) or a run
directory (Keras)::

    python -m apps.captioning.photos exported/captioning runs/lite0 \\
        --names old new --grid docs/captioning_photos.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PHOTO_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "photos"
CAPTIONS_FILE = "captions.json"


def load_photos(folder: str | Path = PHOTO_DIR) -> tuple[list[Path], list[list[str]]]:
    """The photo paths and their references, in file-name order."""
    from rnnkit.errors import UserError

    folder = Path(folder)
    captions_path = folder / CAPTIONS_FILE
    if not captions_path.is_file():
        raise UserError(f"no {CAPTIONS_FILE} in {str(folder)!r}: the photo check needs "
                        "{file name: [reference captions]}")
    references = json.loads(captions_path.read_text())
    names = sorted(references)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise UserError(f"{captions_path} names photos that are not there: {missing}")
    return [folder / n for n in names], [list(references[n]) for n in names]


def model_captioner(path: str | Path, backend: str = "onnx"):
    """A captioner for an export directory (runtime ``backend``) or a run directory (Keras)."""
    from apps.captioning import TASK

    path = Path(path)
    if (path / "manifest.json").is_file():
        return TASK.runtime_predictor(path, backend=backend)
    from rnnkit.task import RunDir

    return TASK.keras_predictor(RunDir(path))


def score_models(models: dict[str, Any], folder: str | Path = PHOTO_DIR) -> dict[str, Any]:
    """``{name: captioner}`` → per model: the captions and their scores on the photos."""
    from apps.captioning.task import score_captions

    paths, references = load_photos(folder)
    result: dict[str, Any] = {"photos": [p.name for p in paths], "references": references}
    for name, captioner in models.items():
        captions = [r["caption"] for r in captioner.caption([str(p) for p in paths])]
        scores = score_captions(captions, references)
        result[name] = {"captions": captions,
                        "scores": {k: round(float(v), 4) for k, v in scores.items()}}
    return result


def plot_grid(path: str | Path, result: dict[str, Any], names: Sequence[str],
              folder: str | Path = PHOTO_DIR, max_words: int = 16) -> None:
    """PNG: one column per photo, the photo above each model's caption (cut at ``max_words``
    words) and one reference."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    photos = result["photos"]
    figure, axes = plt.subplots(2, len(photos), figsize=(2.6 * len(photos), 5.6),
                                squeeze=False, gridspec_kw={"height_ratios": [1.0, 1.15]})
    for column, photo in enumerate(photos):
        image = np.asarray(Image.open(Path(folder) / photo).convert("RGB"))
        axes[0][column].imshow(image)
        axes[0][column].axis("off")
        lines = []
        for name in names:
            words = (result[name]["captions"][column] or "(empty)").split()
            text = " ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")
            wrapped = textwrap.fill(text, 30)
            lines.append(f"{name}:\n{wrapped}")
        lines.append("human:\n" + textwrap.fill(result["references"][column][0], 30))
        axes[1][column].text(0.0, 1.0, "\n\n".join(lines), fontsize=8, va="top", ha="left",
                              transform=axes[1][column].transAxes)
        axes[1][column].axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    from rnnkit.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m apps.captioning.photos",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="export or run directories")
    parser.add_argument("--names", nargs="+", help="a short name per model (default: dir names)")
    parser.add_argument("--backend", default="onnx", choices=("onnx", "tflite"))
    parser.add_argument("--photos", default=str(PHOTO_DIR), help="folder with captions.json")
    parser.add_argument("--grid", help="write the comparison grid PNG here")
    parser.add_argument("--json", help="write captions and scores here")
    args = parser.parse_args(argv)
    names = args.names or [Path(m).name for m in args.models]
    try:
        if len(names) != len(args.models):
            raise UserError(f"--names needs one name per model: {len(args.models)} models, "
                            f"{len(names)} names")
        models = {n: model_captioner(m, args.backend) for n, m in zip(names, args.models,
                                                                        strict=True)}
        result = score_models(models, args.photos)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in names:
        scores = result[name]["scores"]
        print(f"{name}: BLEU-4 {scores['bleu4']:.4f}  CIDEr {scores['cider']:.4f}  "
              f"BLEU-1 {scores['bleu1']:.4f}")
        for photo, caption in zip(result["photos"], result[name]["captions"], strict=True):
            print(f"  {photo}: {caption}")
    if args.grid:
        plot_grid(args.grid, result, names, args.photos)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
