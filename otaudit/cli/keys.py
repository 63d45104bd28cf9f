"""``otaudit keys``: Ed25519 signing keys of collectors (generate, show the key id)."""

from __future__ import annotations

from pathlib import Path

import typer

from otaudit.errors import InputError

keys_app = typer.Typer(no_args_is_help=True, help="Collector signing keys (Ed25519).")


@keys_app.command("generate")
def generate(
    collector: str = typer.Argument(..., help="collector id (as in OTAUDIT_COLLECTOR_ID)"),
    out: Path = typer.Option(Path("."), "--out", "-o", help="folder for the two files"),
    force: bool = typer.Option(False, "--force", help="overwrite existing files"),
) -> None:
    """Write OUT/COLLECTOR.key (private, mode 0600) and OUT/COLLECTOR.pub (enrol on the server)."""
    from otaudit.signing import check_collector_id, write_key_pair

    try:
        check_collector_id(collector)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="COLLECTOR") from None
    try:
        private_path, public_path, kid = write_key_pair(out, collector, force=force)
    except FileExistsError as exc:
        raise InputError(str(exc), ["already exists (--force to overwrite)"]) from None
    except OSError as exc:
        raise InputError(out, [f"cannot write the key files: {exc.strerror or exc}"]) from None
    typer.echo(f"collector {collector}: key id {kid}\n"
               f"  private key {private_path} (mode 0600; OTAUDIT_SIGNING_KEY_FILE on the "
               f"collector)\n  public key  {public_path} (copy into the server's "
               f"OTAUDIT_TRUSTED_KEYS_DIR)")


@keys_app.command("id")
def show_id(path: Path = typer.Argument(..., help="a .pub or .key file")) -> None:
    """Print the key id of a public or private key file (to compare enrolment)."""
    from otaudit.signing import SigningKeyError, key_id, load_private_key, load_public_key

    try:
        if path.suffix == ".key":
            public = load_private_key(path).public_key()
        else:
            public = load_public_key(path)
    except SigningKeyError as exc:
        raise InputError(path, [str(exc)]) from None
    typer.echo(key_id(public))
