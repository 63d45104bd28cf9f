"""Vendor and product names: normalisation, identity tokens, order numbers, family tables.

Product identity is compared as token sets. A product name from the advisory is lowered,
stripped of noise words (``family``, ``series``, ``incl. SIPLUS variants`` …), of versions
that restrict it (``WinCC V7.4 and earlier`` → name filter ``<= V7.4``) and of order numbers
and part-number globs in parentheses (kept separately). Tokens keep model numbers whole
(``S7-1200`` → ``s71200``, ``X-200`` → ``x200``, ``XC-200`` → ``xc200``), so XC-200 never
equals X-200 and ControlLogix 5570 never equals 5580. A device adds family tokens derived
from its order number (6ES721… → S7-1200) or model (SCALANCE XC208 → XC-200).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property

_VENDOR_ALIASES: tuple[tuple[str, str], ...] = (
    (r"siemens", "siemens"),
    (r"schneider", "schneider electric"),
    (r"rockwell|allen[\s-]?bradley", "rockwell automation"),
    (r"phoenix\s*contact|innominate", "phoenix contact"),
    (r"hirschmann|belden", "hirschmann"),
    (r"\bmoxa\b", "moxa"),
    (r"\bcisco\b", "cisco"),
    (r"mitsubishi", "mitsubishi electric"),
    (r"hitachi\s+energy", "hitachi energy"),
    (r"\bgeneral electric\b|^ge\b", "ge"),
    (r"johnson\s+cont", "johnson controls"),
    (r"automation\s*direct", "automationdirect"),
    (r"\bwago\b", "wago"),
    (r"\babb\b", "abb"),
    (r"codesys|3s-smart", "codesys"),
)
_CORPORATE = re.compile(
    r"\b(?:inc|llc|ltd|limited|gmbh|ag|co|corp|corporation|company|s\.?a|se|srl|bv|kg|plc|"
    r"oy|ab|as|spa|pty|sas)\b\.?", re.I)
DISPLAY = {"siemens": "Siemens", "schneider electric": "Schneider Electric",
           "rockwell automation": "Rockwell Automation", "phoenix contact": "Phoenix Contact",
           "hirschmann": "Hirschmann", "moxa": "Moxa", "cisco": "Cisco"}

NOISE = frozenset({
    "family", "familie", "series", "serie", "cpu", "cpus", "controllers", "incl", "including",
    "siplus", "variants", "variant", "and", "or", "related", "product", "products", "all",
    "the", "of", "for", "with", "device", "devices", "plc", "plcs", "module", "modules",
    "firmware", "references", "reference", "switch", "switches", "type", "model", "models",
    "in", "on", "a", "an", "to", "by", "versions", "version", "affected", "running",
    "industrial", "ethernet",
})
_VENDOR_WORDS = frozenset({
    "siemens", "schneider", "electric", "rockwell", "automation", "allen", "bradley",
    "allenbradley", "phoenix", "contact", "moxa", "hirschmann", "belden", "cisco",
})
_MLFB = re.compile(r"(?<![\w-])6[A-Za-z]{2}\d\s?[\dxX]{3}-[\dA-Za-z]{5}-[\dA-Za-z]{4}(?![\w-])")
_PARENS = re.compile(r"\(([^()]*)\)|\([^()]*$")
_PART_GLOB = re.compile(r"(?<![\w*])([A-Z0-9][A-Z0-9-]{2,}\*[A-Z0-9*]*)")
_PART_CODE = re.compile(r"^(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9-]{5,}$")
_NAME_EARLIER = re.compile(
    r"(?<![\w-])(?:V|v|version\s+)(\d+(?:\.\d+)*(?:\s*(?:SP|Update|Upd)\s*\d+)*)\s+"
    r"(?:and|or)\s+(?:earlier|prior|older|lower)\b", re.I)
_NAME_VERSION = re.compile(r"(?<![\w-])(?:V|v|version\s+)(\d+(?:\.\d+)*)(?:\s+SP\s*\d+)?\s*$", re.I)
_NOISY_PARENS = re.compile(r"incl|includ|variant|part\s*num|siplus|former|e\.g\.|only|see|"
                           r"mlfb|\bnet\b|all\b", re.I)
_GLOB_TOKEN = re.compile(r"^[a-z]*\d+x{2,}[a-z]*$")
_SCALANCE_MODEL = re.compile(r"\bX([A-Z]{0,2})-?(\d)(\d{2})\b", re.I)

# Order-number prefix → tokens of the product family (the curated family table).
ORDER_FAMILIES: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (prefix, frozenset(tokens.split())) for prefix, tokens in (
        ("6ES721", "simatic s71200"), ("6AG121", "simatic s71200"),
        ("6ES751", "simatic s71500"), ("6AG151", "simatic s71500"),
        ("6ES731", "simatic s7300"), ("6AG131", "simatic s7300"),
        ("6ES741", "simatic s7400"), ("6AG141", "simatic s7400"),
        ("6ED1052", "logo"),
        ("BMXP34", "modicon m340"), ("BMEP58", "modicon m580"), ("BMEH58", "modicon m580"),
        ("TM221", "modicon m221"), ("TM241", "modicon m241"), ("TM251", "modicon m251"),
        ("140CPU", "modicon quantum"), ("TSXP57", "modicon premium"),
        ("1756-L8", "controllogix 5580"), ("1756-L7", "controllogix 5570"),
        ("5069-L3", "compactlogix 5380"), ("5069-L4", "compactlogix 5480"),
        ("1769-L3", "compactlogix 5370"), ("1769-L1", "compactlogix 5370"),
    ))


# Model-number tokens that name a whole family: sharing one of them is not fuzzy evidence.
FAMILY_TOKENS = frozenset(t for _, toks in ORDER_FAMILIES for t in toks
                          if any(c.isdigit() for c in t)) | {"s7200", "s71500", "s71200"}


def normalise_vendor(raw: str | None) -> frozenset[str]:
    """Vendor keys named by a vendor string (``Red Lion, AutomationDirect`` names two)."""
    if not raw or not raw.strip():
        return frozenset()
    text = raw.strip().lower()
    keys = {key for pattern, key in _VENDOR_ALIASES if re.search(pattern, text)}
    if keys:
        return frozenset(keys)
    text = re.sub(r"\([^)]*\)", " ", text)
    out = set()
    for part in re.split(r",|/|;", text):
        part = _CORPORATE.sub(" ", part)
        part = " ".join(re.sub(r"[^\w\s&+-]", " ", part).split())
        if part:
            out.add(part)
    return frozenset(out)


def vendor_key(raw: str | None) -> str | None:
    """The single key of a device's vendor (the first alias that applies)."""
    keys = normalise_vendor(raw)
    return sorted(keys)[0] if keys else None


