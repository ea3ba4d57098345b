"""Fine-tuning (``train --init-from``) vs training from scratch, same clips, same time budget.

    python benchmarks/speech_finetune.py [--minutes 5] [--out runs/finetune-bench]

No real set large enough ships with the registries' packages (pocketsphinx-testdata holds 10
clips), so the "user's clips" are a proxy with a domain shift the shipped model never saw:
the held-out synthetic test split (voices and texts unseen in training) passed through a
telephone channel (8 kHz round trip, 8-bit mu-law), a reverberant room (RT60 0.4 s) and
noise at 15 dB SNR. The first ``--train`` clips train (written as a ``path,transcript`` CSV),
the rest are scored with ``evaluate --data``. Both runs use the default architecture (that of
exported/speech_to_text) and stop after the epoch that passes ``--minutes``; fine-tuning uses
``--finetune-lr`` (a smaller step than scratch's default). Prints one JSON object.

``--real A|B`` uses the real recordings instead (pocketsphinx-testdata, 12 clips), in two
folds split by recording set, so that no test word list was heard in training:
A fine-tunes on the 7 card-name and command clips and scores the 5 LibriVox sentences,
B the other way round. Each training clip is written ``--copies`` times under different
names, so that the app's validation and test shares of ``--data`` (copies) take no clip away.

    python benchmarks/speech_finetune.py --real A --minutes 4 --out runs/real-ft-A
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import soundfile


def mu_law(wave: np.ndarray, levels: int = 256) -> np.ndarray:
    mu = levels - 1
    squashed = np.sign(wave) * np.log1p(mu * np.abs(wave)) / np.log1p(mu)
    quantized = np.round((squashed + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(quantized) * np.expm1(np.abs(quantized) * np.log1p(mu)) / mu).astype(
        np.float32)


def telephone_room(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from apps.speech_to_text.data import add_reverb
    from rnnkit.runtime.audio import resample

    wave = add_reverb(wave, 0.4, rng)
    wave = resample(resample(wave, 16000, 8000), 8000, 16000)[: wave.size]
    power = float(np.mean(wave ** 2)) + 1e-12
    noise = np.cumsum(rng.normal(size=wave.size)).astype(np.float32)  # brown-ish
    noise = noise - np.convolve(noise, np.ones(400) / 400, mode="same")  # drop the drift
    noise *= np.sqrt(power / 10 ** 1.5 / (float(np.mean(noise ** 2)) + 1e-12))
    wave = np.clip(wave + noise, -1, 1)
    return mu_law(wave / max(1e-6, float(np.abs(wave).max())) * 0.7)


def write_clips(out: Path, train: int) -> tuple[Path, Path]:
    from apps.speech_to_text.config import SpeechToTextConfig
    from apps.speech_to_text.data import synthetic_split

    config = SpeechToTextConfig()
    test = synthetic_split("test", config.test_size, config)
    rng = np.random.default_rng(7)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(len(test)):
        path = out / "clips" / f"u{i:03d}.wav"
        soundfile.write(path, telephone_room(test.waveform(i), rng), 16000)
        rows.append(f"{path.resolve()},{test.texts[i]}")
    (out / "train.csv").write_text("\n".join(rows[:train]) + "\n")
    (out / "test.csv").write_text("\n".join(rows[train:]) + "\n")
    return out / "train.csv", out / "test.csv"


REAL_FOLDS = {
    "A": (("pocketsphinx-cards", "pocketsphinx-commands"), ("pocketsphinx-librivox",)),
    "B": (("pocketsphinx-librivox",), ("pocketsphinx-cards", "pocketsphinx-commands")),
}


def write_real_fold(out: Path, fold: str, copies: int) -> tuple[Path, Path]:
    """The fold's training clips (``copies`` copies each) and test clips as CSVs."""
    from apps.speech_to_text.real_speech import missing_sets, real_sets

    train_sets, test_sets = REAL_FOLDS[fold]
    sets = real_sets()
    absent = [name for name in (*train_sets, *test_sets) if name not in sets]
    if absent:
        raise SystemExit(f"missing real sets {absent}: {missing_sets()}")
    (out / "clips").mkdir(parents=True, exist_ok=True)
    train_rows, test_rows = [], []
    for names, rows, count in ((train_sets, train_rows, copies), (test_sets, test_rows, 1)):
        for name in names:
            data = sets[name]
            for i in range(len(data)):
                for copy in range(count):
                    path = out / "clips" / f"{name}-{i:02d}-{copy}.wav"
                    soundfile.write(path, data.waveform(i), 16000)
                    rows.append(f"{path.resolve()},{data.texts[i]}")
    (out / "train.csv").write_text("\n".join(train_rows) + "\n")
    (out / "test.csv").write_text("\n".join(test_rows) + "\n")
    return out / "train.csv", out / "test.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--finetune-lr", type=float, default=5e-4)
    parser.add_argument("--init-from", default="exported/speech_to_text")
    parser.add_argument("--out", default="runs/finetune-bench")
    parser.add_argument("--real", choices=sorted(REAL_FOLDS),
                        help="a fold of the real recordings instead of the synthetic proxy")
    parser.add_argument("--copies", type=int, default=4, help="copies per real training clip")
    args = parser.parse_args()
    from apps.speech_to_text.config import SpeechToTextConfig
    from apps.speech_to_text.task import TASK
    from apps.speech_to_text.transcriber import Transcriber
    from rnnkit.data.audio import read_pairs
    from rnnkit.metrics import cer, wer
    from rnnkit.runtime.audio import read_audio

    out = Path(args.out)
    if args.real:
        train_csv, test_csv = write_real_fold(out, args.real, args.copies)
    else:
        train_csv, test_csv = write_clips(out, args.train)
    pairs = read_pairs(test_csv)
    shipped = Transcriber(args.init_from, num_threads=1)
    hyps = shipped.transcribe_many([read_audio(p, 16000) for p, _ in pairs])
    refs = [t for _, t in pairs]
    train_rows = len(read_pairs(train_csv))
    proxy = "held-out synthetic test split through telephone + room + noise"
    results = {"data": f"real fold {args.real}: {REAL_FOLDS[args.real]}" if args.real else proxy,
               "train_rows": train_rows, "test_clips": len(pairs),
               "budget_minutes": args.minutes,
               "shipped_as_is": {"wer": round(float(wer(refs, hyps)), 4),
                                 "cer": round(float(cer(refs, hyps)), 4)}}
    base = dataclasses.replace(SpeechToTextConfig(), epochs=500, patience=500,
                               max_train_minutes=args.minutes, eval_wer_every_epoch=False,
                               user_val_fraction=0.05, max_seconds=30.0)
    for name, config, init in (
            ("finetune", dataclasses.replace(base, learning_rate=args.finetune_lr),
             args.init_from),
            ("scratch", base, None)):
        trained = TASK.train(config, out / name, data=train_csv, init_from=init)
        scored = TASK.evaluate(out / name, data=test_csv)
        results[name] = {"wer": round(scored["wer"], 4), "cer": round(scored["cer"], 4),
                         "train_seconds": trained["train_seconds"],
                         "learning_rate": config.learning_rate,
                         "epochs_run": sum(1 for _ in (out / name / "history.csv").open()) - 1}
        print(json.dumps({name: results[name]}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
