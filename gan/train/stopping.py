"""Stopping a run between steps, never inside one.

A signal can arrive anywhere: between the discriminator's and the generator's optimiser steps,
say. Stopping right there and checkpointing would save D one step ahead of G and the random
streams moved on, under the previous step's number. So while a phase trains, Ctrl-C (SIGINT)
and SIGTERM (the app's Stop button, `kill`, a scheduler's time limit) only note the request; the
loop finishes the step, checkpoints it and stops (`TrainingStopped`). A second Ctrl-C stops at
once, without a checkpoint of the step in flight (the checkpoints already written stay).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(KeyboardInterrupt):
    """A run stopped on request after a whole step, with that step checkpointed.

    A KeyboardInterrupt, so that whatever handles Ctrl-C (the CLI, a sweep, a notebook) handles it.
    """


class StopRequest:
    """The signal that asked the current phase to stop, if any (set by the handler, read by the loop)."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def handle(self, signum: int, frame) -> None:  # noqa: ARG002
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now
        self.signal = self.signal or signal.Signals(signum)


@contextlib.contextmanager
def stop_between_steps() -> Iterator[StopRequest]:
    """While the block runs, Ctrl-C and SIGTERM set the returned request instead of raising.

    Signal handlers belong to the main thread: elsewhere (a thread of an app) nothing changes
    and the request is simply never set. The previous handlers come back when the block ends.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.signal(signum, request.handle) for signum in STOP_SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
