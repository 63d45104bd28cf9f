"""``otaudit discover CIDR…``: find the devices of a network and write a draft inventory."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import typer

from otaudit.cli.common import stop_on_signals
from otaudit.errors import InputError

SERVICE_HELP = ("SERVICE=PORT to look for a service on another port (0: not at all); "
                "services: modbus 502, s7 102, ssh 22, enip 44818, opcua 4840, telnet 23, "
                "http 80, https 443, snmp 161 (UDP)")


def discover(
    targets: list[str] = typer.Argument(..., help="networks, addresses or ranges: "
                                        "10.1.2.0/24 10.1.3.7 10.1.4.10-10.1.4.40"),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="write the draft inventory here (default: stdout)"),
    merge: Path | None = typer.Option(
        None, "--merge", help="add what was found to this inventory, keeping what it says "
        "(written to --out, or back to this file)"),
    exclude: list[str] = typer.Option([], "--exclude", help="networks or addresses to leave "
                                      "alone (repeatable)"),
    max_hosts: int = typer.Option(1024, "--max-hosts", min=1, help="refuse larger scans"),
    allow_broadcast: bool = typer.Option(False, "--allow-broadcast",
                                         help="also probe broadcast and multicast addresses"),
    rate: float = typer.Option(50.0, "--rate", min=0.1,
                               help="new connections and datagrams per second, whole scan"),
    concurrency: int = typer.Option(16, "--concurrency", min=1, max=256,
                                    help="hosts scanned at a time (each one connection)"),
    connect_timeout: float = typer.Option(1.0, "--connect-timeout", min=0.05,
                                          help="seconds a TCP connect may take"),
    timeout: float = typer.Option(10.0, "--timeout", min=0.5,
                                  help="deadline of one identify run, seconds"),
    min_interval: float | None = typer.Option(
        None, "--min-interval", min=0.0,
        help="least seconds between two requests to a host (default: the collector's)"),
    port: list[str] = typer.Option([], "--port", help=SERVICE_HELP),
    snmp_community_env: list[str] = typer.Option(
        [], "--snmp-community-env", help="try the community in this variable (repeatable)"),
    snmp_community_file: list[str] = typer.Option(
        [], "--snmp-community-file", help="try the community in this file (repeatable)"),
    snmp_v3: list[str] = typer.Option(
        [], "--snmp-v3", help="try USER:AUTH_VAR[:PRIV_VAR] (SNMPv3, keys in variables)"),
    snmp_v3_auth_protocol: str = typer.Option("SHA", help="auth protocol of --snmp-v3"),
    snmp_v3_priv_protocol: str = typer.Option("AES-128", help="priv protocol of --snmp-v3"),
    ssh_user: str | None = typer.Option(None, "--ssh-user",
                                        help="SSH user the draft inventory names"),
    ssh_password_env: str | None = typer.Option(None, "--ssh-password-env",
                                                help="variable of that user's password"),
    ssh_password_file: str | None = typer.Option(None, "--ssh-password-file",
                                                 help="file of that user's password"),
    zone: list[str] = typer.Option([], "--zone", help="CIDR=ZONE[:SL] puts the hosts of a "
                                   "network in a zone (repeatable; first match wins; default "
                                   "one zone per /24)"),
    sl_t: int = typer.Option(2, "--sl-t", min=1, max=4, help="SL-T of zones without one"),
    site: str = typer.Option("discovered", "--site", help="site id of the draft"),
    as_json: bool = typer.Option(False, "--json", help="print what was found as JSON"),
) -> None:
    """Find devices politely (one connection per host, a global rate, read-only identity
    requests through each probe's own client) and write a draft inventory that
    `otaudit collector run` audits as it is. Ctrl-C stops early with what was found."""
    from otaudit.cli.progress import progress
    from otaudit.collector.discover import (
        SNMP_PORT,
        TCP_SERVICES,
        DiscoveryOptions,
        expand_targets,
    )
    from otaudit.collector.draft import ZoneRule, draft_inventory
    from otaudit.settings import get_settings

    hosts = expand_targets(targets, exclude, max_hosts=max_hosts,
                           allow_broadcast=allow_broadcast)
    services, snmp_port = _ports(port, dict(TCP_SERVICES), SNMP_PORT)
    rules = [ZoneRule.parse(z, sl_t) for z in zone]
    credentials = _snmp_credentials(snmp_community_env, snmp_community_file, snmp_v3,
                                     snmp_v3_auth_protocol, snmp_v3_priv_protocol)
    ssh = _ssh_credentials(ssh_user, ssh_password_env, ssh_password_file)
    existing = _read_merge(merge)
    options = DiscoveryOptions(
        hosts=tuple(hosts), tcp_services=services, snmp_port=snmp_port,
        snmp_credentials=tuple(credentials), rate=rate, concurrency=concurrency,
        connect_timeout=connect_timeout, probe_timeout=timeout,
        min_interval=(get_settings().min_request_interval if min_interval is None
                      else min_interval))
    with progress("hosts scanned", total=len(hosts), show=None if not as_json else False,
                  detail="found {task.fields[found]}") as steps:
        found = 0

        def on_host(result: Any) -> None:
            nonlocal found
            found += result.answered
            steps.advance(found=found)

        result = asyncio.run(_run(options, site, on_host))
    draft = draft_inventory(result, site=site, zone_rules=rules, default_sl=sl_t,
                            ssh_credentials=ssh)
    _write(result, draft, out=out, merge=merge, existing=existing, as_json=as_json,
           targets=targets)


async def _run(options: Any, site: str, on_host: Any) -> Any:
    from otaudit.collector.discover import discover as scan

    stop = stop_on_signals()
    return await scan(options, site=site, stop=stop, on_host=on_host)


def _ports(specs: list[str], services: dict[str, int], snmp: int) -> tuple[dict[str, int], int]:
    problems = []
    for spec in specs:
        name, _, number = spec.partition("=")
        name = name.strip().lower()
        try:
            value = int(number)
            if not 0 <= value <= 65535:
                raise ValueError
        except ValueError:
            problems.append(f"--port {spec!r}: expected SERVICE=PORT (PORT 0..65535)")
            continue
        if name == "snmp":
            snmp = value
        elif name in services:
            services[name] = value
        else:
            problems.append(f"--port {spec!r}: unknown service {name!r}")
    if problems:
        raise InputError("command line", problems)
    return {s: p for s, p in services.items() if p}, snmp


def _snmp_credentials(envs: list[str], files: list[str], v3: list[str], auth: str,
                      priv: str) -> list[dict[str, Any]]:
    from pydantic import ValidationError

    from otaudit.errors import pydantic_problems
    from otaudit.probes.snmp.options import SnmpOptions

    credentials: list[dict[str, Any]] = [
        {"version": "v2c", "community": {"env": e}} for e in envs]
    credentials += [{"version": "v2c", "community": {"file": f}} for f in files]
    for spec in v3:
        user, _, keys = spec.partition(":")
        auth_var, _, priv_var = keys.partition(":")
        if not user or not auth_var:
            raise InputError("--snmp-v3", [f"{spec!r}: expected USER:AUTH_VAR[:PRIV_VAR]"])
        credential: dict[str, Any] = {"version": "v3", "v3_user": user,
                                      "v3_auth_key": {"env": auth_var},
                                      "v3_auth_protocol": auth}
        if priv_var:
            credential |= {"v3_priv_key": {"env": priv_var}, "v3_priv_protocol": priv}
        credentials.append(credential)
    for credential in credentials:
        try:  # the draft carries them as written; they must be valid SNMP options
            normalised = SnmpOptions.model_validate(credential)
        except ValidationError as exc:
            raise InputError("SNMP credential", pydantic_problems(exc)) from None
        for key in ("v3_auth_protocol", "v3_priv_protocol"):
            if key in credential:
                credential[key] = getattr(normalised, key)
    return credentials


def _ssh_credentials(user: str | None, env: str | None, file: str | None) -> dict[str, Any]:
    if not user:
        if env or file:
            raise InputError("command line", ["--ssh-password-env/--ssh-password-file "
                                              "need --ssh-user"])
        return {}
    if bool(env) == bool(file):
        raise InputError("command line", ["--ssh-user needs exactly one of "
                                          "--ssh-password-env and --ssh-password-file"])
    return {"user": user, "password": {"env": env} if env else {"file": file}}


def _read_merge(merge: Path | None) -> str | None:
    if merge is None:
        return None
    try:
        return merge.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(merge, [f"cannot read: {exc}"]) from None


def _write(result: Any, draft: dict[str, Any], *, out: Path | None, merge: Path | None,
           existing: str | None, as_json: bool, targets: list[str]) -> None:
    from otaudit.collector.draft import dump_draft, merge_draft
    from otaudit.observation import utcnow

    partial = (f"PARTIAL: interrupted after {result.scanned} of {result.total} hosts\n"
               if result.interrupted else "")
    if existing is not None and merge is not None:
        merged = merge_draft(existing, draft, str(merge))
        text = merged.text
        summary = (f"merged into {merge}: {len(merged.assets_added)} assets, "
                   f"{len(merged.endpoints_added)} endpoints and {len(merged.zones_added)} "
                   f"zones added; nothing it said was changed")
        target = out or merge
    else:
        header = (f"{partial}Draft inventory written by `otaudit discover` on "
                  f"{utcnow().isoformat(timespec='seconds')} for {' '.join(targets)}.\n"
                  "Review the zones (SL-T) and the assets, then: otaudit inventory validate")
        text = dump_draft(draft, header)
        summary = f"draft inventory: {len(draft['assets'])} assets in {len(draft['zones'])} zones"
        target = out
    if target is not None:
        target.write_text(text, encoding="utf-8")
        summary += f" -> {target}"
    elif not as_json:
        sys.stdout.write(text)
    if as_json:
        sys.stdout.write(json.dumps({
            "scanned": result.scanned, "total": result.total, "interrupted": result.interrupted,
            "seconds": round(result.seconds, 2),
            "found": [{"host": h.host, "services": h.services,
                       "observations": {p: json.loads(o.model_dump_json())
                                        for p, o in h.observations.items()}}
                      for h in result.found]}, indent=2) + "\n")
    typer.echo(f"{partial}scanned {result.scanned} of {result.total} hosts in "
               f"{result.seconds:.1f} s: {len(result.found)} answered; {summary}", err=True)
