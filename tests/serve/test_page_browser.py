"""The page at `/` in headless Chromium (Debian's `chromium`): it lists the models, runs a
translation from a link and draws its attention map; checked in the DOM and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse

import numpy as np
import pytest

from tests.serve.test_process import EXPORTED, running_server

pytestmark = pytest.mark.slow


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "this test needs Debian's chromium (apt-get install chromium)"
    return binary


def _browse(url: str, *extra: str) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=15000",
               *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_page_translates_and_draws_attention(tmp_path):
    from apps.translation import TASK

    source = "I have two dogs and a cat."
    expected = TASK.predict(EXPORTED / "translation", [source], {"explain": True})[0]
    with running_server([EXPORTED / "sentiment", EXPORTED / "translation"]) as base:
        query = urllib.parse.urlencode({"model": "translation", "text": source, "explain": "1"})
        url = f"{base}/?{query}"
        dom = _browse(url, "--dump-dom").stdout
        assert 'id="model-sentiment"' in dom and 'id="model-translation"' in dom
        assert expected["translation"] in dom  # the shipped model's answer
        assert 'class="map"' in dom  # the attention heat map
        shot = tmp_path / "page.png"
        _browse(url, f"--screenshot={shot}", "--window-size=1000,1200")
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape == (1200, 1000, 3)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    shaded = (red > green + 60) & (red > blue + 60)  # attention cells are shades of red
    assert shaded.sum() > 500
    dark = (pixels.sum(axis=-1) < 200).sum()  # text was drawn
    assert dark > 2000
