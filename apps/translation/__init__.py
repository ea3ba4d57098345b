"""Translation: sentence → sentence with a recurrent encoder–decoder and attention."""


def __getattr__(name: str):
    if name == "TASK":
        from apps.translation.task import TASK

        return TASK
    raise AttributeError(name)
