"""The evidence package: a zip an auditor or a NIS2 authority can check without otaudit.

Contents (paths inside the zip)::

    README.txt                   how to verify with sha256sum and openssl (or 10 lines of Python)
    report/report.html|pdf|json  the gap report
    observations/observations.jsonl   every stored observation of the site (zone), with the raw
                                 evidence excerpts (requests and replies), one JSON per line
    baseline/<root>/...          the checks, controls and catalogue that were applied
    policy/exceptions.yaml, policy/attestations.yaml, inventory/<file>   the site policy
    advisories/<tracking id>.json   the CSAF documents behind the advisories in the report
    SHA256SUMS                   ``sha256sum -c`` format, every file above
    manifest.json                every file with SHA-256 and size, and the signer's key id
    manifest.sig                 Ed25519 signature (64 raw bytes) over manifest.json's bytes
    signing-key.pub              the public key (PEM); compare its id with the one you trust

``verify_package`` recomputes everything and names each file that differs.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy.orm import Session

from otaudit import __version__
from otaudit.errors import InputError
from otaudit.signing import key_id, public_pem

if TYPE_CHECKING:
    from otaudit.server.baseline.loader import Baseline

FORMAT = "otaudit-evidence/1"
MANIFEST, SIGNATURE, PUBLIC_KEY, SUMS, README = (
    "manifest.json", "manifest.sig", "signing-key.pub", "SHA256SUMS", "README.txt")
UNLISTED = {MANIFEST, SIGNATURE}  # everything else is listed in the manifest
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entry times: the content decides the bytes

README_TEXT = """\
otaudit evidence package ({format})
=====================================

Site {site}{zone}, created {created} by otaudit {version}.
Signed with Ed25519 key id {key_id} (first 16 hex digits of SHA-256 over the raw 32-byte
public key). Compare that id with the one the auditing organisation gave you.

Verify without otaudit (Linux: coreutils, openssl 3, python3):

1. The signature over manifest.json:

     openssl pkeyutl -verify -pubin -inkey signing-key.pub -rawin \\
       -in manifest.json -sigfile manifest.sig
     # prints "Signature Verified Successfully"

   If you hold the organisation's public key yourself, use that file instead of the
   signing-key.pub in this package (the key in the package proves integrity only).

2. SHA256SUMS is the one manifest.json names:

     sha256sum SHA256SUMS
     grep -A1 '"SHA256SUMS"' manifest.json     # the same sha256

3. Every file against SHA256SUMS:

     sha256sum -c SHA256SUMS                   # each line must say OK

The same in Python (pip install cryptography), printing every file that differs:

     import hashlib, json
     from cryptography.hazmat.primitives.serialization import load_pem_public_key
     key = load_pem_public_key(open("signing-key.pub", "rb").read())
     manifest = open("manifest.json", "rb").read()
     key.verify(open("manifest.sig", "rb").read(), manifest)   # raises if forged
     for f in json.loads(manifest)["files"]:
         if hashlib.sha256(open(f["path"], "rb").read()).hexdigest() != f["sha256"]:
             print("differs:", f["path"])

With otaudit: otaudit evidence verify PACKAGE.zip [--key trusted.pub]

What is inside: report/ (the gap report as HTML, PDF and JSON), observations/ (every
observation: facts, unknowns with reasons, the requests sent and excerpts of the replies),
baseline/ (the checks and controls applied), policy/ and inventory/ (the site's
exceptions, attestations and inventory), advisories/ (the CSAF documents referenced).
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class PackageContent:
    """Files to package, path -> bytes (built in memory, then written at once)."""

    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, path: str, data: bytes | str) -> None:
        if path in self.files or path in UNLISTED:
            raise ValueError(f"duplicate path in package: {path}")
        self.files[path] = data.encode() if isinstance(data, str) else data


