"""Keras layers shared by the rnnkit apps (imports TensorFlow/Keras)."""

from rnnkit.layers.recurrent import RECURRENT_KINDS, RecurrentBlock
from rnnkit.layers.attention import BahdanauAttention, LuongAttention
from rnnkit.layers.seq2seq import (
    AttentionDecoder,
    PaddingMask,
    build_attention_decoder,
    build_encoder,
    build_seq2seq_model,
)
from rnnkit.layers.audio import LengthsToMask, LogMelFrontend, ScaleLengths, ZeroMasked
from rnnkit.layers.image import (
    ConvImageEncoder,
    FeatureGrid,
    GridMask,
    Rescale,
    build_pretrained_encoder,
)
