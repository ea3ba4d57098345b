"""rnnkit: recurrent-network applications on one Keras 3 layer kit.

Importing ``rnnkit`` itself is cheap and never imports TensorFlow: the
TensorFlow-dependent parts (``rnnkit.layers``, ``rnnkit.training``,
``rnnkit.export``, ``rnnkit.data``, ``rnnkit.losses``) are imported on demand,
and ``rnnkit.runtime``, ``rnnkit.text``, ``rnnkit.decoding`` and
``rnnkit.metrics`` stay free of it so a service can install only those.
"""

__version__ = "0.1.0"

# Version of the export directory layout (manifest.json "format_version").
EXPORT_FORMAT_VERSION = 1
