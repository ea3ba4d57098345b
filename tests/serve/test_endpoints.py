"""Every endpoint on every shipped model, against the app's own runtime predictor."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from rnnkit.serve.predictors import jsonable
from tests.serve.conftest import (
    APPS,
    EXPORTED,
    caption_images,
    sentiment_texts,
    speech_clips,
    translation_sources,
)


def test_healthz_and_models(client):
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "models": sorted(APPS)}
    listed = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in listed] == list(APPS)
    for model in listed:
        manifest = json.loads((EXPORTED / model["name"] / "manifest.json").read_text())
        assert model["manifest"] == manifest
        assert model["app"] == manifest["app"]
        # the variant that runs: the compact captioner holds no float32 ONNX file
        assert model["quantization"] == ("float16" if model["name"] == "captioning" else "none")
        assert re.fullmatch(r"sha256:[0-9a-f]{12}", model["model_version"])
        assert model["endpoint"] == f"/v1/models/{model['name']}/predict"
        one = client.get(f"/v1/models/{model['name']}")
        assert one.status_code == 200 and one.json() == model
    kinds = {m["name"]: m["input"] for m in listed}
    assert kinds == {"sentiment": "text", "translation": "text", "speech_to_text": "audio",
                     "captioning": "image"}


def test_sentiment_single_and_many(client, models):
    texts = sentiment_texts(5)
    expected = models["sentiment"].predictor.predict(texts)
    one = client.post("/v1/models/sentiment/predict", json={"text": texts[0]})
    assert one.status_code == 200
    body = one.json()
    assert body["model"] == "sentiment"
    assert body["model_version"] == models["sentiment"].version
    assert body["result"]["label"] == expected[0]["label"]
    assert body["result"]["probabilities"] == pytest.approx(expected[0]["probabilities"])
    many = client.post("/v1/models/sentiment/predict", json={"texts": texts}).json()["results"]
    assert [r["label"] for r in many] == [e["label"] for e in expected]
    for result in many:
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_translation_greedy_beam_nbest_and_attention(client, models):
    sources = translation_sources(3)
    translator = models["translation"].predictor
    # the server copies unknown source words and unseen names, as predict does
    greedy = translator.translate(sources, "greedy", copy_unknown=True)
    beam = translator.translate(sources, "beam", beam_width=4, length_penalty=0.6, num_return=3,
                                copy_unknown=True)
    answer = client.post("/v1/models/translation/predict",
                         json={"texts": sources, "beam_width": 1}).json()["results"]
    assert [a["translation"] for a in answer] == [g["translation"] for g in greedy]
    answer = client.post("/v1/models/translation/predict",
                         json={"texts": sources, "beam_width": 4, "n_best": 3}).json()["results"]
    assert [a["translation"] for a in answer] == [b["translation"] for b in beam]
    for got, want in zip(answer, beam, strict=True):
        assert len(got["n_best"]) == 3
        assert [h["translation"] for h in got["n_best"]] == [
            h["translation"] for h in want["n_best"]]
        assert got["score"] == pytest.approx(want["score"])
    explained = client.post("/v1/models/translation/predict",
                            json={"text": sources[0], "beam_width": 1, "explain": True})
    attention = explained.json()["result"]["attention"]
    weights = np.array(attention["weights"])
    assert weights.shape == (len(attention["target_tokens"]), len(attention["source_tokens"]))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-3)
    beam_explained = client.post("/v1/models/translation/predict",
                                 json={"text": sources[0], "beam_width": 4, "explain": True})
    result = beam_explained.json()["result"]
    assert result["translation"] == beam[0]["translation"]
    weights = np.array(result["attention"]["weights"])
    assert weights.shape[1] == len(result["attention"]["source_tokens"])


@pytest.mark.parametrize("encoding", ["multipart", "base64"])
def test_speech_upload(client, models, encoding):
    files, waves = speech_clips(2)
    expected = models["speech_to_text"].predictor.transcribe_many(
        [w.astype(np.float32) / 32768.0 for w in waves])
    for data, want, wave in zip(files, expected, waves, strict=True):
        if encoding == "multipart":
            response = client.post("/v1/models/speech_to_text/predict",
                                   files={"audio": ("clip.wav", data, "audio/wav")})
        else:
            response = client.post("/v1/models/speech_to_text/predict",
                                   json={"audio": base64.b64encode(data).decode()})
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert result["transcript"] == want and want
        assert result["seconds"] == pytest.approx(wave.size / 16000, abs=1e-3)


def test_speech_resamples_other_rates(client, models):
    import io

    import soundfile

    _, waves = speech_clips(1)
    from rnnkit.data.audio import resample

    upsampled = resample(waves[0].astype(np.float32) / 32768.0, 16000, 22050)
    buffer = io.BytesIO()
    soundfile.write(buffer, upsampled, 22050, format="FLAC")
    response = client.post("/v1/models/speech_to_text/predict",
                           files={"audio": ("clip.flac", buffer.getvalue(), "audio/flac")})
    assert response.status_code == 200
    assert response.json()["result"]["transcript"] == models["speech_to_text"].predictor.transcribe(
        upsampled, sample_rate=22050)


@pytest.mark.parametrize("encoding", ["multipart", "base64"])
def test_captioning_upload(client, models, encoding):
    images = caption_images(2)
    expected = models["captioning"].predictor.caption(images)
    for data, want in zip(images, expected, strict=True):
        if encoding == "multipart":
            response = client.post("/v1/models/captioning/predict",
                                   files={"image": ("scene.png", data, "image/png")},
                                   data={"beam_width": "3"})
        else:
            response = client.post("/v1/models/captioning/predict",
                                   json={"image": base64.b64encode(data).decode(),
                                         "beam_width": 3})
        assert response.status_code == 200, response.text
        assert response.json()["result"]["caption"] == want["caption"]


def test_captioning_attention_map(client):
    data = caption_images(1)[0]
    response = client.post("/v1/models/captioning/predict",
                           files={"image": ("scene.png", data, "image/png")},
                           data={"explain": "true"})
    attention = response.json()["result"]["attention"]
    height, width = attention["grid"]
    weights = np.array(attention["weights"])
    assert weights.shape == (len(attention["tokens"]), height * width)
    assert attention["tokens"][-1] == "</s>"
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-3)


def test_metrics_count_requests_and_batches(client):
    client.post("/v1/models/sentiment/predict", json={"text": "a fine film"})
    client.post("/v1/models/sentiment/predict", json={"text": ""})
    text = client.get("/metrics").text
    def value(pattern):
        match = re.search(pattern + r" ([0-9.e+]+)", text)
        assert match, pattern
        return float(match.group(1))
    assert value(r'rnnkit_requests_total\{model="sentiment",route="predict",status="200"\}') >= 1
    assert value(r'rnnkit_requests_total\{model="sentiment",route="predict",status="422"\}') >= 1
    assert value(r'rnnkit_request_seconds_count\{model="sentiment",route="predict"\}') >= 2
    assert value(r'rnnkit_batch_size_count\{model="sentiment"\}') >= 1
    assert value(r'rnnkit_inference_seconds_count\{model="sentiment"\}') >= 1
    assert "rnnkit_queued_requests" in text


def test_page_lists_every_model_route(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/v1/models" in page.text and "<script>" in page.text


def test_tflite_int8_backend_serves_too():
    from starlette.testclient import TestClient

    from rnnkit.serve import create_app, load_models

    models = load_models([EXPORTED / "sentiment", EXPORTED / "speech_to_text"],
                         backend="tflite", quantization="int8", num_threads=1)
    files, _ = speech_clips(1)
    with TestClient(create_app(models).app) as client:
        listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
        assert {m["backend"] for m in listed.values()} == {"tflite"}
        assert {m["quantization"] for m in listed.values()} == {"int8"}
        text = sentiment_texts(1)[0]
        answer = client.post("/v1/models/sentiment/predict", json={"text": text}).json()
        assert answer["result"] == jsonable(models["sentiment"].predictor.predict([text])[0])
        heard = client.post("/v1/models/speech_to_text/predict",
                            files={"audio": ("a.wav", files[0], "audio/wav")})
        assert heard.status_code == 200 and heard.json()["result"]["transcript"]
