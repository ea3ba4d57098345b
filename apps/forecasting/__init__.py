"""Time-series forecasting: a recent history → the next ``horizon`` values with quantiles.

Default data: real series shipped inside the statsmodels wheel (monthly Mauna Loa CO2,
yearly sunspots, quarterly US unemployment); user data: a CSV with a time column and one or
more value columns (``target_column`` names the one forecast). ``TASK``
(``apps/forecasting/task.py``) is imported on first use.
"""


def __getattr__(name: str):
    if name == "TASK":
        from apps.forecasting.task import TASK

        return TASK
    raise AttributeError(name)
