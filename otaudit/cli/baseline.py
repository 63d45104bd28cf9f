"""``otaudit baseline lint|test|controls`` and ``otaudit gap``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from otaudit.cli.common import BASELINE_HELP, choose_site, db_option, site_option
from otaudit.cli.failon import FailOn, exit_on, fail_on_help, parse_fail_on
from otaudit.errors import InputError, UnknownName

baseline_app = typer.Typer(no_args_is_help=True, add_completion=False,
                           help="Check and test the IEC 62443 baseline (checks as data).")

ROOT_HELP = "a whole baseline folder instead of the bundled baselines/"
GAP_FAIL_ON = (FailOn.FAIL, FailOn.CAPABILITY_GAP, FailOn.UNKNOWN, FailOn.OPEN_ADVISORY,
               FailOn.DEVICE_ERROR)


def _overlay_option() -> Path | None:
    return typer.Option(None, "--baseline", help=BASELINE_HELP)


@baseline_app.command("lint")
def lint_cmd(root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
             overlay: Path | None = _overlay_option()) -> None:
    """Report unknown fact paths, unknown SR/CR ids, bad levels, duplicate ids and missing
    fixtures, each with file and line. Exit 1 when there is any problem."""
    from otaudit.server.baseline.lint import lint

    try:
        from otaudit.probes import fact_catalogue

        catalogue = fact_catalogue()
    except Exception as exc:  # a probe module that does not import yet
        typer.echo(f"error: cannot build the fact catalogue from the probes: {exc}", err=True)
        raise typer.Exit(2) from None
    problems = lint(root, catalogue, overlay=overlay or _settings().baseline_dir)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo("baseline ok")


@baseline_app.command("test")
def test_cmd(root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
             overlay: Path | None = _overlay_option(),
             verbose: bool = typer.Option(False, "--verbose", "-v",
                                          help="list every case, not only failures")) -> None:
    """Run every check's fixtures (baselines/tests/<check>.yaml). Exit 1 on a failure."""
    from otaudit.server.baseline.fixtures import run_fixtures
    from otaudit.server.baseline.loader import read_baseline

    baseline, problems = read_baseline(root, overlay or _settings().baseline_dir)
    if baseline is None or problems:
        for problem in problems:
            typer.echo(str(problem))
        raise typer.Exit(1)
    outcomes, problems = run_fixtures(baseline)
    for problem in problems:
        typer.echo(str(problem))
    failed = [o for o in outcomes if not o.ok]
    for outcome in outcomes if verbose else failed:
        typer.echo(str(outcome))
    checks = len({o.check_id for o in outcomes})
    cases = len({(o.check_id, o.case) for o in outcomes})
    typer.echo(f"{checks} checks, {cases} cases, {len(outcomes)} level results: "
               f"{len(failed)} failed")
    if failed or problems:
        raise typer.Exit(1)


@baseline_app.command("controls")
def controls_cmd(root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
                 overlay: Path | None = _overlay_option()) -> None:
    """List every SR/RE with its levels and the checks that decide it."""
    from otaudit.server.baseline.loader import load_baseline

    baseline = load_baseline(root, overlay or _settings().baseline_dir)
    automatic = 0
    for rid, req in baseline.requirements.items():
        checks = baseline.checks_for(rid)
        automatic += bool(checks)
        how = ", ".join(checks) if checks else "attestation"
        typer.echo(f"{rid:<13} {req.fr:<4} SL {req.sl[0]}+  {how}")
    typer.echo(f"{automatic} of {len(baseline.requirements)} SR/REs have automatic checks; "
               f"{len(baseline.checks)} checks")


def gap(
    db: str | None = db_option(),
    zone: str | None = typer.Option(None, "--zone", help="only this zone"),
    site: str | None = site_option(),
    fmt: str = typer.Option("table", "--format", help="table or json"),
    exceptions: Path | None = typer.Option(
        None, "--exceptions", help="exceptions YAML file (default: OTAUDIT_EXCEPTIONS_FILE)"),
    attestations: Path | None = typer.Option(
        None, "--attestations", help="attestations YAML file (default: OTAUDIT_ATTESTATIONS_FILE)"),
    overlay: Path | None = _overlay_option(),
    fail_on: str | None = typer.Option(None, "--fail-on", help=fail_on_help(GAP_FAIL_ON)),
) -> None:
    """Per zone: SL-T vs SL-A per FR, requirements not met with their evidence, NIS2 view."""
    if fmt not in ("table", "json"):
        raise InputError("--format", [f"{fmt!r}: expected table or json"])
    requested = parse_fail_on(fail_on, GAP_FAIL_ON)
    from otaudit.cli.common import database, site_baseline
    from otaudit.server import store
    from otaudit.server.db import session_factory
    from otaudit.server.services.gap import gap_evaluation
    from otaudit.server.services.policy import site_policy

    settings = _settings()
    baseline = site_baseline(settings, overlay)
    engine = database(settings, db)
    with session_factory(engine)() as session:
        site = choose_site(session, site)
        policy = site_policy(session, site, baseline,
                             exceptions or settings.exceptions_file,
                             attestations or settings.attestations_file)
        if zone is not None and zone not in store.load_zones(session, site):
            raise UnknownName("zone", zone, tuple(store.load_zones(session, site)),
                              source="--zone")
        evaluation = gap_evaluation(session, site, baseline, policy, zone)
        conditions = gap_device_conditions(session, zone, site) if requested else {}
    engine.dispose()
    if fmt == "json":
        from otaudit.server.services.gap import gap_document

        sys.stdout.write(json.dumps(gap_document(evaluation, zone), indent=2) + "\n")
    else:
        from otaudit.server.baseline.render import render_gap_table

        sys.stdout.write(render_gap_table(evaluation, zone))
    unmet = [g.status for z in evaluation.zones for g in z.failing]
    exit_on(requested, {FailOn.FAIL: unmet.count("fail"),
                        FailOn.CAPABILITY_GAP: unmet.count("capability_gap"),
                        FailOn.UNKNOWN: unmet.count("unknown"), **conditions})


def gap_device_conditions(session, zone: str | None, site: str | None) -> dict[FailOn, int]:
    """Open advisories and devices not fully read, in the zone (or all zones)."""
    from otaudit.server import store
    from otaudit.server.advisories.patch import patch_status_rows

    observations = store.latest_observations(session, zone=zone, site=site)
    return {FailOn.OPEN_ADVISORY: len(patch_status_rows(session, zone=zone, site=site,
                                                        include=["open"])),
            FailOn.DEVICE_ERROR: sum(1 for o in observations if o.status != "ok")}


def _settings():
    from otaudit.settings import Settings

    return Settings()
