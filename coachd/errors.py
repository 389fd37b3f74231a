"""Errors a user can act on: each carries one clear line and the process exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: systemd and supervisors know it


class CoachdError(Exception):
    """An error with a one-line message meant for the user, never a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(CoachdError):
    exit_code = EXIT_USAGE


class ConfigError(CoachdError):
    """A bad setting or a broken cue pack: the service cannot start until it is fixed."""

    exit_code = EXIT_CONFIG


class SourceError(CoachdError):
    """A frame source that cannot be opened or read: names the source and what went wrong.

    Transient as such (a camera or stream that is absent or dropped may come back): the
    daemon retries it with back-off. The subclasses below are permanent.
    """

    permanent = False


class BadSourceError(SourceError):
    """A source that cannot heal by waiting: a bad file, a URL that answers with no video."""

    permanent = True


class SourceSpecError(BadSourceError):
    """The source string itself is wrong: a bad synthetic: option, an unparseable URL."""

    exit_code = EXIT_USAGE


class AudioError(CoachdError):
    """An audio device or voice that cannot be used."""
