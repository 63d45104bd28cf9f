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
_QUALS = r"(?:[\s_]*(?:SP|Service\s+Pack|Update|Upd|UC|HF|Hotfix|CU|P|U)\s*\d+[a-z]?)*"
_VER = re.compile(
    r"(?<![\w./\-])(?P<v>"
    r"(?:SV|V|v\.?)?\d+\.\d+\(\d+[a-z]?\)[A-Z]{1,4}\d*[a-z]?"  # Cisco IOS
    r"|(?:[A-Z]{1,3}-)?(?:SV|V|v\.?)?\d+(?:\.(?:\d+[A-Za-z]?|[xX]))+"
    r"(?:[_-](?:kit|r)\d+|-\d{1,3}(?![\d.]))?"  # "20.054_kit1", "6.1.1-3"
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


def fix_candidates(text: str, vendor_fix: bool = False) -> list[tuple[str, str | None]]:
    """(version, the software name written right before it or None) the text presents as fixes.

    A ``vendor_fix`` remediation needs no wording of intent ("ABB 800xA Base 6.1.1-3").
    """
    if not text or not (vendor_fix or _INTENT.search(text)):
        return []
    clean = _URL.sub(" ", text)
    out: list[tuple[str, str | None]] = []
    for m in _VER.finditer(clean):
        before = clean[max(0, m.start() - 30):m.start()]
        foreign = _FOREIGN.search(before)
        value = " ".join(m.group("v").split()).rstrip(".,;")
        if re.fullmatch(r"\d{1,2}\.\d", value) and re.search(r"\b(?:cvss|v3)\b", before, re.I):
            continue
        item = (value, foreign.group(0) if foreign else None)
        if item not in out:
            out.append(item)
    return out


def fix_versions(text: str, own_tokens: Iterable[str] = (),
                 candidates: list[tuple[str, str | None]] | None = None) -> list[str]:
    """Version strings that ``text`` presents as fixes of the product named by ``own_tokens``.

    A version written right after another software's name ("TIA Portal V17") is skipped unless
    that name is the product's own.
    """
    own = {t.lower() for t in own_tokens}
    out: list[str] = []
    for value, foreign in candidates if candidates is not None else fix_candidates(text):
        if foreign and not _is_own(foreign, own):
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
                core = " ".join(_core(variant).lower().split())
                if len(core) >= 3:
                    phrases.setdefault(core, set()).add(pid)
        self._phrases = sorted(phrases.items(), key=lambda kv: len(kv[0]), reverse=True)

    def __call__(self, text: str) -> set[str]:
        """Product ids named in ``text`` (empty: the text names none of them)."""
        if not self._phrases or not text:
            return set()
        low = " ".join(text.lower().split())
        taken: list[tuple[int, int]] = []
        found: set[str] = set()
        for phrase, pids in self._phrases:
            start = low.find(phrase)
            while start >= 0:
                end = start + len(phrase)
                bounded = (start == 0 or not _WORD(low[start - 1])) and \
                    (end == len(low) or not _WORD(low[end]))
                if bounded and not any(a < end and start < b for a, b in taken):
                    taken.append((start, end))
                    found |= pids
                start = low.find(phrase, start + 1)
        return found


def _WORD(char: str) -> bool:
    return char.isalnum() or char in "-_"


def _core(name: str) -> str:
    """A product name as prose would write it: no parentheses, vendor prefix, noise suffix."""
    core = re.sub(r"\([^)]*\)?", " ", name)
    core = re.sub(r"^\s*(?:allen-bradley|rockwell automation|siemens|schneider electric|moxa|"
                  r"phoenix contact)\s+", "", core, flags=re.I)
    core = re.sub(r"\s+(?:controllers?|series|firmware|family|devices?|products?)\s*$", "",
                  core.strip(), flags=re.I)
    return " ".join(core.split())


