"""Keras layers shared by the rnnkit apps (imports TensorFlow/Keras)."""

from rnnkit.layers.attention import BahdanauAttention, LuongAttention
from rnnkit.layers.recurrent import RECURRENT_KINDS, RecurrentBlock
