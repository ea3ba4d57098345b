"""rnnkit applications: each package exposes APP (see rnnkit/app.py)."""
