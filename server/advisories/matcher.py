"""Explainable matching of a device identity against normalised advisories.

Identity tiers, best first: the exact order number (CSAF ``model_numbers`` or an MLFB in the
product name), an order-number pattern (``BMXP34*``, ``6ED1052-xyyxx-0BA8``), vendor +
normalised product name (with family tokens from the curated tables), and — only when nothing
else matched — a fuzzy overlap, which is labelled and always answers ``needs_review``. Per
advisory only the products of the best tier are evaluated.

Per (advisory, CVE) the verdict is ``affected``, ``fixed``, ``not_affected`` or
``needs_review``; each names the product-tree entry and expression that decided it and why.
Anything unparsed, conditional or incomparable is ``needs_review``, never "not affected".
A fix is only ever proposed above the installed version. Among name matches the most specific
name wins (Unified Comfort Panels over Comfort Panels); a device whose name fits one line by
name but another by version gets ``needs_review`` naming both. An exact-version list is read as
exact (not listed: not affected by that entry), and a remark's CVE scope or model bound
applies.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from otaudit.server.advisories.names import (
    FAMILY_TOKENS,
    DeviceName,
    device_name,
    order_matches,
    tokens,
    vendor_key,
)
from otaudit.server.advisories.normalise import Advisory, Product, Vulnerability
from otaudit.server.advisories.ranges import Bound, Interval, Position, position
from otaudit.server.advisories.versions import (
    Incomparable,
    Version,
    compare,
    parse_version,
    scheme_for_vendor,
)

VerdictKind = Literal["affected", "fixed", "not_affected", "needs_review"]
TIERS = {"order_number": 4, "order_pattern": 3, "name": 2, "fuzzy": 1}
FUZZY_MAX_DF = 25
_PRIORITY = {"affected": 3, "needs_review": 2, "fixed": 1, "not_affected": 0}


@dataclass(frozen=True)
class Identity:
    """What a device says about itself (the ``identity.*`` facts)."""

    vendor: str | None = None
    product: str | None = None
    model: str | None = None
    order_code: str | None = None
    firmware_version: str | None = None

    @classmethod
    def from_facts(cls, facts: dict[str, Any]) -> Identity:
        def get(path: str) -> str | None:
            value = facts.get(path)
            if isinstance(value, dict):
                value = value.get("value")
            return str(value).strip() if value not in (None, "") else None

        return cls(get("identity.vendor"), get("identity.product"), get("identity.model"),
                   get("identity.order_code"), get("identity.firmware_version"))


def identities_from_facts(facts: dict[str, Any]) -> list[tuple[str, Identity]]:
    """Every identity of an asset, kept apart: ``("host", the identity.* facts)`` and, for a
    host, one ``("software:<vendor> <product>", ...)`` per installed ICS product
    (``software.ics_products``): a Windows station can be affected through its WinCC and
    not through its operating system, and the other way round."""
    found: list[tuple[str, Identity]] = []
    host = Identity.from_facts(facts)
    if any(getattr(host, f) for f in ("vendor", "product", "model", "order_code",
                                      "firmware_version")):
        found.append(("host", host))
    products = facts.get("software.ics_products")
    if isinstance(products, dict):
        products = products.get("value")
    for item in products if isinstance(products, list) else []:
        if not isinstance(item, dict) or not item.get("product"):
            continue
        vendor = str(item.get("vendor") or "").strip() or None
        product = str(item["product"]).strip()
        version = str(item.get("version") or "").strip() or None
        found.append((f"software:{vendor or ''} {product}".replace(": ", ":"),
                      Identity(vendor=vendor, product=product, firmware_version=version)))
    return found


@dataclass
class Verdict:
    """One advisory × CVE answer for one device, with the reason."""

    advisory_id: str
    advisory_version: str
    title: str
    cve: str
    verdict: VerdictKind
    product_id: str
    product_name: str
    expression: str
    basis: str
    reason: str
    installed: str | None
    fixed_in: str | None = None
    remediation_category: str | None = None
    remediation: str | None = None
    remediation_url: str | None = None
    cvss: float | None = None
    severity: str | None = None
    vector: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Candidate:
    product: Product
    tier: str
    why: str
    family: bool = False
    name_filter: bool = False  # the product name restricts versions (WinCC V7.4 and earlier)


@dataclass
class _Outcome:
    kind: VerdictKind
    strength: int
    product: Product
    reason: str
    fixed_in: Version | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class AdvisoryIndex:
    """Normalised advisories indexed by order number, order pattern and name token."""

    def __init__(self, advisories: Iterable[Advisory]) -> None:
        self.advisories: list[Advisory] = []
        self._by_order: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._patterns: list[tuple[str, frozenset[str], int, str]] = []
        self._by_token: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._by_word: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._candidate_cache: dict[tuple[Any, ...], dict[int, list[_Candidate]]] = {}
        for advisory in advisories:
            self.add(advisory)

    def __len__(self) -> int:
        return len(self.advisories)

    def add(self, advisory: Advisory) -> None:
        self._candidate_cache.clear()
        a = len(self.advisories)
        self.advisories.append(advisory)
        for pid, product in advisory.products.items():
            ident = product.identity
            for code in ident.order_numbers:
                self._by_order[code].append((a, pid))
            for pattern in ident.order_patterns:
                self._patterns.append((pattern, frozenset(product.vendors), a, pid))
            if ident.tokens or ident.globs or ident.choices or ident.families:
                for key in ident.index_keys():
                    self._by_token[key].append((a, pid))
            for alias in ident.aliases:
                if alias:
                    self._by_token[max(alias, key=lambda t: (len(t), t))].append((a, pid))
            if not ident.significant:
                for token in ident.tokens:
                    self._by_word[token].append((a, pid))

    def match(self, identity: Identity) -> list[Verdict]:
        """Every advisory verdict for this device, most severe first."""
        vkey = vendor_key(identity.vendor)
        scheme = scheme_for_vendor(vkey)
        installed = (parse_version(identity.firmware_version, scheme)
                     if identity.firmware_version else None)
        key = (vkey, identity.product, identity.model, identity.order_code)
        per_advisory = self._candidate_cache.get(key)
        if per_advisory is None:
            per_advisory = defaultdict(list)
            device = device_name(identity.product, identity.model, identity.order_code,
                                 identity.vendor)
            for a, _pid, cand in self._candidates(device, vkey):
                per_advisory[a].append(cand)
            if len(self._candidate_cache) > 50_000:
                self._candidate_cache.clear()
            self._candidate_cache[key] = per_advisory
        out: list[Verdict] = []
        positions: dict[int, Position] = {}
        device_text = frozenset(tokens(" ".join(x for x in (identity.product, identity.model)
                                                if x)))
        for a, cands in per_advisory.items():
            out += self._verdicts(self.advisories[a], cands, identity, installed, scheme,
                                  positions, device_text)
        out.sort(key=lambda v: (-_PRIORITY[v.verdict], -(v.cvss or 0), v.advisory_id, v.cve))
        return out

    # identity ----------------------------------------------------------------------------

    def _candidates(self, device: DeviceName, vkey: str | None
                    ) -> Iterable[tuple[int, str, _Candidate]]:
        seen: set[tuple[int, str]] = set()
        for code in device.order_codes:
            for a, pid in self._by_order.get(code, ()):
                product = self.advisories[a].products[pid]
                if _vendor_ok(vkey, product) and (a, pid) not in seen:
                    seen.add((a, pid))
                    yield a, pid, _Candidate(product, "order_number",
                                             f"order number {code} is listed for it")
        for pattern, vendors, a, pid in self._patterns:
            if (a, pid) in seen or (vkey and vendors and vkey not in vendors):
                continue
            for code in device.order_codes:
                if order_matches(pattern, code):
                    seen.add((a, pid))
                    yield a, pid, _Candidate(self.advisories[a].products[pid], "order_pattern",
                                             f"order number {code} matches {pattern}")
                    break
        all_tokens = device.all_tokens
        for token in device.keys:
            for a, pid in self._by_token.get(token, ()):
                if (a, pid) in seen:
                    continue
                product = self.advisories[a].products[pid]
                if not _vendor_ok(vkey, product):
                    continue
                cand = _name_candidate(product, device)
                if cand is not None:
                    seen.add((a, pid))
                    yield a, pid, cand
        if not vkey or not device.product_tokens or min(
                len(self._by_word.get(t, ())) for t in device.product_tokens) > FUZZY_MAX_DF:
            return  # "SIMATIC WinCC" is part of hundreds of names: no evidence of anything
        for token in device.product_tokens:  # fuzzy: the device's product named with extra words
            for a, pid in self._by_word.get(token, ()):
                product = self.advisories[a].products[pid]
                if (a, pid) in seen or vkey not in product.vendors:
                    continue
                if device.product_tokens <= product.identity.tokens and \
                        any(len(t) >= 4 for t in device.product_tokens):
                    seen.add((a, pid))
                    missing = ", ".join(sorted(product.identity.tokens - all_tokens))
                    yield a, pid, _Candidate(
                        product, "fuzzy", f"fuzzy name match: the device's product name is part "
                        f"of it, but '{missing}' is not in the device identity")

    # verdicts ----------------------------------------------------------------------------

    def _verdicts(self, advisory: Advisory, cands: list[_Candidate], identity: Identity,
                  installed: Version | None, scheme: str, positions: dict[int, Position],
                  device_text: frozenset[str] = frozenset()) -> list[Verdict]:
        best = max(TIERS[c.tier] for c in cands)
        chosen = _most_specific([c for c in cands if TIERS[c.tier] == best])
        out = []
        for vuln in advisory.vulnerabilities:
            listed = [c for c in chosen if c.product.pid in vuln.status]
            if not listed:
                continue
            outcomes = [o for c in listed
                        if (o := _evaluate(c, vuln, installed, scheme, positions,
                                           device_text)) is not None]
            if not outcomes:
                continue
            if installed is not None and all(o.extra.get("line") for o in outcomes):
                other = _other_line(advisory, vuln, listed, device_text, installed)
                if other is not None:
                    outcomes.append(other)
                    listed = [*listed, _Candidate(other.product, "name", "its name is longer "
                                                  "than the device's", family=True)]
            top = max(o.strength for o in outcomes)
            decisive = max((o for o in outcomes if o.strength == top),
                           key=lambda o: _PRIORITY[o.kind])
            out.append(_verdict(advisory, vuln, decisive, listed, identity))
        return out


def _other_line(advisory: Advisory, vuln: Vulnerability, listed: list[_Candidate],
                device_text: frozenset[str], installed: Version) -> _Outcome | None:
    """The device's name fits a line whose version it is not, and a longer name whose it is.

    "SIMATIC WinCC" at V17 is no WinCC V7.5 or V8.0, but may be "SIMATIC WinCC Runtime
    Professional V17": which line is installed cannot be decided from the name, so both are
    named for review instead of a guess.
    """
    if not device_text:
        return None
    names = {c.product.pid for c in listed}
    for pid in vuln.status:
        product = advisory.products.get(pid)
        if product is None or pid in names or vuln.status[pid] != "affected":
            continue
        ident = product.identity
        nf = ident.name_filter
        if nf is None or not device_text < ident.tokens or \
                _name_filter_failure(nf, installed) is not None or \
                position(product.spec, installed, product.scheme).where != "in":
            continue  # no other line, or not a version that line would be affected in
        mine = ", ".join(f"'{c.product.name}'" for c in listed)
        return _Outcome("needs_review", 3, product,
                        f"the device's name fits {mine} (another release line than "
                        f"{installed.raw}) and '{product.name}' (whose line {installed.raw} is); "
                        "which of them is installed cannot be decided from the name",
                        extra={"line": False})
    return None


def _most_specific(cands: list[_Candidate]) -> list[_Candidate]:
    """A device named by "Unified Comfort Panels" is not also one of the "Comfort Panels".

    Among name matches, an entry whose words are all part of another matching entry of another
    name (SIMATIC WinCC ⊂ SIMATIC WinCC Runtime Professional) gives way to it.
    """
    if len(cands) < 2 or cands[0].tier != "name":
        return cands
    out = []
    for c in cands:
        mine = c.product.identity
        if not any(o.product.name != c.product.name and mine.tokens < o.product.identity.tokens
                   for o in cands):
            out.append(c)
    return out or cands


def _vendor_ok(vkey: str | None, product: Product) -> bool:
    return not vkey or not product.vendors or vkey in product.vendors


def _name_candidate(product: Product, device: DeviceName) -> _Candidate | None:
    ident = product.identity
    if device.order_codes and (ident.order_numbers or ident.order_patterns) \
            and not _looks_foreign(device.order_codes, ident):
        return None  # the advisory lists order numbers and the device's is not among them
    tokens = ident.tokens
    nf = ident.name_filter
    all_tokens = device.all_tokens
    filter_is_identity = nf is not None and nf.token in all_tokens
    names = ", ".join(sorted(tokens | set(ident.globs) | {"/".join(c) for c in ident.choices}
                             | ({nf.token} if filter_is_identity else set())))
    if ident.weak and not ident.globs:
        return None
    if ident.names(device):
        family = not tokens <= device.tokens or bool(ident.choices or ident.sizes)
        via = ""
        if family:
            via = ", as a member of the family, series or model list it names"
        if ident.sizes and device.size is not None:
            via += f" ({device.size}\" panel)"
        return _Candidate(product, "name", f"vendor and product name match ({names}{via})",
                          family=family, name_filter=nf is not None and not filter_is_identity)
    significant = ident.significant
    specific = {t for t in significant if _specific_model(t)}
    if specific and significant <= all_tokens and all(
            any(ident.has(t, device) for t in group) for group in ident.choices):
        missing = ", ".join(sorted(t for t in tokens - all_tokens if not ident.has(t, device)))
        return _Candidate(product, "name", f"model number {', '.join(sorted(specific))} matches"
                          + (f" ('{missing}' describes it)" if missing else ""),
                          name_filter=nf is not None and not filter_is_identity)
    shared_words = (tokens - significant) & all_tokens
    if significant and significant <= all_tokens and shared_words \
            and significant - FAMILY_TOKENS:
        missing = ", ".join(sorted(tokens - all_tokens))
        return _Candidate(product, "fuzzy",
                          f"fuzzy name match: model tokens agree but '{missing}' is not in the "
                          "device identity")
    return None


def _specific_model(token: str) -> bool:
    """A model number that names one product (R16SFCPU, 1766-L32BXB), not a family or size."""
    return (len(token) >= 5 and any(c.isalpha() for c in token)
            and sum(c.isdigit() for c in token) >= 2 and token not in FAMILY_TOKENS
            and not token.startswith("v"))


def _looks_foreign(codes: tuple[str, ...], ident: Any) -> bool:
    """True when the device's order codes are of another numbering than the advisory's."""
    listed = list(ident.order_numbers) + list(ident.order_patterns)
    return not any(code[:3] == other[:3] for code in codes for other in listed)


def _name_filter_failure(nf: Any, installed: Version | None) -> str | None:
    if installed is None:
        return None
    bound = parse_version(nf.version)
    if bound is None or installed.train is not None:
        return None
    n = max(1, nf.version.count(".") + 1)
    mine, theirs = installed.key[:n], bound.key[:n]
    ok = mine == theirs if nf.op == "train" else mine <= theirs
    if ok:
        return None
    what = f"V{nf.version}" + (" and earlier" if nf.op == "<=" else "")
    return f"the product name restricts it to {what}, installed {installed.raw} is not"


def _in_scope(cve: str, scope: list[str]) -> bool:
    """``CVE-222-30997`` (sic) still names CVE-2022-30997."""
    for named in scope:
        if named == cve.upper():
            return True
        year = named.split("-")[1]
        if len(year) != 4 and cve.upper().endswith("-" + named.split("-")[-1]):
            return True
    return False


def _overridden(spec: Any, device_text: frozenset[str]) -> Any:
    """The spec with the bound a remark gives for the device's model ("1.29 for NX7")."""
    for override in spec.overrides:
        model = re.sub(r"[^a-z0-9]", "", override["model"].lower())
        if not any(t.startswith(model) for t in device_text) or len(spec.intervals) != 1:
            continue
        interval = spec.intervals[0]
        if interval.hi is None:
            continue
        inclusive = override["op"] == "<=" or (not override["op"] and interval.hi.inclusive)
        new = Interval(interval.lo, Bound(override["version"], inclusive))
        return replace(spec, intervals=[new], reading=(
            f"the remark gives {override['model']} its own bound: {new.describe()}"))
    return spec


