"""Captioning: image → sentence with a conv feature grid and an attention LSTM decoder."""


def __getattr__(name: str):
    if name == "TASK":
        from apps.captioning.task import TASK

        return TASK
    raise AttributeError(name)
