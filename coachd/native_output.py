"""Lines native libraries print on stderr that Python cannot switch off.

LiteRT announces "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ on the
first interpreter of a process; neither TF_CPP_MIN_LOG_LEVEL nor its Python API turns it off.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

LITERT_BANNER = "INFO: Created TensorFlow Lite XNNPACK delegate"


@contextmanager
def stderr_without(*prefixes: str) -> Iterator[None]:
    """Hold fd 2 while the block runs, then pass on every line not starting with a prefix.

    Unlike discarding fd 2, nothing else is lost: another thread's line written meanwhile
    comes out late, at the end of the block. Keep the block short (one native call).
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to filter
        yield
        return
    unwanted = tuple(p.encode() for p in prefixes)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().splitlines(keepends=True)
            kept = b"".join(line for line in lines if not line.startswith(unwanted))
            if kept:
                os.write(2, kept)
