"""rnnkit applications: each package exposes a lazily imported `TASK` (see rnnkit/task.py)."""
