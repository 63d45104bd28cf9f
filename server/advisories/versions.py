"""Vendor-aware version parsing and comparison.

One tolerant parser turns the spellings seen in advisories and on devices into a key:

- prefixes ``V``, ``v.``, ``SV``, ``R``, ``MX-V``, ``Firmware``, ``FW``, ``Version`` are dropped;
- dotted numbers compare numerically, a letter suffix ranks after the bare number
  (``1.03`` < ``1.03D``); ``x``/``X``/``*`` components are wildcards resolved against the
  installed version (Siemens ``V3.X.16`` means "the minor line of the installed CPU");
- Siemens service packs, updates and hotfixes map onto numeric slots after major.minor, so
  ``V7.5 SP2 Update 16`` == ``7.5.2.16`` and ``V17 Upd4`` == ``V17 Update 4`` == ``17.0.0.4``;
  builds, ``IR`` and ``kit`` revisions rank after the release they belong to;
- Schneider two-component versions have two-digit minors: ``2.3`` == ``2.30`` (scheme
  ``schneider``);
- Cisco IOS ``15.2(6)E0a`` keeps its train (``E``, ``EA``); versions on different trains are
  ``Incomparable`` rather than guessed;
- Rockwell ``32.011`` is major 32, minor 11; fixes are chosen per major train
  (``release_train``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

Elem = tuple[int, str]
ZERO: Elem = (0, "")
WILD: Elem = (-1, "*")
KEYLEN = 12

_PREFIX_WORDS = re.compile(
    r"^(?:firmware|fw|software|sw|version|ver|revision|rev|release|frn)\b[\s_:.\-]*", re.I)
_LETTER_PREFIX = re.compile(r"^(?:[A-Z]{1,3}-)?(?:SV|V|R|FW)\.?\s?(?=\d|[xX*]+\.)", re.I)
_CISCO = re.compile(r"^(\d+)\.(\d+)\((\d+)([a-z]?)\)([A-Z]{1,4})?(\d+)?([a-z]?)$")
_PART = r"(?:\d+(?:[a-z]{1,2}(?!\d))?|[xX*]+)"  # letters right after digits, not "4u1"
_MAIN = re.compile(rf"^({_PART})((?:\.{_PART})*)", re.I)
_LINE_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{1,4}-(?=\d)")  # Hirschmann "L2P-09.0.04"
_QUAL = re.compile(
    r"^[\s_.\-]*(?P<word>service\s*pack|sp|update|upd|uc|cu|qu|mp|hotfix\s*rev|hotfix|hf|patch|fp|p|build"
    r"|b|ir|kit|rev|r|u)[\s_.]*(?P<num>\d+)(?P<let>[a-z]?)(?![a-z])", re.I)
_DASH_BUILD = re.compile(r"^(?:-|\s*\()(\d+)\)?")
_SLOTS = {"sp": 0, "servicepack": 0, "update": 1, "upd": 1, "uc": 1, "cu": 1, "qu": 1, "mp": 1,
          "hotfix": 2, "hotfixrev": 2, "hf": 2, "patch": 2, "fp": 2, "p": 2,
          "build": 3, "b": 3, "ir": 3, "kit": 3, "rev": 3, "r": 3, "u": 1}
SLOT_NAMES = ("SP", "Update", "HF", "build")


class Incomparable(ValueError):
    """Two versions cannot be ordered (different Cisco trains, unresolved wildcards)."""


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version: ``raw`` as written, ``key`` for ordering."""

    raw: str
    key: tuple[Elem, ...]
    train: str | None = None  # Cisco IOS train ("E", "EA"); None for other schemes
    wild: tuple[int, ...] = ()
    n: int = KEYLEN  # components as written (``V16`` 1, ``33.011`` 2)
    slotted: bool = False  # holds SP / Update / hotfix / build parts

    def __str__(self) -> str:
        return self.raw

    def release_train(self) -> tuple[object, ...]:
        """Releases that are maintained together: Cisco major.minor+train, else the major."""
        if self.train is not None:
            return (self.key[0][0], self.key[1][0], self.train)
        return (self.key[0][0],)

    def resolved(self, other: Version) -> Version:
        """This version with its wildcard components taken from ``other``."""
        if not self.wild:
            return self
        key = list(self.key)
        for pos in self.wild:
            key[pos] = other.key[pos] if other.key[pos] != WILD else ZERO
        values = iter(str(key[pos][0]) + key[pos][1] for pos in self.wild)
        raw = re.sub(r"(?<![A-Za-z])[xX*]+(?![A-Za-z])", lambda _: next(values, "0"), self.raw)
        return Version(raw, tuple(key), self.train, (), self.n, self.slotted)


