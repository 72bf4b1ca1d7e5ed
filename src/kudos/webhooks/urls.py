"""What a webhook URL may look like, pure (the services turn a ``None`` into an error).

An absolute ``http`` or ``https`` URL of at most ``MAX_URL`` characters, with a host (a DNS
name, IDNA letters allowed, or an address), a port from 1 to 65535 if it has one, no user
name or password (a password in a URL ends up in listings and logs), and no spaces or
control characters anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import SplitResult, urlsplit, urlunsplit

MAX_URL = 2000
MAX_NAME = 253
# A host name's labels after IDNA encoding: letters, digits, hyphens (and underscores,
# which some internal names carry).
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def split(url: str) -> SplitResult | None:
    """The parts of a URL of the right shape (its host not yet judged); ``None`` if not."""
    if len(url) > MAX_URL or any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on 99999 or "abc"
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return None if port == 0 else parts


def valid_name(host: str) -> bool:
    """Whether ``host`` is a DNS name (IDNA letters allowed)."""
    try:
        name = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = name.split(".")
    return 0 < len(name) <= MAX_NAME and all(_LABEL.fullmatch(label) for label in labels)


def masked(url: str) -> str:
    """``url`` as it may be shown: credentials in it (stored before URLs with credentials
    were refused) become ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