def _evaluate(cand: _Candidate, vuln: Vulnerability, installed: Version | None,
              scheme: str, positions: dict[int, Position],
              device_text: frozenset[str] = frozenset()) -> _Outcome | None:
    product = cand.product
    status = vuln.status[product.pid]
    spec = product.spec
    if spec.cve_scope and not _in_scope(vuln.cve, spec.cve_scope):
        return _Outcome("not_affected", 2, product, "the advisory restricts this entry to "
                        f"{', '.join(spec.cve_scope)}, not {vuln.cve}")
    spec = _overridden(spec, device_text)
    if cand.name_filter:
        outside = _name_filter_failure(product.identity.name_filter, installed)
        if outside:
            return _Outcome("not_affected", 2, product, outside, extra={"line": True})
    fixes = _fix_versions(vuln, product, scheme)
    if spec.kind in ("all", "none"):  # "Versions 13.3.1, 14.LTS …" in a mitigation is no fix
        fixes = [f for f in fixes if f[1]["rem"] >= 0
                 and vuln.remediations[f[1]["rem"]]["category"] == "vendor_fix"]
    if installed is None:
        if spec.kind in ("all", "none") and status == "affected":
            return _Outcome("affected", 2, product, "all versions are affected (installed "
                            "version unknown)", fixed_in=None)
        return _Outcome("needs_review", 2, product, "the installed firmware version is unknown")
    if spec is not product.spec:  # a bound of the device's own model: not shared, not cached
        pos = position(spec, installed, scheme)
    else:
        pos = positions.get(id(spec))
        if pos is None:  # the same product answers for every CVE of the advisory
            pos = positions[id(spec)] = position(spec, installed, scheme)
    if product.identity.conditions and pos.where == "in" and status == "affected":
        return _Outcome("needs_review", 2, product, f"{pos.detail}, but only "
                        f"{'; '.join(product.identity.conditions)!r}",
                        _propose_fix(installed, fixes))
    if cand.tier == "fuzzy":
        return _Outcome("needs_review", 2, product, f"by version alone: {pos.detail}",
                        _propose_fix(installed, fixes))
    strength = 3 if pos.exact_hit else 2
    if status in ("fixed", "not_affected"):
        if pos.where != "in":
            return None
        word = "fixed" if status == "fixed" else "not affected"
        return _Outcome(status, strength, product,  # type: ignore[arg-type]
                        f"the advisory marks {spec.describe()} as {word}: {pos.detail}")
    if status == "under_investigation":
        if pos.where in ("in", "unknown"):
            return _Outcome("needs_review", strength, product,
                            f"under investigation by the vendor: {pos.detail}")
        return None
    return _affected_status(product, spec, pos, installed, fixes, strength)


