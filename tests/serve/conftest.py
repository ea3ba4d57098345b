"""Shared fixtures: the four shipped models loaded once, and real inputs from their samples."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = ROOT / "exported"
APPS = ("sentiment", "translation", "speech_to_text", "captioning")


def sentiment_texts(count: int) -> list[str]:
    lines = (EXPORTED / "sentiment" / "eval" / "test_sample.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:count]]


def translation_sources(count: int) -> list[str]:
    path = EXPORTED / "translation" / "assets" / "heldout_sample.tsv"
    return [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()[:count]]


def speech_clips(count: int) -> tuple[list[bytes], list[np.ndarray]]:
    """WAV files of the shipped held-out utterances and their int16 samples."""
    import soundfile

    sample = np.load(EXPORTED / "speech_to_text" / "heldout_sample.npz")
    offsets, audio = sample["offsets"], sample["audio"]
    files, waves = [], []
    for index in range(count):
        wave = audio[offsets[index]:offsets[index + 1]]
        buffer = io.BytesIO()
        soundfile.write(buffer, wave, 16000, format="WAV", subtype="PCM_16")
        files.append(buffer.getvalue())
        waves.append(wave)
    return files, waves


def caption_images(count: int) -> list[bytes]:
    paths = sorted((EXPORTED / "captioning" / "samples").glob("*.png"))[:count]
    return [path.read_bytes() for path in paths]


@pytest.fixture(scope="session")
def models():
    from rnnkit.serve import load_models

    return load_models([EXPORTED / app for app in APPS])


@pytest.fixture(scope="module")
def client(models):
    from starlette.testclient import TestClient

    from rnnkit.serve import ServeConfig, create_app

    service = create_app(models, ServeConfig(max_batch=8, max_wait_ms=2))
    with TestClient(service.app, raise_server_exceptions=False) as test_client:
        test_client.service = service
        yield test_client
