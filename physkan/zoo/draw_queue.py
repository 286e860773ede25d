"""Drawing uploaded versions for the web pages, in a child process, one at a time.

The server process never imports torch, so it cannot draw a network itself. With
``physkan zoo serve --draw-uploads`` each accepted upload is queued here and drawn by
``python -m physkan.zoo render --root ROOT NAME:VERSION`` (:mod:`physkan.zoo.render`), run
by one daemon thread per worker: one child at a time, each killed after ``timeout``
seconds, at most ``max_pending`` waiting (more are dropped with a log line: the page then
shows its placeholder, and ``physkan zoo render`` draws them later). The child rebuilds the
model exactly as :func:`physkan.zoo.load` does (no pickle) and writes the sidecars
atomically; the pages pick them up at the next request. Standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["DEFAULT_DRAW_TIMEOUT_S", "DrawQueue"]

#: seconds one drawing child may run before it is killed
DEFAULT_DRAW_TIMEOUT_S = 120.0
_log = logging.getLogger("physkan.zoo")


class DrawQueue:
    """Draws ``(name, version)`` of the zoo at ``root`` in child processes, serially."""

    def __init__(
        self,
        root: str | os.PathLike,
        timeout: float = DEFAULT_DRAW_TIMEOUT_S,
        max_pending: int = 64,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.root = Path(root)
        self.timeout = float(timeout)
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue(max_pending)
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()  # makes "queue, then mark busy" atomic for _run's check
        self._thread = threading.Thread(target=self._run, name="zoo-draw", daemon=True)
        self._thread.start()

    def submit(self, name: str, version: int) -> bool:
        """Queue ``name:version`` (validated by the caller); False when the queue is full."""
        with self._lock:
            try:
                self._queue.put_nowait((name, int(version)))
            except queue.Full:
                _log.warning("zoo: drawing queue full: %s:%s gets no drawing", name, version)
                return False
            self._idle.clear()
        return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every queued drawing is done; False if ``timeout`` (s) passed first."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop the worker thread after the queued drawings (does not wait for them)."""
        with contextlib.suppress(queue.Full):  # then the daemon thread dies with the process
            self._queue.put_nowait(None)

    def _command(self, name: str, version: int) -> list[str]:
        spec = f"{name}:{version}"
        return [sys.executable, "-m", "physkan.zoo", "render", "--root", str(self.root), spec]

    def _draw(self, name: str, version: int) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        try:
            done = subprocess.run(
                self._command(name, version),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=self.timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _log.warning("zoo: drawing %s:%s took over %g s; killed", name, version, self.timeout)
            return
        except OSError as exc:
            _log.warning("zoo: cannot start the drawing of %s:%s: %s", name, version, exc)
            return
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            _log.warning("zoo: drawing %s:%s failed: %s", name, version, tail[0][:300])

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._draw(*item)
            finally:
                self._queue.task_done()
                with self._lock:
                    if self._queue.unfinished_tasks == 0:
                        self._idle.set()