def _affected_status(product: Product, spec: Any, pos: Position, installed: Version,
                     fixes: list[tuple[Version, dict[str, Any]]], strength: int) -> _Outcome:
    reached = _own_train_fix_reached(installed, fixes)
    proposal = _propose_fix(installed, fixes)
    if pos.where == "unknown":
        return _Outcome("needs_review", 2, product, pos.detail, proposal)
    if spec.conditions and pos.where == "in":
        return _Outcome("needs_review", 2, product,
                        f"{pos.detail}, but only under the condition "
                        f"{'; '.join(spec.conditions)!r}", proposal)
    reading = f" ({spec.reading})" if spec.reading else ""
    if pos.where == "in":
        if reached is not None and not pos.exact_hit:
            if spec.kind in ("all", "none") or any(i.hi is None for i in spec.intervals) \
                    or pos.by_prefix:
                return _Outcome("fixed", strength, product,
                                f"{pos.detail}, but the vendor's fix {reached.raw} for this "
                                "release train is installed")
            return _Outcome("needs_review", 2, product,
                            f"{pos.detail}, yet the fix {reached.raw} named for this train is "
                            "not newer than the installed version")
        return _Outcome("affected", strength, product, pos.detail + reading, proposal)
    if pos.exact_only:  # an exact list is read as exact: not listed, not affected by it
        own = proposal is not None and proposal.release_train() == installed.release_train()
        if pos.where == "above" and own:  # "v.32.011" listed, "v34.014 and later" the fix
            return _Outcome("needs_review", 1, product,
                            f"the advisory lists only {spec.describe()}; {installed.raw} is not "
                            f"listed, but the vendor names {proposal.raw} as the fix of its "
                            "release train", proposal)
        if pos.where == "above" and reached is not None:
            return _Outcome("fixed", 2, product,
                            f"the advisory lists only {spec.describe()}; {installed.raw} is not "
                            f"listed and the vendor's fix {reached.raw} is installed")
        return _Outcome("not_affected", 1, product,
                        f"the advisory lists only {spec.describe()}; {installed.raw} is not "
                        "listed")
    if pos.where == "above":
        why = (f"{pos.detail}" if reached is None else
               f"{pos.detail}; the vendor's fix {reached.raw} is installed")
        return _Outcome("fixed", 2, product, why + reading)
    return _Outcome("not_affected", 2, product, pos.detail + reading)


