"""Ordering of vendor version strings as checks compare them (``as: version``).

There is one version comparator in otaudit: the advisories' (``server/advisories/versions.py``),
which knows the vendors' spellings. Checks use it through this module, so a baseline condition
and the advisory matcher can never order two versions differently:

- a leading ``V``/``v``/``SV``/``FW`` and words such as ``Firmware`` are dropped;
- missing trailing components are zeros: ``V4.5`` == ``V4.5.0`` (``4.5`` < ``4.5.1``);
- Siemens service packs and updates are numeric components: ``V7.5 SP2 Update 16`` ==
  ``7.5.2.16`` (Siemens software reports the dotted form of the same release);
- a letter right after a number ranks after it (``1.03`` < ``1.03D``);
- Cisco IOS ``15.2(6)E0a`` keeps its train; versions on different trains cannot be ordered
  (the condition is then ``unknown``, never a pass or a fail).
"""

from __future__ import annotations

from functools import lru_cache, total_ordering
from typing import Any

from otaudit.server.advisories import versions as _advisories


class VersionError(ValueError):
    """The string is not a version we can order."""


@total_ordering
class VersionKey:
    """A parsed version that orders with ``<``, ``==`` … like the advisory matcher.

    Comparing versions of different Cisco trains raises ``TypeError`` (the condition
    evaluator turns that into ``unknown``).
    """

    __slots__ = ("version",)

    def __init__(self, version: _advisories.Version) -> None:
        self.version = version

    def _cmp(self, other: Any) -> int:
        if not isinstance(other, VersionKey):
            raise TypeError(f"cannot compare a version with {type(other).__name__}")
        try:
            return _advisories.compare(self.version, other.version)
        except _advisories.Incomparable as exc:
            raise TypeError(str(exc)) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VersionKey):
            return NotImplemented
        try:
            return self._cmp(other) == 0
        except TypeError:
            return False

    def __lt__(self, other: Any) -> bool:
        return self._cmp(other) < 0

    def __hash__(self) -> int:
        return hash((self.version.key, self.version.train))

    def __repr__(self) -> str:
        return f"VersionKey({self.version.raw!r})"


@lru_cache(maxsize=4096)
def version_key(text: str) -> VersionKey:
    """Sort key of ``text``; raise ``VersionError`` when it is not a version."""
    if not isinstance(text, str):
        raise VersionError(f"{text!r} is not a version string")
    parsed = _advisories.parse_version(text)
    if parsed is None:
        raise VersionError(f"{text!r} is not a version")
    return VersionKey(parsed)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ``VersionError`` when either is not a version or the two cannot be ordered.
    """
    try:
        return _advisories.compare(version_key(a).version, version_key(b).version)
    except _advisories.Incomparable as exc:
        raise VersionError(str(exc)) from None
