"""A validated CSAF document → the normal form the matcher uses (JSON-serialisable).

Per advisory: products (normalised vendor, identity name, order numbers/patterns, a
``VersionSpec`` per leaf; ``installed_on`` relationships become products whose identity is the
hardware and whose version is the firmware), and per vulnerability: CVE, CWE, CVSS,
product status per product id, remediations with category, and fixed-in versions per product
parsed from remediation text (plus the exclusive upper bound of the range, ``< V4.5.0`` → 4.5.0).
Fix candidates that lie inside the product's own affected range are dropped (they belong to
another product the text forgot to name). ``quality`` counts the problems worked around.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from otaudit.server.advisories import csaf
from otaudit.server.advisories.fixes import Mentions, fix_candidates, fix_versions
from otaudit.server.advisories.names import (
    NameFilter,
    ProductName,
    normalise_vendor,
    product_name,
    tokens,
    vendor_words,
)
from otaudit.server.advisories.ranges import (
    VersionSpec,
    parse_expression,
    position,
    train_bounds,
)
from otaudit.server.advisories.versions import parse_version, scheme_for_vendor

NORMAL_FORM_VERSION = 2
_NAME_CATEGORIES = ("product_family", "product_name", "specification")
_VERSION_CATEGORIES = ("product_version", "product_version_range", "service_pack",
                       "patch_level")
STATUS_MAP = {"known_affected": "affected", "first_affected": "affected",
              "last_affected": "affected", "fixed": "fixed", "first_fixed": "fixed",
              "recommended": "fixed", "known_not_affected": "not_affected",
              "under_investigation": "under_investigation"}
_STATUS_RANK = {"affected": 3, "under_investigation": 2, "fixed": 1, "not_affected": 0}
DETAILS_LIMIT = 600
_DOTTED = re.compile(r"(?<![\w.])\d+(?:\.\d+)+(?![\w.])")


@dataclass
class Product:
    pid: str
    vendor_raw: str
    vendors: list[str]
    name: str
    full_name: str
    identity: ProductName
    spec: VersionSpec
    via: str = "branch"

    @property
    def scheme(self) -> str:
        return scheme_for_vendor(self.vendors[0] if self.vendors else None)


@dataclass
class Vulnerability:
    cve: str
    title: str | None
    cwe: str | None
    scores: list[dict[str, Any]]
    status: dict[str, str]
    remediations: list[dict[str, Any]]
    fixes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    primary: dict[str, int] = field(default_factory=dict)

    def cvss_for(self, pid: str) -> dict[str, Any] | None:
        fitting = [s for s in self.scores if not s.get("products") or pid in s["products"]]
        pool = fitting or self.scores
        return max(pool, key=lambda s: s.get("score") or 0) if pool else None


@dataclass
class Advisory:
    tracking_id: str
    version: str
    title: str
    publisher: str
    status: str
    initial_release_date: str
    current_release_date: str
    url: str | None
    products: dict[str, Product]
    vulnerabilities: list[Vulnerability]
    quality: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "normal_form": NORMAL_FORM_VERSION, "tracking_id": self.tracking_id,
            "version": self.version, "title": self.title, "publisher": self.publisher,
            "status": self.status, "initial_release_date": self.initial_release_date,
            "current_release_date": self.current_release_date, "url": self.url,
            "quality": dict(self.quality),
            "products": {pid: _product_dict(p) for pid, p in self.products.items()},
            "vulnerabilities": [{
                "cve": v.cve, "title": v.title, "cwe": v.cwe, "scores": v.scores,
                "status": v.status, "remediations": v.remediations, "fixes": v.fixes,
                "primary": v.primary} for v in self.vulnerabilities],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Advisory:
        products = {}
        for pid, p in data["products"].items():
            ident = dict(p["identity"])
            nf = ident.get("name_filter")
            ident["name_filter"] = NameFilter(**nf) if nf else None
            ident["tokens"] = frozenset(ident["tokens"])
            ident["series"] = frozenset(ident.get("series", ()))
            for key in ("globs", "order_numbers", "order_patterns", "conditions"):
                ident[key] = tuple(ident.get(key, ()))
            ident["choices"] = tuple(tuple(c) for c in ident.get("choices", ()))
            ident["families"] = tuple(tuple(c) for c in ident.get("families", ()))
            ident["sizes"] = tuple(tuple(c) for c in ident.get("sizes", ()))
            ident["aliases"] = tuple(frozenset(a) for a in ident.get("aliases", ()))
            products[pid] = Product(**{**p, "identity": ProductName(**ident),
                                       "spec": VersionSpec.from_dict(p["spec"])})
        vulns = [Vulnerability(**v) for v in data["vulnerabilities"]]
        fields = {k: data[k] for k in ("tracking_id", "version", "title", "publisher", "status",
                                       "initial_release_date", "current_release_date", "url",
                                       "quality")}
        return cls(**fields, products=products, vulnerabilities=vulns)


def _product_dict(p: Product) -> dict[str, Any]:
    ident = p.identity
    nf = ident.name_filter
    return {
        "pid": p.pid, "vendor_raw": p.vendor_raw, "vendors": p.vendors, "name": p.name,
        "full_name": p.full_name, "via": p.via,
        "identity": {"tokens": sorted(ident.tokens), "globs": list(ident.globs),
                     "order_numbers": list(ident.order_numbers),
                     "order_patterns": list(ident.order_patterns),
                     "name_filter": {"op": nf.op, "version": nf.version, "token": nf.token}
                     if nf else None,
                     "choices": [list(c) for c in ident.choices], "series": sorted(ident.series),
                     "families": [list(c) for c in ident.families],
                     "sizes": [list(c) for c in ident.sizes],
                     "aliases": [sorted(a) for a in ident.aliases],
                     "conditions": list(ident.conditions)},
        "spec": p.spec.to_dict(),
    }


def normalise(doc: dict[str, Any]) -> Advisory:
    """Compile a document that passed ``csaf.validate``."""
    quality: Counter[str] = Counter()
    document = doc["document"]
    tracking = document["tracking"]
    products = _products(doc.get("product_tree") or {}, quality)
    _strengthen_weak_names(products, document.get("title", ""), quality)
    names = {pid: [p.name] for pid, p in products.items()}
    mentions = Mentions(names)
    vulns = []
    referenced: set[str] = set()
    for i, raw in enumerate(doc.get("vulnerabilities") or []):
        vuln = _vulnerability(raw, i, products, mentions, quality)
        referenced |= set(vuln.status)
        vulns.append(vuln)
    kept = {pid: p for pid, p in products.items() if pid in referenced}
    for p in kept.values():
        quality.update(set(p.spec.notes))
    url = next((r.get("url") for r in document.get("references", []) or []
                if isinstance(r, dict) and r.get("category") == "self"), None)
    return Advisory(
        tracking_id=tracking["id"].strip(), version=str(tracking["version"]),
        title=document["title"], publisher=document["publisher"]["name"],
        status=tracking["status"], initial_release_date=tracking["initial_release_date"],
        current_release_date=tracking["current_release_date"], url=url,
        products=kept, vulnerabilities=vulns, quality=dict(quality))


def _products(tree: dict[str, Any], quality: Counter[str]) -> dict[str, Product]:
    out: dict[str, Product] = {}
    for path, prod in csaf.iter_leaves(tree.get("branches", [])):
        pid = prod["product_id"]
        if pid in out:
            quality["duplicate_product_id"] += 1
            continue
        vendor_raw = next((b.get("name", "") for b in path if b.get("category") == "vendor"), "")
        name_parts = [b["name"] for b in path if b.get("category") in _NAME_CATEGORIES]
        leaf = path[-1]
        if leaf.get("category") in _VERSION_CATEGORIES:
            spec = parse_expression(leaf.get("name"), leaf.get("category"))
            _restore_trailing_zeros(spec, prod.get("name", ""))
        else:
            spec = VersionSpec("none", "")
        name = " ".join(name_parts) or prod.get("name", "")
        helper = prod.get("product_identification_helper") or {}
        models = [m for m in helper.get("model_numbers", []) if isinstance(m, str)]
        models += spec.article_numbers
        words = vendor_words(vendor_raw)
        identity = product_name(name, prod.get("name", ""), models, words)
        if spec.aliases:  # "< 15.1 HF001 (including former Unity Pro)"
            identity = replace(identity, aliases=identity.aliases + tuple(
                frozenset(tokens(alias)) - words for alias in spec.aliases))
        out[pid] = Product(pid=pid, vendor_raw=vendor_raw.strip(),
                           vendors=sorted(normalise_vendor(vendor_raw)), name=name,
                           full_name=prod.get("name", ""), identity=identity, spec=spec)
    for fpn in tree.get("full_product_names", []) or []:
        pid = fpn["product_id"]
        if pid not in out:
            quality["full_product_name_only"] += 1
            out[pid] = Product(pid=pid, vendor_raw="", vendors=[], name=fpn["name"],
                               full_name=fpn["name"], identity=product_name(fpn["name"]),
                               spec=VersionSpec("none", ""))
    _per_line_bounds(out, quality)
    for rel in tree.get("relationships", []) or []:
        pid = rel["full_product_name"]["product_id"]
        hardware = out.get(rel["relates_to_product_reference"])
        software = out.get(rel["product_reference"])
        if pid in out or hardware is None or software is None:
            quality["unresolved_relationship"] += 1
            continue
        out[pid] = Product(
            pid=pid, vendor_raw=hardware.vendor_raw or software.vendor_raw,
            vendors=hardware.vendors or software.vendors, name=hardware.name,
            full_name=rel["full_product_name"]["name"], identity=hardware.identity,
            spec=software.spec, via=f"{rel.get('category')}:{software.pid}")
    return out


def _per_line_bounds(products: dict[str, Product], quality: Counter[str]) -> None:
    """Several entries of one product, each only an upper bound, are one bound per release line.

    Relion 670 "<= 1.2.3.17", "<= 2.0.0.10", "<= 2.1.0.1": 2.0.0.11 is the fix of the 2.0 line,
    not a version below the 2.1 line's bound.
    """
    groups: dict[tuple[str, str], list[Product]] = {}
    for product in products.values():
        spec = product.spec
        if spec.kind == "range" and len(spec.intervals) == 1 and not spec.exact and \
                spec.intervals[0].lo is None and spec.intervals[0].hi is not None:
            groups.setdefault((product.vendor_raw, product.name), []).append(product)
    for group in groups.values():
        if len(group) < 2:
            continue
        bounds = train_bounds([p.spec.intervals[0].hi for p in group])  # type: ignore[misc]
        lows = {id(hi): lo for lo, hi in bounds}
        for product in group:
            lo = lows.get(id(product.spec.intervals[0].hi))
            if lo is not None:
                product.spec.intervals[0].lo = lo
                product.spec.reading = (f"one bound per release line: this entry is the "
                                        f"{lo.version} line")
                quality["bound_per_release_line"] += 1


def _restore_trailing_zeros(spec: VersionSpec, full_name: str) -> None:
    """``2.1`` under a product named "NPort 5110: Firmware Versions 2.10" means 2.10."""
    written = set(_DOTTED.findall(full_name))
    if not written or spec.kind != "range":
        return

    def fix(value: str) -> str:
        for token in written:
            if token != value and len(token) > len(value) and token.rstrip("0") == value:
                spec.notes.append("lost_trailing_zero")
                return token
        return value

    spec.exact = [fix(v) for v in spec.exact]
    for interval in spec.intervals:
        for bound in (interval.lo, interval.hi):
            if bound is not None:
                bound.version = fix(bound.version)


def _strengthen_weak_names(products: dict[str, Product], title: str,
                           quality: Counter[str]) -> None:
    """"Series B" alone names nothing; the title's single model number completes it."""
    significant = [t for t in tokens(title) if any(c.isdigit() for c in t)]
    for product in products.values():
        ident = product.identity
        if not ident.weak or ident.order_numbers or ident.order_patterns:
            continue
        quality["weak_product_name"] += 1
        if len(set(significant)) == 1:
            product.identity = replace(ident, tokens=ident.tokens | {significant[0]})