def observations_jsonl(session: Session, site: str | None, zone: str | None) -> bytes:
    """Every stored observation of the site (and zone), oldest first, one JSON per line."""
    from otaudit.server.db import ObservationRow

    query = sa.select(ObservationRow).order_by(ObservationRow.finished_at,
                                               ObservationRow.observation_id)
    if site is not None:
        query = query.where(ObservationRow.site == site)
    if zone is not None:
        query = query.where(ObservationRow.zone == zone)
    out = io.BytesIO()
    for row in session.execute(query.execution_options(yield_per=500)).scalars():
        out.write(json.dumps(row.payload, sort_keys=True, default=str).encode())
        out.write(b"\n")
    return out.getvalue()


def advisory_documents(session: Session, tracking_ids: Iterable[str]) -> dict[str, str]:
    """The CSAF documents (exactly as imported) of these advisories."""
    from otaudit.server.advisories.db import AdvisoryRow

    ids = sorted(set(tracking_ids))
    if not ids:
        return {}
    rows = session.execute(sa.select(AdvisoryRow.tracking_id, AdvisoryRow.document)
                           .where(AdvisoryRow.tracking_id.in_(ids)))
    return dict(rows.tuples().all())


def baseline_files(baseline: Baseline) -> dict[str, bytes]:
    """The data files of the bundled baseline and the site overlay (no Python, no cache)."""
    out: dict[str, bytes] = {}
    for label, root in zip(("bundled", "overlay"), baseline.roots, strict=False):
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml", ".md"):
                out[f"baseline/{label}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return out


def build_package(document: dict[str, Any], *, html: str, pdf: bytes, observations: bytes,
                  baseline: Baseline, advisories: dict[str, str],
                  policy: dict[str, Path], key: Ed25519PrivateKey,
                  created: datetime, extra: dict[str, str] | None = None) -> bytes:
    """The signed zip as bytes (see the module docstring)."""
    content = PackageContent()
    public = key.public_key()
    meta = document["meta"]
    zone = meta.get("zone_filter")
    content.add(README, README_TEXT.format(
        format=FORMAT, site=meta["site"], zone=f", zone {zone}" if zone else "",
        created=created.isoformat(timespec="seconds"), version=__version__,
        key_id=key_id(public)))
    content.add("report/report.html", html)
    content.add("report/report.pdf", pdf)
    content.add("report/report.json", json.dumps(document, indent=2, default=str))
    content.add("observations/observations.jsonl", observations)
    for path, data in baseline_files(baseline).items():
        content.add(path, data)
    for name, path in sorted(policy.items()):  # zip path -> the site's file
        content.add(name, Path(path).read_bytes())
    for path, text in sorted((extra or {}).items()):  # e.g. the server's declared inventory
        content.add(path, text)
    for tracking_id, text in sorted(advisories.items()):
        content.add(f"advisories/{_safe_name(tracking_id)}.json", text)
    content.add(PUBLIC_KEY, public_pem(public))
    content.add(SUMS, "".join(f"{sha256(data)}  {path}\n"
                              for path, data in sorted(content.files.items())))
    manifest = {
        "format": FORMAT, "site": meta["site"], "zone": zone,
        "created_at": created.isoformat(timespec="seconds"),
        "tool": {"name": "otaudit", "version": __version__},
        "baseline_digest": meta["baseline"]["digest"],
        "signature": {"algorithm": "ed25519", "key_id": key_id(public), "file": SIGNATURE,
                      "public_key": PUBLIC_KEY, "signed": MANIFEST},
        "files": [{"path": path, "sha256": sha256(data), "size": len(data)}
                  for path, data in sorted(content.files.items())],
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    signature = key.sign(manifest_bytes)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in [(MANIFEST, manifest_bytes), (SIGNATURE, signature),
                           *sorted(content.files.items())]:
            info = zipfile.ZipInfo(path, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return out.getvalue()


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclass
class Verification:
    ok: bool
    key_id: str | None
    trusted_key: bool
    files: int
    problems: list[str]


def verify_package(path: Path, trusted_key: Ed25519PublicKey | None = None) -> Verification:
    """Check the signature over manifest.json and every file against the manifest; each
    problem names the file. ``trusted_key``: the key the verifier trusts (else the one in
    the package, which proves integrity but not origin)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(path, [f"not a readable zip file: {exc}"]) from None
    problems: list[str] = []
    with zf:
        names = zf.namelist()
        if len(names) != len(set(names)):
            problems += [f"{n}: appears more than once in the zip"
                         for n in sorted({n for n in names if names.count(n) > 1})]
        try:
            manifest_bytes, signature = zf.read(MANIFEST), zf.read(SIGNATURE)
        except KeyError as exc:
            raise InputError(path, [f"not an otaudit evidence package: {exc.args[0]}"]) from None
        try:
            manifest = json.loads(manifest_bytes)
            listed = {f["path"]: f for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            return Verification(False, None, trusted_key is not None, 0,
                                [f"{MANIFEST}: unreadable ({exc})"])
        key = trusted_key
        if key is None:
            try:
                loaded = serialization.load_pem_public_key(zf.read(PUBLIC_KEY))
            except (KeyError, ValueError) as exc:
                return Verification(False, None, False, 0,
                                    [f"{PUBLIC_KEY}: missing or unreadable ({exc})"])
            if not isinstance(loaded, Ed25519PublicKey):
                return Verification(False, None, False, 0, [f"{PUBLIC_KEY}: not Ed25519"])
            key = loaded
        try:
            key.verify(signature, manifest_bytes)
        except InvalidSignature:
            problems.append(f"{MANIFEST}: the signature in {SIGNATURE} does not match "
                            f"(key {key_id(key)})")
        declared = manifest.get("signature", {}).get("key_id")
        if declared and declared != key_id(key):
            problems.append(f"{MANIFEST}: signed by key {declared}, verified with {key_id(key)}")
        for name in sorted(set(names) - UNLISTED - set(listed)):
            problems.append(f"{name}: not listed in {MANIFEST}")
        for name, entry in sorted(listed.items()):
            if name not in names:
                problems.append(f"{name}: listed in {MANIFEST} but missing")
                continue
            data = zf.read(name)
            if sha256(data) != entry.get("sha256") or len(data) != entry.get("size"):
                problems.append(f"{name}: differs from {MANIFEST} (sha256 {sha256(data)[:16]}…,"
                                f" expected {str(entry.get('sha256'))[:16]}…)")
    return Verification(not problems, key_id(key), trusted_key is not None, len(listed),
                        problems)


def export_evidence(session: Session, *, site: str, zone: str | None, baseline: Baseline,
                    key: Ed25519PrivateKey, exceptions_file: Path | None = None,
                    attestations_file: Path | None = None, inventory_file: Path | None = None,
                    now: datetime | None = None) -> bytes:
    """Build the report of ``site`` (optionally one zone) and package it with its evidence."""
    from otaudit.observation import utcnow
    from otaudit.server import store
    from otaudit.server.reporting.context import report_document
    from otaudit.server.reporting.html import render_html
    from otaudit.server.reporting.pdf import render_pdf

    now = now or utcnow()
    document = report_document(session, baseline=baseline, zone=zone, site=site, now=now,
                               exceptions_file=exceptions_file,
                               attestations_file=attestations_file,
                               inventory_file=inventory_file)
    html = render_html(document)
    advisories = advisory_documents(session, {p["advisory_id"] for p in document["patches"]
                                              if p.get("advisory_id")})
    policy = {f"policy/{f.name}": f for f in (exceptions_file, attestations_file) if f}
    if inventory_file:
        policy[f"inventory/{inventory_file.name}"] = inventory_file
    declared = {f"inventory/declared-{_safe_name(r.site)}.json": json.dumps(
        {"site": r.site, "sha256_of_inventory_file": r.digest, "source": Path(r.source).name,
         "loaded_at": r.loaded_at.isoformat(), "declared": r.document}, indent=2, default=str)
        for r in store.declared_inventories(session, site)}
    return build_package(document, html=html, pdf=render_pdf(html), extra=declared,
                         observations=observations_jsonl(session, site, zone),
                         baseline=baseline, advisories=advisories, policy=policy, key=key,
                         created=now)
