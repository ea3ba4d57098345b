"""Golden tests compare float32 Keras with a float64 reference at 1e-5: keep matmuls in full
float32 on GPUs too (TensorFloat-32 would round them to ~1e-3)."""

import tensorflow as tf

tf.config.experimental.enable_tensor_float_32_execution(False)