def _fix_versions(vuln: Vulnerability, product: Product, scheme: str
                  ) -> list[tuple[Version, dict[str, Any]]]:
    out = []
    for fix in vuln.fixes.get(product.pid, []):
        ver = parse_version(fix["version"], scheme)
        if ver is not None:
            out.append((ver, fix))
    return out


def _cmp(a: Version, b: Version) -> int | None:
    try:
        return compare(a, b)
    except Incomparable:
        return None


def _own_train_fix_reached(installed: Version, fixes: list[tuple[Version, dict[str, Any]]]
                           ) -> Version | None:
    """The newest fix not newer than ``installed``, unless its own train has a newer fix.

    ``v33.017, v34.014 and later``: 34.020 is fixed, 34.011 is not (34.014 is its train's fix),
    37.0 is; ``Version 30.011 or later``: 32.011 is fixed.
    """
    older, own_newer = [], False
    for ver, _ in fixes:
        ver = ver.resolved(installed)
        c = _cmp(installed, ver)
        if c is None:
            continue
        if c >= 0:
            older.append(ver)
        elif ver.release_train() == installed.release_train():
            own_newer = True
    if own_newer or not older:
        return None
    return max(older, key=lambda v: v.key)


def _propose_fix(installed: Version, fixes: list[tuple[Version, dict[str, Any]]]
                 ) -> Version | None:
    """The fix to install, always newer than the installed version.

    Preference: a fix the vendor text names for the installed release train, then the
    range's upper bound in that train, then the smallest newer text fix, then range bound.
    """
    ranked: list[tuple[int, tuple[Any, ...], Version]] = []
    own_train = installed.release_train()
    for ver, fix in fixes:
        ver = ver.resolved(installed)
        c = _cmp(ver, installed)
        if c is None or c <= 0:
            continue
        rank = (0 if ver.release_train() == own_train else 2) + (fix["how"] == "range")
        ranked.append((rank, ver.key, ver))
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None


