"""Secrets out of anything coachd shows: URL credentials in logs, errors, status and reports.

A camera URL carries its password in the userinfo (rtsp://user:pass@host/...) or in the query
(?user=admin&pwd=...); `redact` replaces both with *** wherever a URL appears in a text,
keeping the scheme, host, port, path and the names of the parameters.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# Any URL in a text; a password may hold almost anything, so the match runs to white space.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")
# Closing quotes and punctuation after a URL belong to the text around it (a repr, a
# sentence): a URL's secrets never end it, a host or a query value does.
_TRAILING = "'\"`)]}>,;:.!"
# Query keys whose value is a secret (compared without case, "-" or "_"): the usual names
# and anything containing one of these words (access_token, api_key, X-Amz-Signature...).
_SECRET_KEY_PARTS = (
    "user",
    "usr",
    "login",
    "pass",
    "pwd",
    "pw",
    "token",
    "key",
    "auth",
    "secret",
    "sig",
    "credential",
    "session",
    "sid",
    "cookie",
)
_SECRET_KEYS_EXACT = frozenset({"u", "p", "uid", "code"})


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ***."""
    return _URL.sub(_redact_match, text)


class RedactingFormatter(logging.Formatter):
    """A log formatter that redacts URL credentials in the whole record (tracebacks too)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    kept = len(url.rstrip(_TRAILING))
    return _redact_url(url[:kept]) + url[kept:]


def _redact_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    rest = _redact_userinfo(rest)
    # The query and the fragment (OAuth puts tokens there) hold key=value pairs.
    start = min((i for i in (rest.find("?"), rest.find("#")) if i != -1), default=len(rest))
    return f"{scheme}://{rest[:start]}{_redact_pairs(rest[start:])}"


def _redact_userinfo(rest: str) -> str:
    """Everything before the host's "@" as ***. An unescaped password may hold "/", "@",
    "?" or ":", so the host starts after the last "@" before the query; when "?" or "#" in
    the password hides that "@", after the first "@" with no "/" before it."""
    end = len(rest)
    for mark in "?#":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    at = rest.rfind("@", 0, end)
    if at == -1:
        at = rest.find("@")
        if at == -1 or "/" in rest[:at]:
            return rest
    return MASK + rest[at:]


def _redact_pairs(query: str) -> str:
    pairs = []
    for pair in re.split(r"([?#&;])", query):
        key, sep, value = pair.partition("=")
        if sep and value and _is_secret_key(key):
            pair = f"{key}={MASK}"
        pairs.append(pair)
    return "".join(pairs)


def _is_secret_key(key: str) -> bool:
    name = re.sub(r"[-_.\s]|%[0-9A-Fa-f]{2}", "", key).lower()
    return name in _SECRET_KEYS_EXACT or any(part in name for part in _SECRET_KEY_PARTS)
