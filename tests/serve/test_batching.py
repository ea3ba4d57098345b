"""Micro-batching: bounded wait and size, options kept apart, failures isolated, drain on
close, and answers identical to one-by-one calls on every shipped model."""

from __future__ import annotations

import asyncio
import base64
import re
import time

import httpx
import pytest

from rnnkit.serve.batching import MicroBatcher
from tests.serve.conftest import (
    caption_images,
    sentiment_texts,
    speech_clips,
    translation_sources,
)


class Recorder:
    def __init__(self, fail_on=None, delay=0.0):
        self.calls: list[tuple[list, dict]] = []
        self.fail_on = fail_on
        self.delay = delay

    def __call__(self, items, options):
        self.calls.append((list(items), dict(options)))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot handle {self.fail_on}")
        return [f"{item}:{options.get('tag', '')}" for item in items]


def _run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_calls_up_to_max_batch():
    recorder = Recorder()

    async def main():
        batcher = MicroBatcher(recorder, max_batch=4, max_wait_s=0.2)
        batcher.start()
        batcher.arriving = 1
        results = await asyncio.gather(*[batcher.submit([i], {}) for i in range(10)])
        await batcher.close()
        return results

    results = _run(main())
    assert results == [[f"{i}:"] for i in range(10)]
    sizes = [len(items) for items, _ in recorder.calls]
    assert max(sizes) == 4 and sum(sizes) == 10 and len(sizes) == 3


def test_wait_is_bounded():
    recorder = Recorder()

    async def main():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait_s=0.05)
        batcher.start()
        batcher.arriving = 1  # another request is being parsed, and never comes
        began = time.perf_counter()
        await batcher.submit(["alone"], {})
        waited = time.perf_counter() - began
        await batcher.close()
        return waited

    waited = _run(main())
    assert 0.04 <= waited < 1.0
    assert recorder.calls == [(["alone"], {})]


def test_a_lone_request_does_not_wait():
    recorder = Recorder()

    async def main():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait_s=0.5)
        batcher.start()
        began = time.perf_counter()
        await batcher.submit(["alone"], {})
        waited = time.perf_counter() - began
        await batcher.close()
        return waited

    assert _run(main()) < 0.25


def test_max_batch_one_runs_each_request_alone():
    recorder = Recorder()

    async def main():
        batcher = MicroBatcher(recorder, max_batch=1, max_wait_s=0.5)
        batcher.start()
        began = time.perf_counter()
        await asyncio.gather(*[batcher.submit([i], {}) for i in range(5)])
        elapsed = time.perf_counter() - began
        await batcher.close()
        return elapsed

    assert _run(main()) < 0.4  # a full batch does not wait
    assert [items for items, _ in recorder.calls] == [[0], [1], [2], [3], [4]]


def test_requests_with_other_options_never_share_a_call():
    recorder = Recorder()

    async def main():
        batcher = MicroBatcher(recorder, max_batch=16, max_wait_s=0.1)
        batcher.start()
        batcher.arriving = 1
        results = await asyncio.gather(*[batcher.submit([i], {"tag": "ab"[i % 2]})
                                         for i in range(6)])
        await batcher.close()
        return results

    results = _run(main())
    assert results == [[f"{i}:{'ab'[i % 2]}"] for i in range(6)]
    assert len(recorder.calls) == 2
    for items, options in recorder.calls:
        assert {i % 2 for i in items} == {"ab".index(options["tag"])}


def test_a_failing_request_fails_alone():
    recorder = Recorder(fail_on="bad")

    async def main():
        batcher = MicroBatcher(recorder, max_batch=8, max_wait_s=0.1)
        batcher.start()
        batcher.arriving = 1
        outcomes = await asyncio.gather(batcher.submit(["a"], {}), batcher.submit(["bad"], {}),
                                        batcher.submit(["b", "c"], {}), return_exceptions=True)
        await batcher.close()
        return outcomes

    good, bad, more = _run(main())
    assert good == ["a:"] and more == ["b:", "c:"]
    assert isinstance(bad, ValueError) and "bad" in str(bad)
    assert len(recorder.calls[0][0]) == 4  # tried together first


def test_close_answers_every_queued_request():
    recorder = Recorder(delay=0.05)

    async def main():
        batcher = MicroBatcher(recorder, max_batch=2, max_wait_s=0.0)
        batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit([i], {})) for i in range(7)]
        await asyncio.sleep(0)
        await batcher.close()
        with pytest.raises(RuntimeError, match="shutting down"):
            await batcher.submit([99], {})
        return [task.result() for task in tasks]

    assert _run(main()) == [[f"{i}:"] for i in range(7)]


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(Recorder(), max_batch=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(Recorder(), max_wait_s=-1)


# ------------------------------------------------------------------ real models


def _requests():
    texts = sentiment_texts(12)
    sources = translation_sources(8)
    wavs, _ = speech_clips(8)
    images = caption_images(6)
    requests = [("sentiment", {"json": {"text": t}}) for t in texts]
    requests += [("sentiment", {"json": {"texts": texts[:3]}})]
    requests += [("translation", {"json": {"text": s, "beam_width": 1}}) for s in sources]
    requests += [("translation", {"json": {"text": s, "beam_width": 4, "n_best": 2}})
                 for s in sources]
    requests += [("speech_to_text", {"json": {"audio": base64.b64encode(w).decode()}})
                 for w in wavs]
    requests += [("captioning", {"json": {"image": base64.b64encode(i).decode()}})
                 for i in images]
    return requests


async def _serve_all(models, config, requests, concurrent: bool):
    from rnnkit.serve import create_app

    service = create_app(models, config)
    async with service.lifespan(service.starlette):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            async def send(name, kwargs):
                response = await client.post(f"/v1/models/{name}/predict", **kwargs)
                assert response.status_code == 200, response.text
                return response.json()

            if concurrent:
                answers = await asyncio.gather(*[send(n, k) for n, k in requests])
            else:
                answers = [await send(n, k) for n, k in requests]
            metrics = (await client.get("/metrics")).text
    return answers, metrics


def _close(a, b, path="") -> None:
    """Equal JSON, floats within 1e-5 (discrete outputs must match exactly)."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{index}]")
    else:
        assert a == b, path


def test_batched_answers_equal_one_by_one(models):
    from rnnkit.serve import ServeConfig

    requests = _requests()
    batched, metrics = _run(_serve_all(models, ServeConfig(max_batch=16, max_wait_ms=100),
                                       requests, concurrent=True))
    alone, _ = _run(_serve_all(models, ServeConfig(max_batch=1, max_wait_ms=0), requests,
                               concurrent=False))
    _close(batched, alone)
    for (name, _), got, want in zip(requests, batched, alone, strict=True):
        if name == "captioning":  # the conv encoder's float sums vary with the batch size
            assert got["result"]["caption"] == want["result"]["caption"]
        elif name == "translation":  # beam scores vary in the 8th digit with the batch size
            assert got["result"]["translation"] == want["result"]["translation"]
            assert [h["translation"] for h in got["result"].get("n_best", [])] == \
                [h["translation"] for h in want["result"].get("n_best", [])]
        else:  # measured bit-identical: probabilities, scores and n-best included
            assert got == want, name
    # Every model batched something: fewer runtime calls than requests.
    for name in ("sentiment", "translation", "speech_to_text", "captioning"):
        calls = float(re.search(rf'rnnkit_batch_size_count{{model="{name}"}} (\S+)',
                                metrics).group(1))
        sent = sum(1 for n, _ in requests if n == name)
        assert calls < sent, (name, calls, sent)