def normalise_order(code: str | None) -> str | None:
    """Order number without spaces, upper case (``6ES7 214-1AG40-0XB0`` → ``6ES7214-…``)."""
    if not code or not str(code).strip():
        return None
    return re.sub(r"\s+", "", str(code)).upper()


def singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str | None) -> list[str]:
    """Normalised identity tokens of a name (noise and vendor words removed)."""
    if not text:
        return []
    out = []
    for part in re.split(r"[\s,;:/()+&\[\]|]+", text.lower()):
        part = re.sub(r"[!®™\"'`.\-_]", "", part.strip("*"))
        if not part or part in NOISE or part in _VENDOR_WORDS:
            continue
        out.append(part if any(c.isdigit() for c in part) else singular(part))
    return out


@dataclass(frozen=True)
class NameFilter:
    """A version restriction written into a product name."""

    op: str  # "train" (same release line) or "<=" ("V7.4 and earlier")
    version: str
    token: str  # the token it would be if the device names it as identity (SINAMICS V90)


@dataclass(frozen=True)
class ProductName:
    """Identity of one advisory product entry."""

    tokens: frozenset[str]
    globs: tuple[str, ...] = ()
    order_numbers: tuple[str, ...] = ()
    order_patterns: tuple[str, ...] = ()
    name_filter: NameFilter | None = None

    @cached_property
    def significant(self) -> frozenset[str]:
        return frozenset(t for t in self.tokens if any(c.isdigit() for c in t))

    @cached_property
    def weak(self) -> bool:
        """Too little to identify a product by name ("Series B")."""
        return not self.significant and not any(len(t) >= 4 for t in self.tokens)

    def index_token(self) -> str:
        """The token a device must hold for this product to be a candidate."""
        if self.significant:
            return max(self.significant, key=lambda t: (len(t), t))
        words = [t for t in self.tokens]
        return max(words, key=lambda t: (len(t), t)) if words else "*"


