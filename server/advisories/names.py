"""Vendor and product names: normalisation, identity tokens, order numbers, family tables.

Product identity is compared as token sets. A product name from the advisory is lowered,
stripped of noise words (``family``, ``series``, ``incl. SIPLUS variants`` …), of versions
that restrict it (``WinCC V7.4 and earlier`` → name filter ``<= V7.4``) and of order numbers
and part-number globs in parentheses (kept separately). Tokens keep model numbers whole
(``S7-1200`` → ``s71200``, ``X-200`` → ``x200``, ``XC-200`` → ``xc200``), so XC-200 never
equals X-200 and ControlLogix 5570 never equals 5580. A device adds family tokens derived
from its order number (6ES721… → S7-1200) and from the vendor tables of ``families.yaml``
(SIMATIC HMI panels, Hirschmann Classic switches).

Beyond tokens (issue 15): model lists in a name are choices ("XB-200/XC-200", "KTP700, KTP900
and KTP900F"), hyphenated or family/series numbers hold the models of their range (X-200:
X208, not X204RNA; UC-8100: UC-8112, not UC-8112A), all-caps letters name a series (RS: RS20),
panel diagonals in a name restrict by the device's size (TP1200: 12"), and remarks name other
names of the product (formerly …) or conditions (running … with the Web UI enabled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path

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
    "industrial", "ethernet", "workstation", "workstations",
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
_NOISY_PARENS = re.compile(r"incl|includ|variant|part\s*num|siplus|former|e\.g\.|only|see|ieee|"
                           r"mlfb|\bnet\b|all\b", re.I)
_GLOB_TOKEN = re.compile(r"^[a-z]*\d+x+(?:\d+x*)*$")

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
        ("1769-L3", "compactlogix 5370 l3"), ("1769-L2", "compactlogix 5370 l2"),
        ("1769-L1", "compactlogix 5370 l1"),
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
    if keys and "," in text:  # "Sensormatic Electronics, LLC, Johnson Controls Inc.": both
        for part in text.split(","):
            if any(re.search(pattern, part) for pattern, _ in _VENDOR_ALIASES):
                continue
            part = " ".join(re.sub(r"[^\w\s&+-]", " ", _CORPORATE.sub(" ", part)).split())
            if part and not re.match(r"^(?:a|an|the)\b", part):
                keys.add(part)
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
    if not keys:
        return None
    aliases = {key for _, key in _VENDOR_ALIASES}
    return sorted(keys, key=lambda k: (k not in aliases, k))[0]


def vendor_words(raw: str | None) -> frozenset[str]:
    """Tokens of a vendor name (``ABB``, ``Hitachi Energy``): not part of a product's identity."""
    if not raw:
        return frozenset()
    text = _CORPORATE.sub(" ", re.sub(r"\([^)]*\)", " ", raw))
    return frozenset(t for t in re.split(r"[^\w]+", text.lower()) if len(t) > 1)


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


Core = tuple[str, str, str]  # a model number as written: letters, digits, attached letters


