"""Captioning: image → sentence with a conv feature grid and an attention LSTM decoder."""

from apps.captioning.config import CaptioningConfig
from apps.captioning.task import evaluate, export, predict, train
from rnnkit.app import AppSpec

APP = AppSpec(
    name="captioning",
    description="image captions (Show, Attend and Tell style) on rendered scenes or your images",
    config_class=CaptioningConfig,
    train=train,
    evaluate=evaluate,
    export=export,
    predict=predict,
    demo_overrides={"train_size": 3000, "validation_size": 200, "test_size": 200, "epochs": 6,
                    "units": 128, "encoder_filters": "16,32,64", "encoder_dim": 64},
    headline_metrics=("unseen_bleu4", "unseen_cider", "unseen_exact_match", "seen_bleu4"),
    input_kind="image file",
)
