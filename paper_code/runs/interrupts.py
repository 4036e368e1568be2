"""Ctrl-C (SIGINT) and ``kill`` (SIGTERM) that stop a run only between two meta-epochs.

Inside :func:`deferred_interrupts` the first SIGINT or SIGTERM is only recorded; the training loop
polls :attr:`Interrupts.signal` at every meta-epoch boundary, writes its checkpoint there and
raises :class:`RunInterrupted`. So a checkpoint never mixes the dataset of one meta-epoch with the
random generators or environment state of the next, whenever the signal arrives (mid-rollout,
mid-update, mid-evaluation or while a checkpoint is being written). A second signal stops at once
(``KeyboardInterrupt``): files are written atomically, so the last complete checkpoint is kept.

Handlers are installed in the main thread only (elsewhere nothing changes), a SIGINT that the
process was started ignoring (``nohup``, a background job of a non-interactive shell) stays
ignored, and the previous handlers come back on exit. Nested uses share one state.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal at a meta-epoch boundary, after writing its checkpoint."""

    def __init__(self, signum: int, meta_epoch: int, checkpoint: str | None, unit: str = "meta-epoch",
                 output: str = "dataset") -> None:
        super().__init__(signum, meta_epoch, checkpoint)
        self.signum, self.meta_epoch, self.checkpoint, self.unit, self.output = signum, meta_epoch, checkpoint, unit, output

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

    def __str__(self) -> str:
        where = f"checkpoint {self.checkpoint} and {self.output}" if self.checkpoint else "nothing"
        return (f"interrupted ({signal.Signals(self.signum).name}) at {self.unit} {self.meta_epoch}: {where} written at "
                f"that {self.unit} boundary; continue with resume=True")


class StoppedAtOnce(KeyboardInterrupt):
    """A second signal during a run: stopped where it was (files are written atomically)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Interrupts:
    """The signal received so far (None: none)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # the second one: stop now
            raise StoppedAtOnce(signum)
        self.signal = signum


_active: Interrupts | None = None


@contextmanager
def deferred_interrupts() -> Iterator[Interrupts]:
    """Record SIGINT/SIGTERM instead of raising (see the module docstring)."""
    global _active
    if _active is not None:  # nested: the outer context owns the handlers
        yield _active
        return
    state = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state  # no signals outside the main thread: nothing to defer
        return
    old = {}
    for s in SIGNALS:
        if s == signal.SIGINT and signal.getsignal(s) is signal.SIG_IGN:
            continue
        old[s] = signal.signal(s, state._handle)
    _active = state
    try:
        yield state
    finally:
        _active = None
        for s, h in old.items():
            signal.signal(s, h)


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(128 + signum)


def exit_quietly_on_signals() -> None:
    """From now on SIGINT/SIGTERM end the process at once, silently (the command has said what
    happened; a further Ctrl-C during the interpreter's shutdown would otherwise print tracebacks
    from atexit handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _exit_now)


def _stop_at_once(signum: int, frame: Any) -> None:
    exit_quietly_on_signals()  # the signals after this one: no second message, no traceback
    print(f"interrupted ({signal.Signals(signum).name}): stopped at once; files are written atomically, so nothing "
          f"is left half-written", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # ended here, not by an exception: a signal landing inside a library's import could otherwise be caught
    # there and leave that library half-imported for the rest of the command (seen on a loaded machine)
    os._exit(128 + signum)


def stop_commands_at_once() -> None:
    """For ``python -m paper_code`` (installed first thing, before torch's slow import): SIGINT or
    SIGTERM outside a run's deferred window (start-up, ``evaluate``, the end) ends the command with
    one line and exit code 128 + N (130, 143) instead of silence or a traceback. A run's
    :func:`deferred_interrupts` takes over while it trains and gives these back. A signal the
    process was started ignoring (``nohup``) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _stop_at_once)
