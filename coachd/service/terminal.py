"""Keys pressed on the terminal `coachd run` runs in: the runner's STOP without a mouse."""

from __future__ import annotations

import os
import select
import sys
import termios
import tty
from typing import Optional, TextIO

STOP_KEYS = frozenset("sS ")  # s or the space bar


class TerminalKeys:
    """Reads single key presses from a terminal on stdin, unbuffered and unechoed, until
    close() restores the terminal. `open()` gives None when stdin is no terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._fd = stream.fileno()
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)

    @classmethod
    def open(cls, stream: TextIO = sys.stdin) -> Optional[TerminalKeys]:
        try:
            if not stream.isatty():
                return None
            if _in_background(stream.fileno()):
                return None  # changing the terminal would stop the process (SIGTTOU)
            return cls(stream)
        except (OSError, ValueError, termios.error):
            return None

    def read(self, timeout: float) -> str:
        """The keys pressed by now, waiting up to `timeout` seconds for the first."""
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return ""
        data = os.read(self._fd, 64)
        return data.decode(errors="replace")

    def close(self) -> None:
        termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)


def _in_background(fd: int) -> bool:
    """A background job of the shell whose controlling terminal `fd` is."""
    try:
        return os.tcgetpgrp(fd) != os.getpgrp()
    except OSError:  # not our controlling terminal: no job control applies
        return False
