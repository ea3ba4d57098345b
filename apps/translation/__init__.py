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
    # Half the pairs and 12 epochs of the default model: about 3 minutes on 2 idle cores.
    demo_overrides={"num_pairs": 12000, "epochs": 12, "eval_limit": 200},
    headline_metrics=("bleu_beam", "bleu_greedy", "chrf_beam"),
    input_kind="text",
)
