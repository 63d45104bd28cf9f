"""Ordering of vendor version strings as checks compare them (``as: version``).

Versions are kept exactly as the vendor writes them (``V4.5.2``, ``15.2(6)E0a``, ``2.30``).
For comparison a version is split into runs of digits and runs of letters; a leading
``v``/``V`` is dropped, numbers compare numerically, letters case-insensitively, and a
number ranks above letters at the same position (``1.0.1`` > ``1.0a``). A shorter version
that is a prefix of a longer one is smaller (``4.5`` < ``4.5.0``). No vendor scheme is
perfectly ordered by this rule; checks should compare within one product family.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"\d+|[A-Za-z]+")
VersionKey = tuple[tuple[int, int | str], ...]


class VersionError(ValueError):
    """The string holds no digit: it is not a version we can order."""


@lru_cache(maxsize=4096)
def version_key(text: str) -> VersionKey:
    """Sort key of ``text``; raise ``VersionError`` when it has no digit."""
    if not isinstance(text, str):
        raise VersionError(f"{text!r} is not a version string")
    stripped = text.strip()
    if stripped[:1] in ("v", "V") and stripped[1:2].isdigit():
        stripped = stripped[1:]
    tokens = _TOKEN.findall(stripped)
    if not any(t.isdigit() for t in tokens):
        raise VersionError(f"{text!r} is not a version")
    return tuple((1, int(t)) if t.isdigit() else (0, t.lower()) for t in tokens)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)
