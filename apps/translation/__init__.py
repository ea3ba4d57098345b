"""Translation: sentence → sentence with a recurrent encoder–decoder and attention."""

from apps.translation.config import TranslationConfig
from apps.translation.task import evaluate, export, predict, train
from rnnkit.app import AppSpec

APP = AppSpec(
    name="translation",
    description="English→German (or your pairs) with a BiLSTM encoder + attention decoder",
    config_class=TranslationConfig,
    train=train,
    evaluate=evaluate,
    export=export,
    predict=predict,
    demo_overrides={"num_pairs": 6000, "epochs": 4, "embedding_dim": 64, "encoder_units": 64,
                    "decoder_units": 128, "source_vocab_size": 600, "target_vocab_size": 600,
                    "eval_limit": 200},
    headline_metrics=("bleu_beam", "bleu_greedy", "chrf_beam"),
    input_kind="text",
)