def _verdict(advisory: Advisory, vuln: Vulnerability, outcome: _Outcome,
             listed: list[_Candidate], identity: Identity) -> Verdict:
    product = outcome.product
    cand = next(c for c in listed if c.product.pid == product.pid)
    basis = cand.tier + ("+family" if cand.family else "")
    rem = None
    fixed_in = outcome.fixed_in.raw if outcome.fixed_in is not None else None
    if outcome.kind in ("affected", "needs_review"):
        fix_rem = next((f["rem"] for f in vuln.fixes.get(product.pid, [])
                        if f["version"] == (outcome.fixed_in.raw if outcome.fixed_in else None)
                        and f["rem"] >= 0), None)
        index = fix_rem if fix_rem is not None else vuln.primary.get(product.pid)
        rem = vuln.remediations[index] if index is not None else None
    fix_text = f"; fixed in {fixed_in}" if fixed_in else ""
    if outcome.kind == "affected" and not fixed_in:
        fix_text = "; no fixed version is known" + (
            f" ({rem['category']})" if rem and rem["category"] in ("none_available",
                                                                     "no_fix_planned") else "")
    expression = product.spec.raw or "no version given"
    reason = (f"{product.pid} '{product.full_name or product.name}' [{expression}]: "
              f"{cand.why}; {outcome.reason}{fix_text}")
    cvss = vuln.cvss_for(product.pid) or {}
    return Verdict(
        advisory_id=advisory.tracking_id, advisory_version=advisory.version,
        title=advisory.title, cve=vuln.cve, verdict=outcome.kind, product_id=product.pid,
        product_name=product.full_name or product.name, expression=product.spec.raw,
        basis=basis, reason=reason, installed=identity.firmware_version, fixed_in=fixed_in,
        remediation_category=rem["category"] if rem else None,
        remediation=rem["details"] if rem else None,
        remediation_url=rem.get("url") if rem else None,
        cvss=cvss.get("score"), severity=cvss.get("severity"), vector=cvss.get("vector"),
        url=advisory.url)