def _vulnerability(raw: dict[str, Any], index: int, products: dict[str, Product],
                   mentions: Mentions, quality: Counter[str]) -> Vulnerability:
    status: dict[str, str] = {}
    for kind, ids in (raw.get("product_status") or {}).items():
        mapped = STATUS_MAP.get(kind)
        for pid in ids:
            if pid not in products:
                quality["undefined_product_id"] += 1
                continue
            if pid in status and status[pid] != mapped:
                quality["contradicting_status"] += 1
                if _STATUS_RANK[mapped] <= _STATUS_RANK[status[pid]]:
                    continue
            status[pid] = mapped
    for flag in raw.get("flags") or []:  # VEX justifications such as vulnerable_code_not_present
        for pid in flag.get("product_ids") or [] if isinstance(flag, dict) else []:
            if pid in products and pid not in status:
                status[pid] = "not_affected"
                quality["flag_not_affected"] += 1
    scores = []
    for score in raw.get("scores") or []:
        cvss = score.get("cvss_v3") or score.get("cvss_v2")
        if isinstance(cvss, dict):
            scores.append({"score": cvss.get("baseScore"), "severity": cvss.get("baseSeverity"),
                           "vector": cvss.get("vectorString"), "version": cvss.get("version"),
                           "products": score.get("products", [])})
    if len(scores) == 1:
        scores[0]["products"] = []
    rems = []
    for rem in raw.get("remediations") or []:
        ids = [p for p in rem.get("product_ids", []) if p in products]
        if not rem.get("product_ids") and not rem.get("group_ids"):
            quality["remediation_without_product"] += 1
            ids = list(status)
        rems.append({"category": rem["category"], "details": rem["details"][:DETAILS_LIMIT],
                     "url": rem.get("url"), "product_ids": ids, "_text": rem["details"]})
    cwe = raw.get("cwe") if isinstance(raw.get("cwe"), dict) else None
    vuln = Vulnerability(
        cve=raw.get("cve") or f"(no CVE #{index + 1})", title=raw.get("title"),
        cwe=cwe.get("id") if cwe else None, scores=scores, status=status,
        remediations=[{k: v for k, v in r.items() if not k.startswith("_")} for r in rems])
    _attribute_fixes(vuln, rems, products, mentions, quality)
    return vuln


