"""Runs one probe against one target and always returns an Observation."""

from __future__ import annotations

import logging

from otaudit.observation import Observation, ProbeStatus, utcnow
from otaudit.probes.base import (
    ParseError,
    Probe,
    ProbeContext,
    ProbeError,
    ProbeTarget,
    failure_location,
    time_limit,
)
from otaudit.settings import DEFAULT_MIN_REQUEST_INTERVAL
from otaudit.text import device_text

log = logging.getLogger(__name__)


async def run_probe(
    probe: Probe,
    target: ProbeTarget,
    *,
    collector_id: str,
    site: str,
    deadline: float,
    op_timeout: float | None = None,
    min_interval: float = DEFAULT_MIN_REQUEST_INTERVAL,
) -> Observation:
    """Run ``probe`` within ``deadline`` seconds; map every failure to a status.

    Requests to the device are at least ``min_interval`` apart (``ctx.pace()``), whoever
    calls: the collector passes its configured interval, everything else gets the default.
    """
    ctx = ProbeContext(timeout=op_timeout or deadline, min_interval=min_interval)
    rec = ctx.recorder
    started = utcnow()
    status, reason = ProbeStatus.OK, None
    try:
        async with time_limit(deadline):
            await probe.collect(target, ctx)
    except ProbeError as exc:
        status, reason = exc.status, str(exc)
    except TimeoutError:
        status, reason = ProbeStatus.TIMEOUT, f"no complete answer within {deadline:g} s"
    except ConnectionRefusedError:
        status, reason = ProbeStatus.REFUSED, f"connection refused by {target.endpoint}"
    except ParseError as exc:
        status, reason = ProbeStatus.ERROR, f"malformed reply: {exc}"
    except OSError as exc:
        status, reason = ProbeStatus.ERROR, f"network error: {exc.strerror or exc}"
    except Exception as exc:  # a probe bug must fail this run only, never the collector
        # never the exception's text or traceback when the run held a secret: a library
        # may quote the value it refused (pyasn1 did, with a too-short SNMPv3 key)
        failure = ctx.describe_failure(exc)
        log.error("probe %s crashed on %s: %s%s", probe.name, target.endpoint, failure,
                  failure_location(exc))
        status, reason = ProbeStatus.ERROR, f"probe failure: {failure}"
    finished = utcnow()
    missing_reason = reason or "not reported by the device"
    for path in probe.facts:
        if path not in rec.facts:
            rec.unknown_fact(path, rec.unknown.get(path, missing_reason))
    evidence = [
        e.model_copy(update={"excerpt": ctx.redact(e.excerpt), "request": ctx.redact(e.request)})
        for e in rec.evidence
    ]
    return Observation(
        collector_id=collector_id,
        site=site,
        asset=target.asset,
        probe=probe.name,
        probe_version=probe.version,
        endpoint=target.endpoint,
        started_at=started,
        finished_at=finished,
        status=status,
        reason=device_text(ctx.redact(reason)) if reason else None,
        facts=rec.facts,
        unknown={k: ctx.redact(v) for k, v in rec.unknown.items()},
        evidence=evidence,
        errors=[ctx.redact(e) for e in rec.errors],
    )
