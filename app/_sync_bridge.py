"""Drive an async generator from sync code on a background thread with its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TypeVar

T = TypeVar("T")

_JOIN_TIMEOUT = 5.0
_NEXT, _CLOSE = "next", "close"


def iterate_in_thread(factory: Callable[[], AsyncGenerator[T, None]]) -> Generator[T, None, None]:
    """Yield the items of `factory()` as the caller asks for them; re-raise its exception.

    The background generator takes one step per item the caller asks for, so when the caller
    stops early (`close()`, a `break`) it is suspended at a yield and is closed with `aclose()`,
    exactly as an async caller would close it. A caller interrupted while waiting for an item
    (e.g. KeyboardInterrupt) cancels the step in flight instead.
    """
    results: queue.Queue[tuple[str, object]] = queue.Queue()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def consume() -> None:
        demands: asyncio.Queue[str] = asyncio.Queue()
        holder.update(loop=asyncio.get_running_loop(), task=asyncio.current_task())
        holder["demands"] = demands
        started.set()
        async with contextlib.aclosing(factory()) as agen:
            while await demands.get() == _NEXT:
                try:
                    item = await anext(agen)
                except StopAsyncIteration:
                    break
                results.put(("item", item))
        # Leaving `aclosing` after a close demand is the caller's early aclose().

    def worker() -> None:
        try:
            asyncio.run(consume())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            results.put(("error", exc))
        else:
            results.put(("done", None))
        finally:
            started.set()

    def send(demand: str) -> None:
        loop, demands = holder.get("loop"), holder.get("demands")
        if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(demands, asyncio.Queue):
            with contextlib.suppress(RuntimeError):  # the loop may have just closed
                loop.call_soon_threadsafe(demands.put_nowait, demand)

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(worker,), daemon=True, name="runner-sync")
    thread.start()
    started.wait()
    waiting = False
    try:
        while True:
            send(_NEXT)
            waiting = True
            kind, value = results.get()
            waiting = False
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                assert isinstance(value, BaseException)
                raise value
            else:
                return
    finally:
        if thread.is_alive():
            task, loop = holder.get("task"), holder.get("loop")
            if not waiting:
                send(_CLOSE)
            elif isinstance(loop, asyncio.AbstractEventLoop) and isinstance(task, asyncio.Task):
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)
            thread.join(_JOIN_TIMEOUT)
