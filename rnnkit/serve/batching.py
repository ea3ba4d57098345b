"""Dynamic micro-batching: concurrent requests to one model become one runtime call.

A request (its items and the options they must share) waits at most ``max_wait_s`` after
the first request of a batch arrived, or until ``max_batch`` items are pending, and only while
another request is on its way (``arriving``: the service counts requests whose bodies are
still being read and parsed), so a lone request never waits; the batch's
items, grouped by options, go to ``run(items, options)`` on the model's one worker thread
(runtime sessions are not shared between threads), and each request gets its own slice of
the results. The predictors right-pad the batch by the manifest's rule, so results equal
one-by-one calls. If a batch of several requests fails, each request is retried alone, so a
request that breaks the runtime fails by itself. ``max_batch=1`` turns batching off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

RunFn = Callable[[list[Any], dict[str, Any]], list[Any]]
BatchHook = Callable[[int, float], None]  # (items in the runtime call, seconds)


@dataclass
class _Pending:
    items: list[Any]
    options: dict[str, Any]
    future: asyncio.Future
    key: tuple = field(init=False)

    def __post_init__(self):
        self.key = tuple(sorted(self.options.items()))


_STOP = object()


class MicroBatcher:
    def __init__(self, run: RunFn, max_batch: int = 32, max_wait_s: float = 0.005,
                 name: str = "model", on_batch: BatchHook | None = None):
        if max_batch < 1:
            raise ValueError(f"`max_batch` must be >= 1. Received: max_batch={max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"`max_wait_s` must be >= 0. Received: max_wait_s={max_wait_s}")
        self.run_fn = run
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.on_batch = on_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"serve-{name}")
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.closed = False
        # Requests for this model being read/parsed now (set by the service, on the loop).
        self.arriving = 0

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.get_running_loop().create_task(self._loop())

    @property
    def pending(self) -> int:
        return self.queue.qsize() if self.queue is not None else 0

    async def submit(self, items: Sequence[Any], options: dict[str, Any]) -> list[Any]:
        """Results of ``items`` (one per item), computed in some batch."""
        if self.closed or self.queue is None:
            raise RuntimeError("the model is shutting down")
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(list(items), dict(options), future))
        return await future

    async def close(self) -> None:
        """Finish every request already queued, then stop the worker and its thread."""
        if self.closed:
            return
        self.closed = True
        if self.queue is not None and self.worker is not None:
            await self.queue.put(_STOP)
            await self.worker
        self.executor.shutdown(wait=True)

    # -- worker

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        carried: _Pending | None = None
        stopping = False
        while True:
            first = carried if carried is not None else await self.queue.get()
            carried = None
            if first is _STOP:
                return
            batch, count = [first], len(first.items)
            deadline = loop.time() + self.max_wait_s
            while count < self.max_batch:
                if not self.queue.empty():
                    nxt = self.queue.get_nowait()
                elif self.arriving <= 0:
                    break  # nobody else is coming: waiting would only add latency
                else:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), timeout)
                    except TimeoutError:
                        break
                if nxt is _STOP:
                    stopping = True
                    break
                if count + len(nxt.items) > self.max_batch:
                    carried = nxt
                    break
                batch.append(nxt)
                count += len(nxt.items)
            await self._run_batch(batch)
            if stopping:
                if carried is not None:
                    await self._run_batch([carried])
                while not self.queue.empty():
                    rest = self.queue.get_nowait()
                    if rest is not _STOP:
                        await self._run_batch([rest])
                return

    async def _run_batch(self, batch: list[_Pending]) -> None:
        groups: dict[tuple, list[_Pending]] = {}
        for request in batch:
            groups.setdefault(request.key, []).append(request)
        loop = asyncio.get_running_loop()
        for requests in groups.values():
            items = [item for request in requests for item in request.items]
            try:
                results = await loop.run_in_executor(self.executor, self._timed, items,
                                                     requests[0].options)
            except Exception as error:
                if len(requests) == 1:
                    _settle(requests[0].future, error=error)
                else:  # find the failing request(s): the others still get their answers
                    for request in requests:
                        await self._run_batch([request])
                continue
            start = 0
            for request in requests:
                end = start + len(request.items)
                _settle(request.future, results[start:end])
                start = end

    def _timed(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        began = time.perf_counter()
        results = self.run_fn(items, options)
        if len(results) != len(items):
            raise RuntimeError(f"the predictor returned {len(results)} results for "
                               f"{len(items)} inputs")
        if self.on_batch is not None:
            self.on_batch(len(items), time.perf_counter() - began)
        return results


def _settle(future: asyncio.Future, results: Any = None, error: BaseException | None = None):
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(results)
