"""Text files a user writes (settings, cue packs): UTF-8 only, every problem one clear line.

Each problem raises ConfigError "KIND error: PATH: ..." naming what is wrong and how to fix
it, so a bad byte in a comment stops a start with exit 78 and refuses a reload, never a crash.
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path
from typing import Any

from coachd.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.9/3.10
    import tomli as tomllib

_BOM = "\ufeff"  # Windows editors start UTF-8 files with one; it carries no text


def read_text(path: Path, kind: str) -> str:
    """The file decoded as UTF-8, without a leading byte-order mark.

    `kind` names the file in errors: "config" gives "config error: PATH: ...".
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{kind} error: {path}: cannot read: {exc.strerror}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(
            f"{kind} error: {path}: the file is UTF-16 (it starts with a UTF-16 byte-order "
            "mark); coachd reads UTF-8 text only: save it as UTF-8"
        )
    try:
        return data.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{kind} error: {path}: {_describe_bad_byte(data, exc.start)}") from None


def read_toml(path: Path, kind: str) -> dict[str, Any]:
    """The file's TOML document (read as read_text reads it)."""
    text = read_text(path, kind)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{kind} error: {path}: not valid TOML: {exc}") from None


def _describe_bad_byte(data: bytes, offset: int) -> str:
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    return (
        f"line {line}, column {offset - line_start + 1}: byte 0x{data[offset]:02X} is not "
        "UTF-8 (text saved as Latin-1 or Windows-1252?); coachd reads UTF-8 text only: "
        "save the file as UTF-8"
    )
