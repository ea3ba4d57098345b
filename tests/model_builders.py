"""Tiny models and right-padded batches shared by the export and runtime tests."""

import keras
import numpy as np

VOCAB = 20
LENGTHS = (10, 7, 3, 1)


def padded_tokens(lengths=LENGTHS, max_len=10, seed=0) -> np.ndarray:
    """int32 (B, T) token ids, right-padded with 0, rows of the given lengths."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB, (len(lengths), max_len)).astype("int32")
    for row, length in enumerate(lengths):
        tokens[row, length:] = 0
    return tokens


def sentiment_model(kind="lstm", bidirectional=False, num_layers=1, units=8, seed=0):
    """Embedding(mask_zero) → RecurrentBlock → Dense: the sentiment app's shape."""
    from rnnkit.layers.recurrent import RecurrentBlock

    keras.utils.set_random_seed(seed)
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(VOCAB, 8, mask_zero=True)(tokens)
    x = RecurrentBlock(kind, units, num_layers=num_layers, bidirectional=bidirectional)(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(tokens, logits, name=f"{kind}_{bidirectional}_{num_layers}")


def decoder_step_model(kind="lstm", units=8, seed=0):
    """Token (B,1) + states + encoder outputs/mask → logits, new states (translation shape)."""
    keras.utils.set_random_seed(seed)
    token = keras.Input((1,), dtype="int32", name="token")
    states = [keras.Input((units,), name="state_h")]
    if kind == "lstm":
        states.append(keras.Input((units,), name="state_c"))
    encoder_outputs = keras.Input((None, units), name="encoder_outputs")
    encoder_mask = keras.Input((None,), dtype="bool", name="encoder_mask")
    x = keras.layers.Embedding(VOCAB, 8)(token)
    layer = (keras.layers.LSTM if kind == "lstm" else keras.layers.GRU)(
        units, return_sequences=True, return_state=True
    )
    outputs = layer(x, initial_state=states)
    sequence, new_states = outputs[0], outputs[1:]
    context = keras.layers.Attention()([sequence, encoder_outputs], mask=[None, encoder_mask])
    x = keras.layers.Concatenate()([sequence, context])
    logits = keras.layers.Reshape((VOCAB,), name="logits")(keras.layers.Dense(VOCAB)(x))
    named_states = [
        keras.layers.Identity(name=f"new_{s.name}")(t)
        for s, t in zip(states, new_states, strict=False)
    ]
    return keras.Model(
        [token, *states, encoder_outputs, encoder_mask], [logits, *named_states], name="decoder"
    )


def decoder_step_inputs(kind="lstm", units=8, batch=3, source_len=6, seed=1) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {
        "token": rng.integers(0, VOCAB, (batch, 1)).astype("int32"),
        "state_h": rng.normal(size=(batch, units)).astype("float32"),
        "encoder_outputs": rng.normal(size=(batch, source_len, units)).astype("float32"),
    }
    if kind == "lstm":
        feeds["state_c"] = rng.normal(size=(batch, units)).astype("float32")
    mask = np.ones((batch, source_len), bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    feeds["encoder_mask"] = mask
    return feeds


def keras_outputs(model, feeds) -> list[np.ndarray]:
    from rnnkit.export import keras_outputs as run

    return list(run(model, feeds).values())