@dataclass(frozen=True)
class ProductName:
    """Identity of one advisory product entry.

    ``tokens`` must all be named by the device; a token in ``series`` ("RS", "NJ", "CMR") is
    also named by a model that continues it with digits (RS20, NJ501, CMR2020), a token in
    ``families`` (X-200, M-800, UC-8100) by a model of that number range (X208, M876,
    UC-8112). Each ``choices`` group (a list "XB-200/XC-200", "KTP700, KTP900 and KTP900F")
    needs one of its members; ``sizes`` are panel diagonals in inches ("4" - 22""); ``aliases``
    are other names of the same product ("including former Unity Pro"); ``conditions`` are
    words of the name that restrict when it applies ("with the Web UI feature enabled").
    """

    tokens: frozenset[str]
    globs: tuple[str, ...] = ()
    order_numbers: tuple[str, ...] = ()
    order_patterns: tuple[str, ...] = ()
    name_filter: NameFilter | None = None
    choices: tuple[tuple[str, ...], ...] = ()
    series: frozenset[str] = frozenset()
    families: tuple[Core, ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()
    aliases: tuple[frozenset[str], ...] = ()
    conditions: tuple[str, ...] = ()

    @cached_property
    def significant(self) -> frozenset[str]:
        return frozenset(t for t in self.tokens if any(c.isdigit() for c in t)
                         and t not in self._family_tokens)

    @cached_property
    def _family_tokens(self) -> frozenset[str]:
        return frozenset("".join(core) for core in self.families)

    @cached_property
    def weak(self) -> bool:
        """Too little to identify a product by name ("Series B")."""
        return (not self.significant and not self.choices and not self.families
                and not any(len(t) >= 4 for t in self.tokens))

    def index_keys(self) -> tuple[str, ...]:
        """Keys a device must produce (``DeviceName.keys``) for this product to be a candidate."""
        if self.significant:
            return (max(self.significant, key=lambda t: (len(t), t)),)
        if self.choices:
            return tuple(k for t in self.choices[0] for k in _keys(t, self))
        if self.families:
            return (f"core:{self.families[0][0]}",)
        words = [t for t in self.tokens if t not in self.series]
        if words:
            return (max(words, key=lambda t: (len(t), t)),)
        return tuple(k for t in sorted(self.tokens) for k in _keys(t, self)) or ("*",)

    def has(self, token: str, device: DeviceName) -> bool:
        """Whether the device names ``token`` (itself, as a series, or as a family member)."""
        if token in device.all_tokens:
            return True
        if token in self.series:  # RS: RS20; CMU: 560CMU05
            n = len(token)
            return any(t.startswith(token) and t[n:n + 1].isdigit() for t in device.all_tokens) \
                or token in device.embedded
        for core in self.families:
            if "".join(core) == token:
                return any(_in_family(core, mine) for mine in device.cores)
        panel = _PANEL_MODEL.match(token)
        if panel and device.size is not None and not device.panel_model:
            # the advisory names the model ("TP1200 Comfort"), the device its size (12")
            return int(panel.group(2)) // 100 == device.size
        return _GLOB_TOKEN.match(token) is not None and glob_matches(token, device.all_tokens)

    def names(self, device: DeviceName) -> bool:
        """Whether the device is this product (or one of its aliases) by name."""
        if not self._names(self.tokens, device):
            return any(self._names(alias, device) for alias in self.aliases)
        return True

    def _names(self, required: frozenset[str], device: DeviceName) -> bool:
        if not all(self.has(t, device) for t in required):
            return False
        if not all(any(self.has(t, device) for t in group) for group in self.choices):
            return False
        if self.globs and not any(glob_matches(g, device.all_tokens) for g in self.globs):
            return False
        if self.sizes:
            return device.size is not None and any(lo <= device.size <= hi
                                                   for lo, hi in self.sizes)
        return bool(required or self.choices or self.globs)


def _keys(token: str, ident: ProductName) -> tuple[str, ...]:
    if token in ident.series:
        return (token, f"core:{token}", f"embedded:{token}")
    for core in ident.families:
        if "".join(core) == token:
            return (f"core:{core[0]}",)
    return (token,)


def _in_family(family: Core, core: Core) -> bool:
    """X-200 holds X208 (not X204RNA); UC-8100 holds UC-8112 (not UC-8112A)."""
    letters, digits, suffix = family
    stem = digits.rstrip("0")
    return (core[0] == letters and len(core[1]) == len(digits) and core[1].startswith(stem)
            and core[2] == suffix)


_SIZES = re.compile(r"(\d{1,2})\s*(?:\"|''|”|″|-?\s?inch(?:es)?)\s*(?:(-|–|to)|(&|and|,|/))?\s*"
                    r"(?:(\d{1,2})\s*(?:\"|''|”|″|-?\s?inch(?:es)?))?", re.I)
_IEEE = re.compile(r"\(?\bIEEE\s*802\.11\s*[a-z/]*\)?", re.I)
_DCS = re.compile(r"\bdistributed control systems?\b", re.I)
_LIST_WORD = re.compile(r"[A-Za-z0-9][\w.+\-]*|/|,|&|\band\b|\bor\b")
_MODEL_WORD = re.compile(r"^(?=.*\d)[A-Za-z0-9][\w.+\-]*$|^[A-Z]{2,5}$")
_CORE = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,6})([\s-]?)(\d{2,5})([A-Za-z]{0,4})(?![A-Za-z0-9])")
_VARIANT = re.compile(r"(?<![A-Za-z])(IRT|RNA)(?![A-Za-z])", re.I)
_FAMILY_WORDS = re.compile(r"\b(?:family|families|series|serie|product line)\b", re.I)
_ALIAS = re.compile(r"^(?:including\s+)?(?:formerly|former(?! name)|aka|also known as)\s+(.+)$",
                    re.I)
