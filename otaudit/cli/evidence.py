"""``otaudit evidence export|verify``: the signed evidence package (server/reporting)."""

from __future__ import annotations

from pathlib import Path

import typer

from otaudit.cli.common import baseline_option, database, db_option, site_baseline
from otaudit.errors import ExitCode, InputError, StateError, UnknownName
from otaudit.settings import get_settings

evidence_app = typer.Typer(no_args_is_help=True, add_completion=False,
                           help="Signed evidence packages for auditors and authorities.")

KEY_HELP = "the server's Ed25519 private key (default: OTAUDIT_SERVER_SIGNING_KEY_FILE)"


@evidence_app.command("export")
def export(
    site: str = typer.Option(..., "--site", help="the site to package"),
    zone: str | None = typer.Option(None, "--zone", help="only this zone"),
    out: Path = typer.Option(..., "--out", help="the zip file to write"),
    key: Path | None = typer.Option(None, "--key", help=KEY_HELP),
    db: str | None = db_option(),
    exceptions: Path | None = typer.Option(
        None, help="exceptions YAML (default: OTAUDIT_EXCEPTIONS_FILE)"),
    attestations: Path | None = typer.Option(
        None, help="attestations YAML (default: OTAUDIT_ATTESTATIONS_FILE)"),
    inventory: Path | None = typer.Option(None, "--inventory", help="the inventory audited"),
    baseline: Path | None = baseline_option(),
) -> None:
    """Write OUT: the report (HTML, PDF, JSON), every observation with its raw evidence,
    the baseline, the site policy, the advisories, SHA-256 of every file in manifest.json
    and an Ed25519 signature over it (README.txt inside says how to verify)."""
    from otaudit.server import store
    from otaudit.server.db import session_factory
    from otaudit.server.reporting.evidence import export_evidence
    from otaudit.signing import SigningKeyError, key_id, load_private_key

    settings = get_settings(database_url=db)
    key_path = key or (Path(settings.server_signing_key_file)
                       if settings.server_signing_key_file else None)
    if key_path is None:
        raise StateError("no server signing key for the evidence package",
                         hint="create one with `otaudit keys generate server --out keys/` and "
                              "set OTAUDIT_SERVER_SIGNING_KEY_FILE (or pass --key)")
    try:
        private = load_private_key(key_path)
    except SigningKeyError as exc:
        raise StateError(str(exc)) from None
    for path in (inventory, exceptions, attestations):
        if path is not None and not path.is_file():
            raise InputError(path, ["no such file"])
    checks = site_baseline(settings, baseline)
    engine = database(settings, None)
    with session_factory(engine)() as session:
        if site not in (sites := store.sites(session)):
            raise UnknownName("site", site, tuple(sites), source="--site")
        if zone is not None and zone not in (zones := store.known_zones(session, site)):
            raise UnknownName("zone", zone, tuple(zones), source="--zone")
        data = export_evidence(session, site=site, zone=zone, baseline=checks, key=private,
                               exceptions_file=exceptions or settings.exceptions_file,
                               attestations_file=attestations or settings.attestations_file,
                               inventory_file=inventory)
    engine.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)  # nothing half-written
    typer.echo(f"wrote {out} ({len(data):,} bytes), signed with key "
               f"{key_id(private.public_key())}")


@evidence_app.command("verify")
def verify(
    package: Path = typer.Argument(..., help="the evidence package (zip)"),
    key: Path | None = typer.Option(None, "--key", help="the public key you trust (.pub); "
                                    "default: the one in the package (integrity only)"),
) -> None:
    """Check the signature and every file; name each file that differs. Exit 1 if any."""
    from otaudit.server.reporting.evidence import verify_package
    from otaudit.signing import SigningKeyError, load_public_key

    if not package.is_file():
        raise InputError(package, ["no such file"])
    trusted = None
    if key is not None:
        try:
            trusted = load_public_key(key)
        except SigningKeyError as exc:
            raise InputError(key, [str(exc)]) from None
    result = verify_package(package, trusted)
    for problem in result.problems:
        typer.echo(f"  - {problem}")
    if not result.ok:
        typer.echo(f"{package}: {len(result.problems)} problem(s)")
        raise typer.Exit(ExitCode.FOUND)
    how = "a key you trust" if result.trusted_key else \
        "the key inside the package (pass --key to check who signed it)"
    typer.echo(f"{package}: ok, {result.files} files match manifest.json, signed by key "
               f"{result.key_id} ({how})")
