"""Sentiment analysis (many-to-one): text → label + probabilities (+ attention weights).

Default data: the human-rated hutto_ICWSM_2014 sentences (see ``apps/sentiment/data.py``);
user data: CSV / TSV / JSONL (text + label columns) or a folder per class.
"""

from apps.sentiment.config import SentimentConfig
from apps.sentiment.task import evaluate, export, predict, train
from rnnkit.app import AppSpec

APP = AppSpec(
    name="sentiment",
    description="text classification (default: binary sentiment of real human-rated sentences)",
    config_class=SentimentConfig,
    train=train,
    evaluate=evaluate,
    export=export,
    predict=predict,
    demo_overrides={"epochs": 2, "max_train_examples": 6000, "units": 32, "vocab_size": 6000,
                    "attention_units": 32,
                    "distill_teachers": 2},
    headline_metrics=("accuracy", "macro_f1", "baseline_accuracy", "negation_pairs_correct"),
    input_kind="text",
)

__all__ = ["APP", "SentimentConfig"]