def _attribute_fixes(vuln: Vulnerability, rems: list[dict[str, Any]],
                     products: dict[str, Product], mentions: Mentions,
                     quality: Counter[str]) -> None:
    """Per product id: fixed-in candidates and the remediation to show."""
    applicable: dict[str, list[tuple[int, str]]] = {}
    for i, rem in enumerate(rems):
        named = mentions(rem["_text"])
        rem["_fixes"] = (fix_candidates(rem["_text"], rem["category"] == "vendor_fix")
                         if rem["category"] in ("vendor_fix", "mitigation") else [])
        for pid in rem["product_ids"]:
            if named and pid not in named:
                continue
            strength = ("named" if pid in named else
                        "specific" if len(rem["product_ids"]) == 1 else "shared")
            applicable.setdefault(pid, []).append((i, strength))
    for pid, prod_status in vuln.status.items():
        if prod_status != "affected":
            continue
        product = products[pid]
        entries = applicable.get(pid, [])
        found: dict[str, list[dict[str, Any]]] = {"vendor_fix": [], "mitigation": []}
        for i, strength in entries:
            rem = rems[i]
            if rem["category"] not in found:
                continue
            if product.spec.kind in ("all", "none") and strength == "shared":
                continue
            if not rem["_fixes"]:
                continue
            for text in fix_versions(rem["_text"], product.identity.tokens, rem["_fixes"]):
                if _plausible_fix(text, product, quality):
                    found[rem["category"]].append({"version": text, "rem": i, "how": "text"})
        fixes = found["vendor_fix"] or found["mitigation"]
        for interval in product.spec.intervals:
            hi = interval.hi
            if hi and not hi.inclusive and not product.spec.conditions and \
                    not any(f["version"] == hi.version for f in fixes):
                fixes.append({"version": hi.version, "rem": -1, "how": "range"})
        if fixes:
            vuln.fixes[pid] = fixes
        primary = _primary(entries, rems, fixes)
        if primary is not None:
            vuln.primary[pid] = primary


def _plausible_fix(text: str, product: Product, quality: Counter[str]) -> bool:
    ver = parse_version(text, product.scheme)
    if ver is None:
        return False
    spec = product.spec
    open_ended = any(i.hi is None for i in spec.intervals)
    pos = position(spec, ver, product.scheme) if spec.kind == "range" else None
    if pos is not None and not open_ended and pos.where == "in" and not pos.by_prefix:
        quality["fix_text_inside_affected_range"] += 1
        return False
    return True


def _primary(entries: list[tuple[int, str]], rems: list[dict[str, Any]],
             fixes: list[dict[str, Any]]) -> int | None:
    for fix in fixes:
        if fix["rem"] >= 0 and rems[fix["rem"]]["category"] == "vendor_fix":
            return fix["rem"]
    for category in ("vendor_fix", "none_available", "no_fix_planned", "workaround",
                     "mitigation"):
        for i, _ in entries:
            if rems[i]["category"] == category:
                return i
    return None
