"""Version expressions of CSAF product-tree leaves → ``VersionSpec`` (intervals, exacts, all).

A tolerant front end for what CISA's files really contain (see shared/advisories/csaf/README):
``vers:all/*``, the invalid ``vers:all/<V3.1.4`` and ``vers:all/>=V3.0.1<V3.0.3``, bare
comparators (``< V4.5.0``, ``<= 6.0``), prose (``All versions >= V2.0 and < V2.5``), pipes
meaning AND (``>= 1.0 | <= 1.32``), OR (``28.011 | 28.012``), disjoint intervals, per-train
upper bounds (``< 19.0.1 | < 18.0.1``) or a lost word (``< 15.1 | 7`` = ``< 15.1 Update 7``),
hyphen ranges, ``X and earlier``, wildcards (``V3.X.16``), and article numbers in the version
slot, ``between X (including) and Y (excluding)``, ``X until Y``, ``up to and including``.
Parenthesised remarks are read for what they say (``_remarks``): a CVE scope, a release line,
a model's own bound, another name of the product, a condition, or information. An inclusive
bound with fewer components than the installed version names a release (``<= 33`` holds
33.011). Anything else is kept verbatim as ``unparsed`` (the matcher answers
``needs_review``); text around a comparator that restricts it (``NMC2 <= 6.9.6``) becomes a
condition.

``notes`` name the data-quality problems worked around, counted by the importer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from otaudit.server.advisories.versions import parse_version

SpecKind = Literal["all", "range", "unparsed", "none"]

_VERS = re.compile(r"^vers:([A-Za-z0-9.+\-]*)/(.*)$", re.I | re.S)
_ALL = re.compile(r"^(?:all(?:\s+(?:firmware|software|product))?(?:\s+versions?)?|\*|any"
                  r"|all\s+versions?\s+and\s+(?:all\s+)?(?:variants|models))\.?$", re.I)
_ALL_PREFIX = re.compile(r"^all\s+(?:(?:firmware|software)\s+)?versions?\b[\s:,]*", re.I)
_CMP = re.compile(r"(<=|>=|=<|=>|==|!=|<|>|=)")
_CMP_SPLIT = re.compile(r"(<=|>=|=<|=>|==|!=|<|>|=)\s*")
_EARLIER = re.compile(r"^(?P<v>.+?)\s+(?:and|or)\s+(?:earlier|prior|older|lower|below)"
                      r"(?:\s+versions?)?$", re.I)
_LATER = re.compile(r"^(?P<v>.+?)\s+(?:and|or)\s+(?:later|newer|higher|above)"
                    r"(?:\s+versions?)?$", re.I)
_PRIOR_TO = re.compile(r"^(?:versions?\s+)?(?:prior\s+to|before|older\s+than|below|earlier\s+than)"
                       r"\s+(?P<v>.+)$", re.I)
_UP_TO = re.compile(r"^(?:versions?\s+)?(?:up\s+to(?:\s+and\s+including)?|through)\s+(?P<v>.+)$",
                    re.I)
_SPAN = re.compile(r"^(?P<a>\S+(?:\s+(?:SP|Update|Upd)\s*\d+)*)\s*(?:-|–|to|through|until)\s*"
                   r"(?P<b>\S+(?:\s+(?:SP|Update|Upd)\s*\d+)*)$", re.I)
_LIST_SEP = re.compile(r"\s*(?:,|\band\b|\bor\b)\s*", re.I)
_PIPE_WORD = re.compile(r"^(?:SP|Update|Upd|HF|UC|CU|Hotfix|Patch)\s*\d+[a-z]?$", re.I)
_ARTICLE = re.compile(r"^(?:\d{7}|\d{4}-[A-Z0-9]{4,}|6[A-Z]{2}\d{4}-\d[A-Z0-9]{4}-\d[A-Z0-9]{3})$")
_OPS = {"=<": "<=", "=>": ">=", "==": "="}
_VER = r"\S+(?:\s+(?:SP|Update|Upd)\s*\d+)*"
_BETWEEN = re.compile(rf"^(?:between\s+)?(?P<a>{_VER})\s*\((?P<ai>including|excluding)\)\s+and\s+"
                      rf"(?P<b>{_VER})\s*\((?P<bi>including|excluding)\)$", re.I)
_REMARK = re.compile(r"(?<![\w.])\(([^()]*)\)")  # not Cisco "15.2(6)E2a"
_SCOPE_CVE = re.compile(r"CVE-\d{3,4}-\d{4,}", re.I)
_TRAIN_REMARK = re.compile(r"^(?P<major>\d+)\.x(?:\s+series|\s+line|\s+versions?)?$", re.I)
_FOR_MODEL = re.compile(r"^(?:V\s?)?(?P<v>\d[\w.]*)\s+for\s+(?P<m>[A-Za-z][\w-]*)$")
_MODEL_PRIOR = re.compile(r"^(?P<m>[A-Z][A-Z0-9-]*\d[A-Z0-9-]*)\s+(?P<v>\d[\w.]*)\s+and\s+"
                          r"(?:prior|earlier|older)$")
_ALIAS_REMARK = re.compile(r"^(?:including\s+)?(?:formerly|former|aka|also known as)\s+"
                           r"(?:known as\s+)?(?P<n>.+)$", re.I)
_CONDITION = re.compile(r"\b(?:only|if|when|unless|except|excluding|with|where|using|enabled|"
                        r"activated|configured|installed|for)\b", re.I)


@dataclass
class Bound:
    version: str
    inclusive: bool


@dataclass
class Interval:
    lo: Bound | None = None
    hi: Bound | None = None

    def describe(self) -> str:
        parts = []
        if self.lo:
            parts.append(f"{'>=' if self.lo.inclusive else '>'} {self.lo.version}")
        if self.hi:
            parts.append(f"{'<=' if self.hi.inclusive else '<'} {self.hi.version}")
        return " and ".join(parts) or "all versions"


@dataclass
class VersionSpec:
    """Which versions a leaf names: ``kind`` all / range / unparsed / none (identity only)."""

    kind: SpecKind
    raw: str
    intervals: list[Interval] = field(default_factory=list)
    exact: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reading: str | None = None  # how an ambiguous expression was read
    article_numbers: list[str] = field(default_factory=list)
    cve_scope: list[str] = field(default_factory=list)  # "(CVE-2022-37434 only)"
    overrides: list[dict[str, str]] = field(default_factory=list)  # "(1.29 for NX7)"
    aliases: list[str] = field(default_factory=list)  # "(including former Unity Pro)"
    remarks: list[str] = field(default_factory=list)  # remarks read as information only

    def describe(self) -> str:
        if self.kind == "all":
            return "all versions"
        if self.kind == "none":
            return "no version given"
        if self.kind == "unparsed":
            return f"unparsed {self.raw!r}"
        parts = [i.describe() for i in self.intervals] + [f"= {v}" for v in self.exact]
        return " or ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        def bound(b: Bound | None) -> dict[str, Any] | None:
            return {"version": b.version, "inclusive": b.inclusive} if b else None

        return {"kind": self.kind, "raw": self.raw,
                "intervals": [{"lo": bound(i.lo), "hi": bound(i.hi)} for i in self.intervals],
                "exact": self.exact, "excluded": self.excluded, "conditions": self.conditions,
                "notes": self.notes, "reading": self.reading,
                "article_numbers": self.article_numbers, "cve_scope": self.cve_scope,
                "overrides": self.overrides, "aliases": self.aliases, "remarks": self.remarks}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionSpec:
        data = dict(data)
        data["intervals"] = [
            Interval(lo=Bound(**i["lo"]) if i.get("lo") else None,
                     hi=Bound(**i["hi"]) if i.get("hi") else None)
            for i in data.get("intervals", [])
        ]
        return cls(**data)


def parse_expression(raw: str | None, category: str = "product_version_range") -> VersionSpec:
    """Parse one leaf name; never raises."""
    if raw is None or not str(raw).strip():
        return VersionSpec("none", raw or "")
    text = " ".join(str(raw).split())
    notes: list[str] = []
    vers = _VERS.match(text)
    if vers:
        scheme, rest = vers.group(1).lower(), vers.group(2).strip()
        if rest == "*":
            return VersionSpec("all", raw, notes=["vers_all"] if scheme == "all" else [])
        notes.append("invalid_vers" if scheme in ("all", "none") or not scheme else "vers")
        if re.search(r"\d[<>]", rest):
            notes.append("vers_missing_pipe")
        text = rest
    text = " ".join(text.replace("_", " ").split())
    text = re.sub(r"\s*\bup to and including\b\s*", " <= ", text, flags=re.I).strip()
    between = _BETWEEN.match(_ALL_PREFIX.sub("", text))
    if between:
        notes.append("prose_range")
        lo_op = ">=" if between.group("ai").lower() == "including" else ">"
        hi_op = "<=" if between.group("bi").lower() == "including" else "<"
        text = f"{lo_op} {between.group('a')} | {hi_op} {between.group('b')}"
    text, remark = _remarks(text, notes)
    if _ALL.match(text):
        spec = VersionSpec("all", raw, notes=[*notes, "prose_all"])
        _apply_remarks(spec, remark)
        return spec
    if _ARTICLE.match(text) and category == "product_version":
        return VersionSpec("all", raw, notes=[*notes, "article_number_in_version"],
                           article_numbers=[text])
    prefix = _ALL_PREFIX.match(text)
    if prefix:
        notes.append("prose_range")
        text = text[prefix.end():].strip()
        if not text:
            return VersionSpec("all", raw, notes=notes)
    try:
        spec = _parse_body(text, category, notes)
    except _Unparsed as exc:
        spec = VersionSpec("unparsed", raw, notes=[*notes, "unparsed"],
                           conditions=[str(exc)] if str(exc) else [])
        _apply_remarks(spec, remark)
        return spec
    spec.raw = raw
    _apply_remarks(spec, remark)
    if category == "product_version" and spec.intervals:
        spec.notes.append("range_in_product_version")
    if any(_is_wild(v) for v in _versions_of(spec)):
        spec.notes.append("wildcard")
    return spec


class _Unparsed(Exception):
    pass


@dataclass
class _Remark:
    cve_scope: list[str] = field(default_factory=list)
    overrides: list[dict[str, str]] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    train: str | None = None


def _remarks(text: str, notes: list[str]) -> tuple[str, _Remark]:
    """Take the parenthesised remarks out of a range: what each one says about it.

    ``(CVE-2022-37434 only)`` restricts the CVEs, ``(6.x series)`` the release line, ``(1.29 for
    NX7)`` / ``(RES670 2.0.0.4 and prior)`` give another bound for one model, ``(including
    former Unity Pro)`` names the product otherwise, ``(Build Nr. …)`` is a version detail;
    other restricting words (``only with activated debug support``) become conditions, the
    rest (``These products are sold in limited regions``) stays as information.
    """
    remark = _Remark()

    def take(m: re.Match[str]) -> str:
        inner = " ".join(m.group(1).split()).strip(" .")
        if not inner:
            return " "
        if parse_version(inner) is not None and m.group(0) == text.strip()[-len(m.group(0)):] \
                and re.search(r"[<>=]\s*$", text[:m.start()]):
            return " " + inner + " "  # "<=(R4.02)"
        notes.append("remark")
        cves = _SCOPE_CVE.findall(inner)
        train = _TRAIN_REMARK.match(inner)
        for_model = _FOR_MODEL.match(inner) or _MODEL_PRIOR.match(inner)
        alias = _ALIAS_REMARK.match(inner)
        if cves:
            remark.cve_scope += [c.upper() for c in cves]
        elif train:
            remark.train = train.group("major")
        elif for_model:
            prior = re.search(r"\b(?:prior|earlier|older)$", inner) is not None
            remark.overrides.append({"model": for_model.group("m"),
                                     "version": for_model.group("v"), "op": "<=" if prior else ""})
        elif alias and parse_version(alias.group("n")) is None:
            remark.aliases.append(alias.group("n"))
        elif parse_version(inner) is not None or re.match(r"^(?:build|rev|revision)\b", inner,
                                                          re.I):
            remark.remarks.append(inner)  # "(Build Nr. 1.2.14002.257)", "(1.9.0)"
        elif _CONDITION.search(inner):
            remark.conditions.append(inner)
        else:
            remark.remarks.append(inner)
        return " "

    out = " ".join(_REMARK.sub(take, text).split())
    return out.strip(" |") or text, remark


def _apply_remarks(spec: VersionSpec, remark: _Remark) -> None:
    spec.cve_scope = remark.cve_scope
    spec.overrides = remark.overrides
    spec.aliases = remark.aliases
    spec.remarks = remark.remarks
    spec.conditions = [*spec.conditions, *remark.conditions]
    if remark.conditions and "conditional" not in spec.notes:
        spec.notes.append("conditional")
    if remark.train and spec.kind == "range":
        for interval in spec.intervals:
            if interval.lo is None:
                interval.lo = Bound(remark.train, True)
        spec.reading = f"the remark limits it to the {remark.train}.x line"


def _parse_body(text: str, category: str, notes: list[str]) -> VersionSpec:
    conditions: list[str] = []
    reading: str | None = None
    for pattern, op in ((_EARLIER, "<="), (_LATER, ">="), (_PRIOR_TO, "<"), (_UP_TO, "<=")):
        m = pattern.match(text)
        if m and _CMP.search(m.group("v")) is None:
            notes.append("prose_range")
            text = f"{op} {m.group('v')}"
            break
    if re.search(r"\s+and\s+(?=[<>=])", text, re.I):
        notes.append("prose_range")
        text = re.sub(r"\s+and\s+(?=[<>=])", " | ", text, flags=re.I)
    if _CMP.search(text) is None:
        span = _SPAN.match(text)
        if span and _ok(span.group("a")) and _ok(span.group("b")):
            notes.append("hyphen_range")
            return VersionSpec("range", text, intervals=[
                Interval(Bound(span.group("a"), True), Bound(span.group("b"), True))], notes=notes)
        if "|" not in text and _LIST_SEP.search(text):
            items = [i for i in _LIST_SEP.split(text) if i]
            if len(items) > 1 and all(_ok(i) for i in items):
                notes.append("prose_list")
                return VersionSpec("range", text, exact=items, notes=notes)
    parts = [p.strip() for p in text.split("|") if p.strip()]
    if len(parts) > 1:
        notes.append("pipe")
    terms: list[tuple[str, str]] = []
    for part in parts:
        pieces = _CMP_SPLIT.split(part)
        head = pieces[0].strip()
        if len(pieces) == 1:
            terms.append(("", head))
            continue
        if head:
            conditions.append(head)
        for i in range(1, len(pieces), 2):
            op = _OPS.get(pieces[i], pieces[i])
            value = pieces[i + 1].strip() if i + 1 < len(pieces) else ""
            if not value:
                raise _Unparsed(f"comparator {op!r} without a version")
            terms.append((op, value))
    terms, reading = _join_lost_words(terms, notes)
    checked: list[tuple[str, str]] = []
    for op, value in terms:
        if _ok(value):
            checked.append((op, value))
            continue
        several = [v for v in re.split(r"[\s,]+", value) if v]
        if op in ("<", "<=") and len(several) > 1 and all(_ok(v) for v in several):
            notes.append("joined_trains")  # "<v36.011_v35.013_v34.014"
            checked += [(op, v) for v in several]
            continue
        raise _Unparsed("")
    terms = checked
    spec = _build(terms, notes)
    spec.conditions, spec.reading = conditions, reading or spec.reading
    if conditions:
        notes.append("conditional")
    return spec


def _join_lost_words(terms: list[tuple[str, str]],
                     notes: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    """``< 15.1 | 7`` → ``< 15.1 Update 7``; ``< 4.8 | SP5`` → ``< 4.8 SP5``."""
    out: list[tuple[str, str]] = []
    reading = None
    for op, value in terms:
        prev = out[-1] if out else None
        if prev and prev[0] in ("<", "<=") and op == "":
            word = None
            if _PIPE_WORD.match(value):
                word = value
            elif re.fullmatch(r"\d{1,2}", value):
                bound = parse_version(prev[1])
                small = parse_version(value)
                if bound and small and small.key < bound.key:
                    word = f"Update {value}"
            if word:
                joined = f"{prev[1]} {word}"
                out[-1] = (prev[0], joined)
                notes.append("pipe_word")
                reading = (f"the pipe in {prev[0]} {prev[1]} | {value} was read as a lost word: "
                           f"{prev[0]} {joined}")
                continue
        out.append((op, value))
    return out, reading


def _build(terms: list[tuple[str, str]], notes: list[str]) -> VersionSpec:
    intervals: list[Interval] = []
    exact: list[str] = []
    excluded: list[str] = []
    lower: Bound | None = None
    uppers_without_lower: list[Bound] = []
    for op, value in terms:
        if op in ("", "="):
            exact.append(value)
        elif op == "!=":
            excluded.append(value)
        elif op in (">", ">="):
            if lower is not None:
                intervals.append(Interval(lower, None))
            lower = Bound(value, op == ">=")
        else:
            hi = Bound(value, op == "<=")
            if lower is not None:
                intervals.append(Interval(lower, hi))
                lower = None
            else:
                uppers_without_lower.append(hi)
    if lower is not None:
        intervals.append(Interval(lower, None))
    if len(uppers_without_lower) > 1:
        notes.append("pipe_trains")
        intervals += _train_intervals(uppers_without_lower)
    else:
        intervals += [Interval(None, hi) for hi in uppers_without_lower]
    if "vers" in notes:  # canonical vers: pipes are separators, nothing to report
        pass
    elif len(intervals) == 1 and intervals[0].lo and intervals[0].hi and "pipe" in notes:
        notes.append("pipe_and")
    elif len(intervals) > 1 and "pipe_trains" not in notes:
        notes.append("pipe_intervals")
    if len(exact) > 1 and not intervals:
        notes.append("pipe_or" if "pipe" in notes else "prose_list")
    if not intervals and not exact:
        raise _Unparsed("")
    if any(op for op, _ in terms) and not {"vers", "invalid_vers", "prose_range"} & set(notes):
        notes.append("bare_comparator")
    spec = VersionSpec("range", "", intervals=intervals, exact=exact, excluded=excluded,
                       notes=notes)
    if "pipe_trains" in notes:
        spec.reading = ("several upper bounds without lower bounds were read as one bound per "
                        "release train: " + "; ".join(i.describe() for i in intervals))
    return spec


def _train_intervals(uppers: list[Bound]) -> list[Interval]:
    """One interval per major train: ``< 19.0.1 | < 18.0.1`` → [18, 18.0.1) ∪ [19, 19.0.1)."""
    return [Interval(lo, hi) for lo, hi in train_bounds(uppers)]


def train_bounds(uppers: list[Bound]) -> list[tuple[Bound | None, Bound]]:
    """(lower bound, bound) per release line of several upper bounds, lowest line first.

    The line is the major version when the majors differ (``< 19.0.1``, ``< 18.0.1``), else
    major.minor (``<= 2.0.0.10``, ``<= 2.1.0.1``); the lowest bound keeps no lower bound.
    When no prefix tells the bounds apart, each keeps no lower bound.
    """
    parsed = sorted(((parse_version(b.version), b) for b in uppers),
                    key=lambda vb: vb[0].key if vb[0] else ())
    width = 0
    versions = [v for v, _ in parsed]
    for n in (1, 2):
        if all(v is not None and v.train is None and v.n > n for v in versions) and \
                len({v.key[:n] for v in versions if v is not None}) == len(versions):
            width = n
            break
    out: list[tuple[Bound | None, Bound]] = []
    for i, (ver, bound) in enumerate(parsed):
        if i == 0 or ver is None or not width:
            out.append((None, bound))
        else:
            out.append((Bound(".".join(str(k[0]) for k in ver.key[:width]), True), bound))
    return out


def _ok(value: str) -> bool:
    return parse_version(value) is not None


def _is_wild(value: str) -> bool:
    ver = parse_version(value)
    return bool(ver and ver.wild)


def _versions_of(spec: VersionSpec) -> list[str]:
    out = list(spec.exact)
    for i in spec.intervals:
        out += [b.version for b in (i.lo, i.hi) if b]
    return out


@dataclass(frozen=True)
class Position:
    """Where an installed version lies relative to a spec.

    ``where``: ``in`` (affected set), ``above`` (newer than everything the spec names),
    ``outside`` (older, or between intervals), ``unknown`` (unparsed or incomparable).
    """

    where: Literal["in", "above", "outside", "unknown"]
    detail: str
    exact_hit: bool = False
    exact_only: bool = False
    by_prefix: bool = False  # in only because "<= 33" names the whole release 33


def _same_release(installed: Any, bound_text: str, scheme: str) -> bool:
    """``<= 33`` / ``<= V16`` name a release: 33.011 and V16 Update 4 belong to it."""
    bound = parse_version(bound_text, scheme)
    if bound is None or bound.train is not None or installed.train is not None \
            or bound.slotted or bound.wild or bound.n >= installed.n:
        return False
    return installed.key[:bound.n] == bound.key[:bound.n]


def position(spec: VersionSpec, installed: Any, scheme: str = "generic") -> Position:
    """Evaluate ``spec`` for an installed ``versions.Version``."""
    from otaudit.server.advisories.versions import Incomparable, compare

    shown = installed.raw
    if spec.kind in ("all", "none"):
        return Position("in", f"{shown} is covered by {spec.describe()}")
    if spec.kind == "unparsed":
        return Position("unknown", f"the expression {spec.raw!r} could not be parsed")
    unknown: list[str] = []

    def cmp(text: str) -> int | None:
        bound = parse_version(text, scheme)
        if bound is None:
            unknown.append(f"{text!r} is not a version")
            return None
        try:
            return compare(installed, bound.resolved(installed))
        except Incomparable as exc:
            unknown.append(str(exc))
            return None

    for text in spec.excluded:
        if cmp(text) == 0:
            return Position("outside", f"{shown} is excluded (!= {text})")
    for text in spec.exact:
        if cmp(text) == 0:
            return Position("in", f"{shown} = {text}", exact_hit=True)
    above = bool(spec.intervals or spec.exact)
    for interval in spec.intervals:
        lo_ok = True
        if interval.lo:
            c = cmp(interval.lo.version)
            lo_ok = None if c is None else (c >= 0 if interval.lo.inclusive else c > 0)
        hi_ok = True
        prefix = False
        if interval.hi:
            c = cmp(interval.hi.version)
            hi_ok = None if c is None else (c <= 0 if interval.hi.inclusive else c < 0)
            if c is not None and c > 0 and interval.hi.inclusive:
                prefix = hi_ok = _same_release(installed, interval.hi.version, scheme)
            if hi_ok is not False:
                above = False
        else:
            above = False
        if lo_ok is True and hi_ok is True:
            if prefix:
                return Position("in", f"{shown} is {interval.describe()} (\"{interval.hi.version}\""
                                f" names the release {shown} belongs to)", by_prefix=True)
            return Position("in", f"{shown} is {interval.describe()}")
    for text in spec.exact:
        c = cmp(text)
        if c is None or c < 0:
            above = False
    if unknown:
        return Position("unknown", "; ".join(dict.fromkeys(unknown)))
    exact_only = bool(spec.exact) and not spec.intervals
    if above:
        return Position("above", f"{shown} is newer than {spec.describe()}",
                        exact_only=exact_only)
    return Position("outside", f"{shown} is not {spec.describe()}", exact_only=exact_only)
