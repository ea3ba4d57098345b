"""Sentiment analysis (many-to-one): text → label + probabilities (+ attention weights).

Default data: the human-rated hutto_ICWSM_2014 sentences (see ``apps/sentiment/data.py``);
user data: CSV / TSV / JSONL (text + label columns) or a folder per class.
``TASK`` (``apps/sentiment/task.py``) is imported on first use.
"""


def __getattr__(name: str):
    if name == "TASK":
        from apps.sentiment.task import TASK

        return TASK
    raise AttributeError(name)