_CONDITION_WORDS = re.compile(r"\b(?:running|with|if|when|only|enabled|configured|using|"
                              r"activated|except|unless)\b", re.I)
_PANEL_LETTERS = frozenset({"tp", "ktp", "mtp", "kp", "op", "mp"})
_PANEL_MODEL = re.compile(r"^(tp|ktp|mtp|kp)(\d{1,2}00)$")
_INCHES = re.compile(r"(?<![\d.])(\d{1,2})(?:\s*(?:\"|”|″|'')|\s?-?inch\b)", re.I)


def _sizes(body: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Panel diagonals ("4" - 22"", "7" & 15"") taken out of a name."""
    out: list[tuple[int, int]] = []

    def take(m: re.Match[str]) -> str:
        a, b = int(m.group(1)), int(m.group(4)) if m.group(4) else None
        if b is not None and m.group(2):
            out.append((min(a, b), max(a, b)))
        else:
            out.append((a, a))
            if b is not None:
                out.append((b, b))
        return " "

    return _SIZES.sub(take, body), tuple(out)


def _lists(body: str) -> tuple[str, list[tuple[str, ...]], list[Core]]:
    """Model lists ("XB-200/XC-200", "KTP700, KTP900 and KTP900F") taken out as choices."""
    words = list(_LIST_WORD.finditer(body))
    groups: list[tuple[str, ...]] = []
    families: list[Core] = []
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        run = [words[i]] if _is_model_word(words[i].group(0)) else []
        j = i + 1
        while run and j + 1 < len(words) and words[j].group(0).lower() in ("/", ",", "&", "and",
                                                                             "or"):
            k = j + 1
            if words[k].group(0).lower() == "and" and words[j].group(0) == ",":
                k += 1
            if k < len(words) and _is_model_word(words[k].group(0)):
                run.append(words[k])
                j = k + 1
            else:
                break
        if len(run) > 1:
            items = tuple(dict.fromkeys(t for w in run for t in tokens(w.group(0))))
            if len(items) > 1:
                groups.append(items)
                spans.append((run[0].start(), run[-1].end()))
                families.extend(core for w in run for core, hyphen in _cores(w.group(0))
                                if hyphen and core[1].endswith("0"))
            i = j
        else:
            i += 1
    for start, end in reversed(spans):
        body = body[:start] + " " + body[end:]
    return body, groups, families


def _is_model_word(word: str) -> bool:
    return bool(_MODEL_WORD.match(word)) and "xx" not in word.lower() \
        and word.lower() not in NOISE


def _cores(text: str) -> list[tuple[Core, bool]]:
    """Model numbers in ``text``: (letters, digits, attached letters), written with a hyphen."""
    out = []
    for m in _CORE.finditer(text):
        letters, sep, digits, suffix = m.group(1).lower(), m.group(2), m.group(3), m.group(4)
        variant = _VARIANT.search(text, m.end())
        if not suffix and variant:  # "X202-2IRT", "X201-3P IRT PRO": an IRT switch
            suffix = variant.group(1).lower()
        out.append(((letters, digits, suffix.lower()), sep == "-"))
    return out


def product_name(name: str, extra_text: str = "", model_numbers: list[str] | None = None,
                 vendor: frozenset[str] = frozenset()) -> ProductName:
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
    body = _DCS.sub(" ", _IEEE.sub(" ", name))
    earlier = _NAME_EARLIER.search(body)
    if earlier:
        name_filter = NameFilter("<=", earlier.group(1), "v" + earlier.group(1).replace(".", ""))
        body = body[:earlier.start()] + body[earlier.end():]
    kept: list[str] = []
    aliases: list[frozenset[str]] = []
    conditions: list[str] = []
    for group in _PARENS.finditer(body):
        inner = group.group(1) or ""
        for glob in _PART_GLOB.findall(inner.upper()):
            patterns.add(glob.replace(" ", ""))
        code = inner.strip().upper()
        alias = _ALIAS.match(inner.strip())
        if alias:
            aliases.append(frozenset(tokens(alias.group(1))) - vendor)
        elif not _MLFB.search(inner) and "*" not in inner and " " not in code \
                and _PART_CODE.match(code):
            patterns.add(code + "*")
        elif group.group(1) is not None and _CONDITION_WORDS.search(inner) \
                and not _NOISY_PARENS.search(inner):
            conditions.append(inner.strip())
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
    body, sizes = _sizes(body)
    body, choices, families = _lists(body)
    is_family = bool(_FAMILY_WORDS.search(name))
    toks = [t for t in tokens(body) if t not in vendor]
    series = {w.lower() for w in re.findall(r"(?<![\w-])[A-Z]{2,4}(?![\w-])", body)} | {
        t for group in choices for t in group if t.isalpha() and 2 <= len(t) <= 4}
    for core, hyphen in _cores(body + " " + " ".join("/".join(g) for g in choices)):
        if core[1].endswith("0") and (hyphen or is_family):
            families.append(core)
            written = "".join(core)
            toks = [written if t.startswith(written) and t != written else t for t in toks]
    globs = tuple(t for t in toks if _GLOB_TOKEN.match(t))
    plain = frozenset(t for t in toks if t not in globs)
    return ProductName(plain, globs, tuple(sorted(o for o in orders if o)),
                       tuple(sorted(patterns)), name_filter, tuple(choices),
                       frozenset(series), tuple(dict.fromkeys(families)), sizes,
                       tuple(aliases), tuple(conditions))


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
    cores: tuple[Core, ...] = ()
    size: int | None = None
    panel_model: bool = False  # the size came from a panel model number (TP1200)

    @property
    def all_tokens(self) -> frozenset[str]:
        return self.tokens | self.family

    @property
    def keys(self) -> tuple[str, ...]:
        """Index keys under which its candidate products are found."""
        panels = () if self.size is None or self.panel_model else tuple(
            f"{letters}{self.size}00" for letters in ("tp", "ktp", "mtp", "kp"))
        return (*self.all_tokens, *{f"core:{c[0]}" for c in self.cores},
                *{f"embedded:{e}" for e in self.embedded}, *panels, "*")

    @cached_property
    def embedded(self) -> frozenset[str]:
        """Letters inside a model number (560CMU05: cmu)."""
        return frozenset(m.group(1) for t in self.tokens
                         for m in [re.match(r"^\d+([a-z]{2,4})\d*$", t)] if m)


@dataclass(frozen=True)
class _FamilyRule:
    vendor: str
    pattern: re.Pattern[str]
    tokens: frozenset[str]


def _family_rules() -> tuple[_FamilyRule, ...]:
    import yaml

    path = Path(__file__).with_name("families.yaml")
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]
    return tuple(_FamilyRule(r["vendor"], re.compile(r["match"]), frozenset(r["tokens"]))
                 for r in rules)


FAMILY_RULES = _family_rules()


def device_name(product: str | None, model: str | None, order_code: str | None,
                vendor: str | None = None) -> DeviceName:
    words = vendor_words(vendor)
    own = (set(tokens(product)) | set(tokens(model))) - words
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
    vkey = vendor_key(vendor)
    for rule in FAMILY_RULES:
        if (vkey is None or rule.vendor == vkey) and rule.pattern.search(text):
            family |= rule.tokens
    cores = tuple(dict.fromkeys(core for core, _ in _cores(text)))
    size = next((int(c[1]) // 100 for c in cores
                 if c[0] in _PANEL_LETTERS and c[1].endswith("00")), None)
    panel_model = size is not None
    if size is None and (inches := _INCHES.search(text)):  # "Comfort Panel 12\""
        size = int(inches.group(1))
        own = {t for t in own if t != inches.group(1)}
    return DeviceName(frozenset(own), frozenset(family - own), tuple(codes),
                      frozenset(tokens(product)) - words, cores, size, panel_model)


def glob_matches(glob: str, device_tokens: frozenset[str]) -> bool:
    regex = re.compile("^" + re.sub(r"x+", lambda m: "[0-9a-z]" * len(m.group(0)), glob))
    return any(regex.match(t) for t in device_tokens)
