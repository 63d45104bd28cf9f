"""Fixed-in versions hidden in remediation free text, attributed to the right product.

``Update to V3.1.4 or later version``, ``Firmware SV4.10 includes a fix``, ``Update to V7.5
SP2 Update 16``, ``v33.017, v34.014, v35.013 and later`` (one fix per release train),
``FRN 15.2(6)E2a: Allen-Bradley Stratix 5400``. A remediation is attached to product ids,
but older files attach one text to every product and name the product inside the sentence
("Modicon M340 - The vulnerability is fixed in v3.01"); so a text that names products of the
advisory applies only to the products it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_URL = re.compile(r"https?://\S+|www\.\S+|\S+@\S+")
_INTENT = re.compile(
    r"\b(?:updat|upgrad|fix|correct|resolv|address|patch|releas|availab|apply|install|later|"
    r"higher|newer|includes|frn|migrat|remediat|firmware|version)\w*", re.I)
_QUALS = r"(?:[\s_]*(?:SP|Service\s+Pack|Update|Upd|UC|HF|Hotfix|CU|P)\s*\d+[a-z]?)*"
_VER = re.compile(
    r"(?<![\w./\-])(?P<v>"
    r"(?:SV|V|v\.?)?\d+\.\d+\(\d+[a-z]?\)[A-Z]{1,4}\d*[a-z]?"  # Cisco IOS
    r"|(?:[A-Z]{1,3}-)?(?:SV|V|v\.?)?\d+(?:\.(?:\d+[A-Za-z]?|[xX]))+(?:[_-](?:kit|r)\d+)?"
    + _QUALS +
    r"|(?:SV|V)\d+[a-z]?(?:[\s_]*(?:SP|Update|Upd|UC|HF)\s*\d+[a-z]?)+"  # V17 Update 4
    r"|(?<=to\s)(?:SV|V)\d+[a-z]?(?![\w.])"  # "Update to V16"
    r")(?![\w.]*\d)", re.I)
_FOREIGN = re.compile(
    r"(?:tia\s+portal|somachine\s*basic|step\s*7|studio\s*5000|rslogix\s*\d*|logix\s+designer|"
    r"unity\s+pro|control\s+expert|windows(?:\s+server)?|tls|ssl|snmp|snmpv|openssl|iec|cvss|"
    r"chapter|section|page|java|python|codesys|wincc|\.net|http|ipv|ip\s+address|rfc|"
    r"cve|codemeter(?:\s+runtime)?|bios)\s*$", re.I)


@dataclass(frozen=True)
class FixText:
    """A version a remediation text names as a fix."""

    version: str
    start: int


def fix_versions(text: str, own_tokens: Iterable[str] = ()) -> list[str]:
    """Version strings that ``text`` presents as fixes (empty when it names none)."""
    if not text or not _INTENT.search(text):
        return []
    clean = _URL.sub(" ", text)
    own = {t.lower() for t in own_tokens}
    out: list[str] = []
    for m in _VER.finditer(clean):
        before = clean[max(0, m.start() - 30):m.start()]
        foreign = _FOREIGN.search(before)
        if foreign and not _is_own(foreign.group(0), own):
            continue
        value = " ".join(m.group("v").split()).rstrip(".,;")
        if re.fullmatch(r"\d{1,2}\.\d", value) and re.search(r"\b(?:cvss|v3)\b", before, re.I):
            continue
        if value not in out:
            out.append(value)
    return out


def _is_own(phrase: str, own: set[str]) -> bool:
    words = [w for w in re.split(r"\W+", phrase.lower()) if w]
    return bool(words) and all(w in own for w in words)


class Mentions:
    """Finds which of an advisory's products a free text names (longest match wins)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        """``names``: product id → names it may be mentioned by (branch name first)."""
        phrases: dict[str, set[str]] = {}
        for pid, variants in names.items():
            for variant in variants:
                core = _core(variant)
                if len(core) >= 3:
                    phrases.setdefault(core.lower(), set()).add(pid)
        self._phrases = phrases
        ordered = sorted(phrases, key=len, reverse=True)
        self._regex = (re.compile(
            r"(?<![\w-])(" + "|".join(_phrase_pattern(p) for p in ordered) + r")(?![\w-])",
            re.I) if ordered else None)

    def __call__(self, text: str) -> set[str]:
        """Product ids named in ``text`` (empty: the text names none of them)."""
        if not self._regex or not text:
            return set()
        found: set[str] = set()
        for m in self._regex.finditer(text):
            key = " ".join(m.group(1).lower().split())
            found |= self._phrases.get(key, set())
        return found


def _core(name: str) -> str:
    """A product name as prose would write it: no parentheses, vendor prefix, noise suffix."""
    core = re.sub(r"\([^)]*\)?", " ", name)
    core = re.sub(r"^\s*(?:allen-bradley|rockwell automation|siemens|schneider electric|moxa|"
                  r"phoenix contact)\s+", "", core, flags=re.I)
    core = re.sub(r"\s+(?:controllers?|series|firmware|family|devices?|products?)\s*$", "",
                  core.strip(), flags=re.I)
    return " ".join(core.split())


def _phrase_pattern(phrase: str) -> str:
    return r"\s+".join(re.escape(w) for w in phrase.split())
