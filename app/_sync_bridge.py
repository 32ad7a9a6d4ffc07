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


def iterate_in_thread(factory: Callable[[], AsyncGenerator[T, None]]) -> Generator[T, None, None]:
    """Yield the items of `factory()` as they come; re-raise its exception after them.

    When the caller stops iterating, the background run is cancelled.
    """
    items: queue.Queue[tuple[str, object]] = queue.Queue()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def consume() -> None:
        holder["loop"] = asyncio.get_running_loop()
        holder["task"] = asyncio.current_task()
        started.set()
        async with contextlib.aclosing(factory()) as agen:
            async for item in agen:
                items.put(("item", item))

    def worker() -> None:
        try:
            asyncio.run(consume())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            items.put(("error", exc))
        else:
            items.put(("done", None))
        finally:
            started.set()

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(worker,), daemon=True, name="runner-sync")
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                assert isinstance(value, BaseException)
                raise value
            else:
                return
    finally:
        if thread.is_alive():
            started.wait()
            loop = holder.get("loop")
            task = holder.get("task")
            if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(task, asyncio.Task):
                with contextlib.suppress(RuntimeError):  # the loop may have just closed
                    loop.call_soon_threadsafe(task.cancel)
            thread.join(_JOIN_TIMEOUT)