def compare(a: Version, b: Version) -> int:
    """-1, 0, 1 as ``a`` is older than, equal to, newer than ``b``; may raise Incomparable."""
    if a.train != b.train:
        raise Incomparable(f"{a.raw} and {b.raw} are on different release trains")
    if a.wild and b.wild:
        raise Incomparable(f"{a.raw} and {b.raw} both hold wildcards")
    if a.wild:
        a = a.resolved(b)
    elif b.wild:
        b = b.resolved(a)
    return (a.key > b.key) - (a.key < b.key)


def scheme_for_vendor(vendor: str | None) -> str:
    """The comparison scheme of a normalised vendor key."""
    return "schneider" if vendor == "schneider electric" else "generic"


@lru_cache(maxsize=65536)
def parse_version(text: str, scheme: str = "generic") -> Version | None:
    """Parse ``text``; None when it is not a version this module can order."""
    if not isinstance(text, str):
        return None
    raw = " ".join(text.replace("_", " ").split())
    s = raw
    for _ in range(3):
        stripped = _PREFIX_WORDS.sub("", s)
        stripped = _LETTER_PREFIX.sub("", stripped)
        stripped = _LINE_PREFIX.sub("", stripped)
        if stripped == s:
            break
        s = stripped.strip()
    if not s:
        return None
    abb = re.match(r"^(\d+)p(\d+)r(\d+)$", s, re.I)  # ABB Relion "1p1r26" = 1.1 revision 26
    if abb:
        key = tuple((int(g), "") for g in abb.groups())
        return Version(raw, _pad(key), None, (), 3)
    cisco = _CISCO.match(s)
    if cisco:
        major, minor, rebuild, rlet, train, throttle, tlet = cisco.groups()
        key = ((int(major), ""), (int(minor), ""), (int(rebuild), rlet),
               (int(throttle or 0), tlet))
        return Version(raw, _pad(key), train or "", (), 4)
    main = _MAIN.match(s)
    if not main:
        return None
    parts = [main.group(1), *[p for p in main.group(2).split(".") if p]]
    elems: list[Elem] = []
    wild: list[int] = []
    for i, part in enumerate(parts):
        if part[0] in "xX*":
            elems.append(WILD)
            wild.append(i)
            continue
        digits = re.match(r"\d+", part).group(0)  # type: ignore[union-attr]
        elems.append((int(digits), part[len(digits):].lower()))
    if (scheme == "schneider" and len(parts) == 2 and parts[1].isdigit()
            and len(parts[1]) == 1):
        elems[1] = (elems[1][0] * 10, "")
    rest = s[main.end():]
    slots: dict[int, Elem] = {}
    while rest.strip():
        qual = _QUAL.match(rest)
        if qual:
            word = re.sub(r"\s+", "", qual.group("word").lower())
            slot = _SLOTS[word]
            elem = (int(qual.group("num")), qual.group("let").lower())
        else:
            dash = _DASH_BUILD.match(rest)
            if not dash:
                return None
            slot, elem = 3, (int(dash.group(1)), "")
            qual = dash
        if slot in slots:
            return None
        slots[slot] = elem
        rest = rest[qual.end():]
    written = len(elems)
    if slots:
        base = max(2, len(elems))
        elems += [ZERO] * (base - len(elems))
        elems += [slots.get(i, ZERO) for i in range(4)]
        written = len(elems)
    if len(elems) > KEYLEN:
        return None
    return Version(raw, _pad(tuple(elems)), None, tuple(wild), written, bool(slots))


def _pad(key: tuple[Elem, ...]) -> tuple[Elem, ...]:
    return key + (ZERO,) * (KEYLEN - len(key))
