import os

import pytest


@pytest.fixture(scope="module")
def isolated_cache(tmp_path_factory):
    """A fresh ``RNNKIT_CACHE`` for one test module (restored afterwards)."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("RNNKIT_CACHE")
    os.environ["RNNKIT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RNNKIT_CACHE")
    else:
        os.environ["RNNKIT_CACHE"] = old
