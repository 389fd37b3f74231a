"""Capture stage: frame sources (camera, file, network URL, synthetic runner).

Every source yields `Frame`s with a monotonic capture time and a sequence number.
`open_source` picks the kind from the source string.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Optional

from coachd.messages import Frame


class FrameSource(ABC):
    """A stream of frames. `read` returns None when a finite source has ended."""

    name: str = "source"  # how errors and summaries name it
    live: bool = False  # a camera or stream: frames arrive on their own clock
    finite: bool = False  # ends by itself (a file, synthetic with seconds=)
    nominal_fps: float = 30.0
    frames_dropped: int = 0  # frames skipped so the consumer always gets the newest

    @abstractmethod
    def read(self) -> Optional[Frame]:
        """The next frame; None at the end; SourceError when the source fails."""

    def describe(self) -> str:
        """The source and the mode it actually delivers, for logs and `coachd check`."""
        return self.name

    def close(self) -> None:  # noqa: B027 - most sources have something to release, not all
        """Release the device, file or connection."""

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


# At the end: open.py and the sources it opens import FrameSource from this module.
from coachd.capture.open import open_source  # noqa: E402

__all__ = ["FrameSource", "open_source"]
