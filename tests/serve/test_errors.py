"""Every bad-input class gets a 4xx JSON error naming the problem; a model failure is a 500
without a traceback; the service keeps answering afterwards."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from tests.serve.conftest import caption_images, speech_clips

PNG = caption_images(1)[0]
WAV = speech_clips(1)[0][0]


def _silent_wav(seconds: float) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(seconds * 8000), np.int16), 8000, format="WAV")
    return buffer.getvalue()


def _big_png(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


JSON = {"content-type": "application/json"}
CASES = [
    # (id, model, request kwargs, status, code, words the message must hold)
    ("empty body", "sentiment", {"content": b"", "headers": JSON}, 422, "invalid_input", "empty"),
    ("not json", "sentiment", {"content": b"{text:", "headers": JSON}, 400, "invalid_json",
     "not valid JSON"),
    ("json not object", "sentiment", {"json": ["a"]}, 422, "invalid_input", "object"),
    ("no content type", "sentiment", {"content": b"hello"}, 415, "unsupported_media_type",
     "application/json"),
    ("neither text nor texts", "sentiment", {"json": {}}, 422, "invalid_input", "neither"),
    ("both text and texts", "sentiment", {"json": {"text": "a", "texts": ["b"]}}, 422,
     "invalid_input", "both"),
    ("text wrong type", "sentiment", {"json": {"text": 3}}, 422, "invalid_input",
     "`text` must be a string"),
    ("texts wrong type", "sentiment", {"json": {"texts": "abc"}}, 422, "invalid_input",
     "`texts` must be a list"),
    ("texts item wrong type", "sentiment", {"json": {"texts": ["ok", None]}}, 422,
     "invalid_input", "`texts[1]` must be a string"),
    ("empty text", "sentiment", {"json": {"text": "   "}}, 422, "invalid_input", "empty"),
    ("empty texts", "sentiment", {"json": {"texts": []}}, 422, "invalid_input", "empty"),
    ("unknown field", "sentiment", {"json": {"text": "a", "temperature": 1}}, 422,
     "invalid_input", "temperature"),
    ("too many texts", "sentiment", {"json": {"texts": ["a"] * 65}}, 413, "payload_too_large",
     "65 items"),
    ("text too long", "sentiment", {"json": {"text": "a " * 2001}}, 413, "payload_too_large",
     "characters"),
    ("body too large", "sentiment", {"content": b"[" + b" " * (10 * 1024 * 1024) + b"]",
                                     "headers": JSON}, 413, "payload_too_large", "bytes"),
    ("beam width wrong type", "translation", {"json": {"text": "one", "beam_width": "4"}}, 422,
     "invalid_input", "`beam_width` must be an integer"),
    ("beam width out of range", "translation", {"json": {"text": "one", "beam_width": 0}}, 422,
     "invalid_input", "between 1 and 16"),
    ("n_best over beam", "translation", {"json": {"text": "one", "beam_width": 2, "n_best": 3}},
     422, "invalid_input", "`n_best`"),
    ("explain wrong type", "translation", {"json": {"text": "one", "explain": "yes"}}, 422,
     "invalid_input", "true or false"),
    ("audio missing", "speech_to_text", {"json": {}}, 422, "invalid_input", "`audio` is missing"),
    ("audio wrong type", "speech_to_text", {"json": {"audio": 12}}, 422, "invalid_input",
     "base64"),
    ("audio bad base64", "speech_to_text", {"json": {"audio": "not base64!!"}}, 400,
     "unreadable_audio", "base64"),
    ("audio empty", "speech_to_text", {"files": {"audio": ("a.wav", b"", "audio/wav")}}, 422,
     "invalid_input", "empty"),
    ("audio corrupt", "speech_to_text", {"files": {"audio": ("a.wav", b"RIFF\x00\x01junk" * 20,
                                                             "audio/wav")}}, 400,
     "unreadable_audio", "cannot be decoded"),
    ("audio truncated", "speech_to_text", {"files": {"audio": ("a.wav", WAV[:30], "audio/wav")}},
     400, "unreadable_audio", "audio"),
    ("audio too long", "speech_to_text", {"files": {"audio": ("a.wav", _silent_wav(61),
                                                              "audio/wav")}}, 413,
     "payload_too_large", "61.0 s"),
    ("audio no samples", "speech_to_text", {"files": {"audio": ("a.wav", _silent_wav(0),
                                                                "audio/wav")}}, 422,
     "invalid_input", "no samples"),
    ("image missing", "captioning", {"files": {"picture": ("a.png", PNG, "image/png")}}, 422,
     "invalid_input", "picture"),
    ("image corrupt", "captioning", {"files": {"image": ("a.png", b"\x89PNG\r\n" + b"x" * 99,
                                                         "image/png")}}, 400,
     "unreadable_image", "not a readable image"),
    ("image truncated", "captioning", {"files": {"image": ("a.png", PNG[: len(PNG) // 2],
                                                           "image/png")}}, 400,
     "unreadable_image", "truncated"),
    ("image not base64", "captioning", {"json": {"image": "%%%"}}, 400, "unreadable_image",
     "base64"),
    ("image too many pixels", "captioning", {"files": {"image": ("a.png", _big_png(4097),
                                                                 "image/png")}}, 413,
     "payload_too_large", "pixels"),
    ("beam width form not a number", "captioning",
     {"files": {"image": ("a.png", PNG, "image/png")}, "data": {"beam_width": "wide"}}, 422,
     "invalid_input", "`beam_width` must be an integer"),
    ("unknown model", "forecasting", {"json": {"input": [1, 2]}}, 404, "unknown_model",
     "'forecasting'"),
]


@pytest.mark.parametrize("model,request_args,status,code,words",
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_a_named_4xx(client, model, request_args, status, code, words):
    response = client.post(f"/v1/models/{model}/predict", **request_args)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["status"] == status
    assert words in error["message"]
    assert client.get("/healthz").status_code == 200  # the process is still serving


def test_unknown_routes_and_methods_are_json(client):
    missing = client.get("/v2/whatever")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/v1/models/sentiment/predict")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    unknown = client.get("/v1/models/nope")
    assert unknown.status_code == 404 and "sentiment" in unknown.json()["error"]["message"]


def test_streamed_body_over_the_limit_is_413(client):
    def chunks():
        for _ in range(11):
            yield b" " * (1024 * 1024)

    response = client.post("/v1/models/sentiment/predict", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_runtime_failure_is_500_without_traceback(client, monkeypatch):
    adapter = client.service.models["sentiment"]

    def broken(items, options):
        raise RuntimeError("secret internal detail in /opt/model")

    monkeypatch.setattr(adapter, "run", broken)
    monkeypatch.setattr(client.service.batchers["sentiment"], "run_fn", broken)
    response = client.post("/v1/models/sentiment/predict", json={"text": "fine"})
    assert response.status_code == 500
    body = response.text
    assert response.json()["error"]["code"] == "internal_error"
    assert "Traceback" not in body and "secret" not in body and "RuntimeError" not in body
    monkeypatch.undo()
    again = client.post("/v1/models/sentiment/predict", json={"text": "fine"})
    assert again.status_code == 200


def test_base64_json_and_multipart_agree_for_audio(client):
    by_form = client.post("/v1/models/speech_to_text/predict",
                          files={"audio": ("a.wav", WAV, "audio/wav")}).json()
    by_json = client.post("/v1/models/speech_to_text/predict",
                          json={"audio": base64.b64encode(WAV).decode()}).json()
    assert by_form == by_json
