"""Secrets out of anything coachd shows: URL credentials in logs, errors, status and reports.

A camera URL carries its password in the userinfo (rtsp://user:pass@host/...) or in the query
(?user=admin&pwd=...); `redact` replaces both with *** wherever a URL appears in a text,
keeping the scheme, host, port, path and the names of the parameters.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

MASK = "***"
_NOT_USERINFO = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=%]")

# Any URL in a text: it runs to white space, or across spaces while an "@" follows on the
# line before any "/" (a password with spaces; a sentence with an "@" is hidden too).
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s/]*[ \t]+(?=[^/@\n]*@))*\S+")
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


def escape_userinfo(url: str) -> str:
    """`url` with "@", "/", "?", "#" and the like in its user name or password
    percent-encoded, so FFmpeg finds the host (and does not print part of the password as
    one); FFmpeg decodes them again for the login. Escapes already there are kept."""
    scheme, sep, rest = url.partition("://")
    at = _userinfo_end(rest) if sep else -1
    if at == -1:
        return url
    user, colon, password = rest[:at].partition(":")
    return f"{scheme}://{_escape(user)}{colon}{_escape(password)}{rest[at:]}"


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
    at = _userinfo_end(rest)
    return rest if at == -1 else MASK + rest[at:]


def _userinfo_end(rest: str) -> int:
    """Where the "@" ending the userinfo is in `rest` (the URL after "://"), or -1.

    An unescaped password may hold "/", "@", "?" or ":", so the host starts after the last
    "@" before the query; when "?" or "#" in the password hides that "@", after the first
    "@" with no "/" before it. When unsure this takes too much: a path with "@" is hidden.
    """
    end = len(rest)
    for mark in "?#":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    at = rest.rfind("@", 0, end)
    if at == -1:
        at = rest.find("@")
        if at == -1 or "/" in rest[:at]:
            return -1
    return at


def _escape(part: str) -> str:
    # RFC 3986 userinfo characters, and %XX escapes, stay as they are.
    return _NOT_USERINFO.sub(lambda m: quote(m.group(0), safe=""), part)


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
