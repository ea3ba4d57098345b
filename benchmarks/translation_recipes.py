"""Translation: the default config vs. the tutorial recipe, same data, same split, same time.

    make corpus   # data/eng_spa.tsv: real English translated by Apertium (apps/translation/corpus.py)
    TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH=. .venv/bin/python benchmarks/translation_recipes.py \\
        --data data/eng_spa.tsv --minutes 25 [--recipe ours|tutorial|both] [--cores 0,1] \\
        [--max-train-pairs N]

``ours``: ``rnnkit translation train`` with the default config and ``max_train_minutes``, then
its evaluation (greedy and beam BLEU/chrF, sacrebleu, cased) on the recorded test split.
``tutorial``: the recipe of the TensorFlow NMT-with-attention tutorial as a user would write it
— word vocabularies of 5,000 per side (the project's word tokenizer), a bidirectional GRU-256
encoder, a GRU-256 decoder with one-head additive attention over the encoder outputs, Adam
1e-3, batch 64, masked cross-entropy, greedy decoding — trained for the same minutes on the
same training pairs (the app's split: MD5 of ``"<seed>:<source>"``) and scored on the same
test pairs with the same metric. With ``--recipe both`` the two train at the same time, each
pinned to one core (``--cores``), so that load from other processes hits both alike.
Prints one JSON line per recipe and a markdown table.

``--max-train-pairs N`` trains both recipes on the same deterministic N-pair subset of the
training split (the held-out pairs stay the same), for a curve over corpus sizes. ``ours``
also reports its validation-BLEU curve (greedy BLEU on the validation pairs after each epoch,
against training minutes), the sizes it took from the data and the decoding it chose.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL_PAIRS = 2000


def _splits(data: str, max_train_pairs: int | None = None):
    from apps.translation.config import TranslationConfig
    from apps.translation.data import load_splits

    config = TranslationConfig(data=data, max_train_pairs=max_train_pairs)
    return config, load_splits(config)


def run_ours(data: str, minutes: float, run_dir: Path, max_train_pairs: int | None = None,
             overrides: dict | None = None) -> dict:
    import dataclasses

    from apps.translation import TASK
    from apps.translation.config import TranslationConfig

    config = dataclasses.replace(TranslationConfig(), **{
        "max_train_minutes": minutes, "eval_limit": EVAL_PAIRS,
        "max_train_pairs": max_train_pairs, **(overrides or {})})
    started = time.perf_counter()
    trained = TASK.train(config, run_dir, data)
    metrics = TASK.evaluate(run_dir)
    return {"recipe": "ours (default config)", "train_seconds": trained.get("train_seconds"),
            "epochs": trained.get("epochs_run"), "bleu_greedy": metrics["bleu_greedy"],
            "bleu_beam": metrics["bleu_beam"], "chrf_greedy": metrics["chrf_greedy"],
            "chrf_beam": metrics["chrf_beam"], "examples": metrics["num_pairs"],
            "generated_test": metrics.get("generated_test"),
            "train_pairs": trained.get("train_pairs"), "parameters": trained.get("parameters"),
            "sized_from_data": trained.get("sized_from_data"),
            "best_epoch": trained.get("best_epoch"), "best_val_bleu": trained.get("best_val_bleu"),
            "val_bleu_curve": trained.get("val_bleu_curve"),
            "decoding": {k: v for k, v in (trained.get("decoding_chosen_on_validation") or {})
                         .items() if k != "scores"},
            "wall_seconds": round(time.perf_counter() - started, 1)}


def _tutorial_model(source_vocab: int, target_vocab: int, units: int = 256):
    import keras

    source = keras.Input((None,), dtype="int32", name="source_ids")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    embedded = keras.layers.Embedding(source_vocab, units, mask_zero=True)(source)
    encoded = keras.layers.Bidirectional(keras.layers.GRU(units, return_sequences=True),
                                         merge_mode="sum")(embedded)
    decoder_embedded = keras.layers.Embedding(target_vocab, units, mask_zero=True)(target_in)
    decoded = keras.layers.GRU(units, return_sequences=True)(decoder_embedded)
    context = keras.layers.AdditiveAttention()([decoded, encoded])
    joined = keras.layers.Dense(units, activation="tanh")(
        keras.layers.Concatenate()([decoded, context]))
    logits = keras.layers.Dense(target_vocab)(joined)
    return keras.Model([source, target_in], logits)


def run_tutorial(data: str, minutes: float, run_dir: Path, max_train_pairs: int | None = None
                 ) -> dict:
    import numpy as np
    import tensorflow as tf

    from apps.translation.task import score_translations
    from rnnkit.text import Tokenizer

    config, splits = _splits(data, max_train_pairs)
    tokenizers = [Tokenizer.train([p[side] for p in splits.train], kind="word", vocab_size=5000,
                                  lowercase=False) for side in (0, 1)]
    rows = [(tokenizers[0].encode(s)[:40], tokenizers[1].encode(t, add_start_end=True)[:48])
            for s, t in splits.train]
    rows = [(s, t) for s, t in rows if s]
    model = _tutorial_model(tokenizers[0].vocab_size, tokenizers[1].vocab_size)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=loss)

    def batches(seed):
        order = np.random.default_rng(seed).permutation(len(rows))
        for start in range(0, len(order), 64):
            chunk = [rows[i] for i in order[start:start + 64]]
            src = np.zeros((len(chunk), max(len(s) for s, _ in chunk)), np.int32)
            tgt = np.zeros((len(chunk), max(len(t) for _, t in chunk)), np.int32)
            for i, (s, t) in enumerate(chunk):
                src[i, :len(s)], tgt[i, :len(t)] = s, t
            yield src, tgt

    started, epochs, steps = time.perf_counter(), 0, 0
    while time.perf_counter() - started < 60 * minutes:
        for src, tgt in batches(epochs):
            model.train_on_batch([src, tgt[:, :-1]], tgt[:, 1:])
            steps += 1
            if time.perf_counter() - started >= 60 * minutes:
                break
        epochs += 1
    train_seconds = time.perf_counter() - started
    pairs = splits.test[:EVAL_PAIRS]
    source_tok, target_tok = tokenizers
    hyps = []
    for start in range(0, len(pairs), 64):
        chunk = pairs[start:start + 64]
        ids = [source_tok.encode(s)[:40] or [source_tok.unk_id] for s, _ in chunk]
        src = np.zeros((len(ids), max(map(len, ids))), np.int32)
        for i, row in enumerate(ids):
            src[i, :len(row)] = row
        out = np.full((len(ids), 1), target_tok.start_id, np.int32)
        done = np.zeros(len(ids), bool)
        for _ in range(47):
            logits = model([src, out], training=False)[:, -1]
            nxt = np.asarray(tf.argmax(logits, -1), np.int32)
            nxt[done] = 0
            out = np.concatenate([out, nxt[:, None]], axis=1)
            done |= nxt == target_tok.end_id
            if done.all():
                break
        for row in out[:, 1:]:
            kept = []
            for token in row:
                if token in (0, target_tok.end_id):
                    break
                kept.append(int(token))
            hyps.append(target_tok.decode(kept))
    scores = score_translations(hyps, [t for _, t in pairs])
    (run_dir / "tutorial_samples.json").write_text(json.dumps(
        [{"source": s, "reference": t, "output": h} for (s, t), h in
         list(zip(pairs, hyps, strict=True))[:20]], ensure_ascii=False, indent=1))
    return {"recipe": "tutorial (word 5k, BiGRU-256, additive attention, greedy)",
            "train_seconds": round(train_seconds, 1), "epochs": round(steps * 64 / len(rows), 2),
            "bleu_greedy": scores["bleu"], "chrf_greedy": scores["chrf"],
            "examples": len(pairs), "parameters": int(model.count_params())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=None,
                        help="pairs TSV (default: data/eng_spa.tsv of `make corpus`, else the "
                             "corpus cached by `rnnkit translation train`); `default`: the "
                             "app's default data (the corpus + the generated share)")
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--recipe", choices=("ours", "tutorial", "both"), default="both")
    parser.add_argument("--cores", default="0,1", help="one core per recipe with --recipe both")
    parser.add_argument("--out", default=None, help="run directory (default: a temp dir)")
    parser.add_argument("--max-train-pairs", type=int, default=None,
                        help="train on a deterministic subset of N training pairs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for `ours` (VALUE read as JSON, else a string)")
    args = parser.parse_args()
    if args.data is None:
        from apps.translation.data import corpus_path

        local = ROOT / "data" / "eng_spa.tsv"
        args.data = str(local if local.is_file() else corpus_path())
    if args.data != "default" and not Path(args.data).is_file():
        print(f"error: {args.data} not found: build it with `make corpus`", file=sys.stderr)
        sys.exit(2)
    out = Path(args.out or tempfile.mkdtemp(prefix="recipes-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.recipe == "both":
        cores = args.cores.split(",")
        procs = []
        for recipe, core in zip(("ours", "tutorial"), cores, strict=False):
            command = ["taskset", "-c", core, sys.executable, __file__, "--data", args.data,
                       "--minutes", str(args.minutes), "--recipe", recipe,
                       "--out", str(out / recipe)]
            if args.max_train_pairs:
                command += ["--max-train-pairs", str(args.max_train_pairs)]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
                   "TF_NUM_INTEROP_THREADS": "1"}
            procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env))
        results = []
        for proc in procs:
            lines = [line for line in proc.communicate()[0].splitlines() if line.startswith("{")]
            results.extend(json.loads(line) for line in lines)
        print(f"\n| recipe | train min | epochs | BLEU greedy | BLEU beam | chrF greedy | "
              f"test pairs |  (data {Path(args.data).name}, {args.minutes:g} min, 1 core each)")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in results:
            print(f"| {r['recipe']} | {r['train_seconds'] / 60:.1f} | {r['epochs']} | "
                  f"{r['bleu_greedy']} | {r.get('bleu_beam', 'n/a')} | {r['chrf_greedy']} | "
                  f"{r['examples']} |")
        return
    import tensorflow as tf

    if os.environ.get("TF_NUM_INTRAOP_THREADS"):
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    if args.recipe == "ours":
        overrides = {}
        for item in args.set:
            key, _, value = item.partition("=")
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                overrides[key] = value
        data = None if args.data == "default" else args.data  # the app's default data
        result = run_ours(data, args.minutes, out, args.max_train_pairs, overrides)
        result["overrides"] = overrides
    else:
        result = run_tutorial(None if args.data == "default" else args.data, args.minutes, out,
                              args.max_train_pairs)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
