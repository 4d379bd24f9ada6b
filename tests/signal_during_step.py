"""`python -m gan ...` that sends itself a signal from inside its N-th optimiser step.

    SIGNAL_AT_CALL=N [SIGNAL_NAME=SIGTERM] [SIGNAL_RANK=R] python tests/signal_during_step.py train ...

Optimiser steps alternate D, G: call 2k-1 is D's step of training step k, call 2k is G's. The
signal arrives after the optimiser has changed the weights, where a torn checkpoint would be
saved if the run stopped at once. Under torchrun only rank R (default 0) gets it.
"""

import os
import signal
import sys

from torch.optim.optimizer import register_optimizer_step_post_hook

from gan.cli import main

calls = 0


def _signal_at_call(optimizer, args, kwargs):  # noqa: ARG001
    global calls
    calls += 1
    if calls == int(os.environ["SIGNAL_AT_CALL"]) and os.environ.get("RANK", "0") == os.environ.get("SIGNAL_RANK", "0"):
        os.kill(os.getpid(), getattr(signal, os.environ.get("SIGNAL_NAME", "SIGTERM")))


if __name__ == "__main__":
    register_optimizer_step_post_hook(_signal_at_call)
    main(sys.argv[1:])