def product_name(name: str, extra_text: str = "", model_numbers: list[str] | None = None
                 ) -> ProductName:
    """Parse an advisory product name (branch path text) into its identity."""
    orders = {normalise_order(m) for m in model_numbers or [] if m}
    patterns: set[str] = set()
    for text in (name, extra_text):
        for found in _MLFB.findall(text or ""):
            compact = found.replace(" ", "")
            if re.search(r"[a-z]", compact):  # lower-case x/y stand for any character
                patterns.add(re.sub(r"[a-z]", "?", compact))
            else:
                orders.add(compact.upper())
    for code in list(orders):
        if code and ("*" in code or "?" in code):
            orders.discard(code)
            patterns.add(code)
    name_filter = None
    body = name
    earlier = _NAME_EARLIER.search(body)
    if earlier:
        name_filter = NameFilter("<=", earlier.group(1), "v" + earlier.group(1).replace(".", ""))
        body = body[:earlier.start()] + body[earlier.end():]
    kept: list[str] = []
    for group in _PARENS.finditer(body):
        inner = group.group(1) or ""
        for glob in _PART_GLOB.findall(inner.upper()):
            patterns.add(glob.replace(" ", ""))
        code = inner.strip().upper()
        if not _MLFB.search(inner) and "*" not in inner and " " not in code \
                and _PART_CODE.match(code):
            patterns.add(code + "*")
        elif group.group(1) is not None and not _NOISY_PARENS.search(inner) \
                and not _MLFB.search(inner) and "*" not in inner:
            kept.append(inner)  # "(TIA Portal)" is identity, "(incl. SIPLUS variants)" is not
    body = _PARENS.sub(" ", body) + " " + " ".join(kept)
    body = _MLFB.sub(" ", body)
    if name_filter is None:
        trailing = _NAME_VERSION.search(body)
        if trailing:
            ver = trailing.group(1)
            name_filter = NameFilter("train", ver, "v" + ver.replace(".", ""))
            body = body[:trailing.start()]
    toks = tokens(body)
    globs = tuple(t for t in toks if _GLOB_TOKEN.match(t))
    plain = frozenset(t for t in toks if t not in globs)
    return ProductName(plain, globs, tuple(sorted(o for o in orders if o)),
                       tuple(sorted(patterns)), name_filter)


def order_matches(pattern: str, code: str) -> bool:
    """``BMXP34*`` / ``6ED1052-?????-0BA8`` against a normalised order code."""
    return fnmatchcase(code, pattern.upper())


@dataclass
class DeviceName:
    """Tokens of a device identity, split into what it says and what the family tables add."""

    tokens: frozenset[str]
    family: frozenset[str] = field(default_factory=frozenset)
    order_codes: tuple[str, ...] = ()
    product_tokens: frozenset[str] = field(default_factory=frozenset)

    @property
    def all_tokens(self) -> frozenset[str]:
        return self.tokens | self.family


def device_name(product: str | None, model: str | None, order_code: str | None) -> DeviceName:
    own = set(tokens(product)) | set(tokens(model))
    family: set[str] = set()
    codes = []
    for candidate in (normalise_order(order_code), normalise_order(model)):
        if candidate and candidate not in codes and re.search(r"\d", candidate):
            codes.append(candidate)
    for code in codes:
        for prefix, fam in ORDER_FAMILIES:
            if code.startswith(prefix):
                family |= fam
    text = " ".join(x for x in (product, model) if x)
    if "scalance" in text.lower():
        for letters, series, _ in _SCALANCE_MODEL.findall(text):
            irt = "irt" if re.search(r"\bIRT\b", text, re.I) else ""
            family.add(f"x{letters.lower()}{series}00{irt}")
    return DeviceName(frozenset(own), frozenset(family - own), tuple(codes),
                      frozenset(tokens(product)))


def glob_matches(glob: str, device_tokens: frozenset[str]) -> bool:
    regex = re.compile("^" + re.sub(r"x{2,}", lambda m: "[0-9a-z]" * len(m.group(0)), glob))
    return any(regex.match(t) for t in device_tokens)
