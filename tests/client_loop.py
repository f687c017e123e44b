"""A client through nginx while something changes behind it: the proof that nothing is dropped."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
# Within one client's /health budget (20 r/s, burst 40: rendering/nginx.py's health_limit zone);
# faster, nginx answers 429 by design and the loop would measure the limiter.
PAUSE_SECONDS = 0.0625


class Loop(Generic[T]):
    """Calls `request` until stopped (at most `max_seconds`). It returns (True, what answered)
    for a good answer, (False, why) for a bad one; an OSError or TLS error is a failure too.
    `answers` holds when each good request started and what answered it."""

    def __init__(self, request: Callable[[], tuple[bool, T | str]], max_seconds: float = 60) -> None:
        self.request = request
        self.max_seconds = max_seconds
        self.answers: list[tuple[float, T]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                ok, answer = self.request()
                if ok:
                    self.answers.append((sent, answer))  # type: ignore[arg-type]
                else:
                    self.failures.append(str(answer))
            except (OSError, ssl.SSLError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(PAUSE_SECONDS)

    def __enter__(self) -> Loop[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.max_seconds + 10)
