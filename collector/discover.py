"""Polite discovery: which devices answer on given networks, and what they are.

``otaudit discover`` starts from nothing but address ranges. Safety first:

- only the addresses given, minus ``exclude``, at most ``max_hosts``; network, broadcast
  and multicast addresses are refused unless ``allow_broadcast``;
- a host sees one connection at a time: its ports are tried one after another (a TCP
  connect without payload), then one identify run per open port of a supported protocol;
- ``concurrency`` hosts at a time, and a global ``rate`` of new connections and datagrams
  per second over the whole scan;
- an identify run is the probe's own ``identify`` (one harmless identity read) through its
  own client and guard, paced like the collector (``min_interval``);
- SNMP (UDP) is asked only with the credential references given, one after another;
- a stop request (Ctrl-C) starts no new work; what was found so far is the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from otaudit.errors import InputError
from otaudit.observation import AssetKind, AssetRef, Observation, ProbeStatus
from otaudit.probes import REGISTRY, probe_class
from otaudit.probes.base import IdentifyOnly, ProbeTarget
from otaudit.probes.runner import run_probe

# Services discovery looks for: TCP port of each protocol, and posture-only ports.
TCP_SERVICES: dict[str, int] = {"modbus": 502, "s7": 102, "ssh": 22, "enip": 44818,
                                "opcua": 4840, "telnet": 23, "http": 80, "https": 443}
POSTURE_SERVICES = frozenset({"telnet", "http", "https"})
SNMP_PORT = 161
KIND_PRIORITY = (AssetKind.PLC, AssetKind.SWITCH, AssetKind.HMI)
MAX_HOSTS = 1024


@dataclass(frozen=True)
class DiscoveryOptions:
    hosts: tuple[str, ...]
    tcp_services: Mapping[str, int] = field(default_factory=lambda: dict(TCP_SERVICES))
    snmp_port: int = SNMP_PORT
    snmp_credentials: tuple[dict[str, Any], ...] = ()  # SnmpOptions fields, tried in order
    rate: float = 50.0  # new connections + datagrams per second, whole scan
    concurrency: int = 16  # hosts at a time
    connect_timeout: float = 1.0
    probe_timeout: float = 10.0
    min_interval: float = 0.05
    snmp_request_timeout: float = 1.0


@dataclass
class HostFound:
    """What one address answered: open services and an identify observation per protocol."""

    host: str
    services: dict[str, int] = field(default_factory=dict)  # service -> port
    observations: dict[str, Observation] = field(default_factory=dict)  # protocol -> obs
    snmp_credential: dict[str, Any] | None = None

    @property
    def answered(self) -> bool:
        return bool(self.services or self.snmp_credential)

    def fact(self, path: str) -> Any:
        for obs in self.observations.values():
            if path in obs.facts:
                return obs.facts[path].value
        return None


@dataclass
class DiscoveryResult:
    found: list[HostFound]
    scanned: int
    total: int
    interrupted: bool = False
    seconds: float = 0.0


# ---- which addresses ------------------------------------------------------------------


def expand_targets(specs: Iterable[str], exclude: Iterable[str] = (), *,
                   max_hosts: int = MAX_HOSTS, allow_broadcast: bool = False) -> list[str]:
    """Addresses of ``specs`` (``10.1.2.0/24``, ``10.1.2.7``, ``10.1.2.10-10.1.2.40``) minus
    ``exclude``; InputError for bad specs, broadcast/multicast, or more than ``max_hosts``."""
    problems: list[str] = []
    excluded = [_network(e, problems) for e in exclude]
    hosts: dict[str, None] = {}
    for spec in specs:
        for address in _addresses(spec, problems, allow_broadcast):
            if not any(address in net for net in excluded if net is not None):
                hosts[str(address)] = None
            if len(hosts) > max_hosts:
                raise InputError("command line", [
                    f"more than {max_hosts} addresses to scan; narrow the ranges, --exclude "
                    f"some, or raise --max-hosts"])
    if problems:
        raise InputError("command line", problems)
    return list(hosts)


def _network(spec: str, problems: list[str]) -> Any:
    try:
        return ipaddress.ip_network(spec.strip(), strict=False)
    except ValueError:
        problems.append(f"{spec!r} is not an address or network (e.g. 10.1.2.0/24)")
        return None


def _addresses(spec: str, problems: list[str], allow_broadcast: bool) -> Iterable[Any]:
    spec = spec.strip()
    if "-" in spec and "/" not in spec:
        first_text, _, last_text = spec.partition("-")
        try:
            first = ipaddress.ip_address(first_text.strip())
            last = ipaddress.ip_address(last_text.strip())
        except ValueError:
            problems.append(f"{spec!r} is not an address range (e.g. 10.1.2.10-10.1.2.40)")
            return
        if first.version != last.version or last < first:
            problems.append(f"{spec!r}: the range must go upwards within one IP version")
            return
        candidates: Iterable[Any] = (first + i for i in range(int(last) - int(first) + 1))
        network = None
    else:
        network = _network(spec, problems)
        if network is None:
            return
        candidates = network.hosts() if network.num_addresses > 2 else iter(network)
    for address in candidates:
        special = address.is_multicast or address.is_unspecified or (
            network is not None and network.num_addresses > 2
            and address == network.broadcast_address) or str(address) == "255.255.255.255"
        if special and not allow_broadcast:
            problems.append(f"{address} is a broadcast or multicast address (not probed "
                            "unless --allow-broadcast)")
            continue
        yield address


# ---- pacing ---------------------------------------------------------------------------


class RateLimiter:
    """At most ``rate`` acquisitions per second over the whole scan: two acquisitions
    return at least ``1 / rate`` apart, counted from when the earlier one really returned
    (a late wake-up never lets the next one follow closer)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            wait = self._next - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next = time.monotonic() + self.interval


# ---- the scan -------------------------------------------------------------------------


async def discover(options: DiscoveryOptions, *, site: str = "discovered",
                   stop: asyncio.Event | None = None,
                   on_host: Callable[[HostFound], None] | None = None) -> DiscoveryResult:
    """Scan every host of ``options``; ``stop`` ends the scan early (partial result)."""
    stop = stop or asyncio.Event()
    limiter = RateLimiter(options.rate)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for host in options.hosts:
        queue.put_nowait(host)
    found: list[HostFound] = []
    scanned = 0
    started = time.monotonic()

    async def worker() -> None:
        nonlocal scanned
        while not stop.is_set():
            try:
                host = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            result = await _scan_host(host, options, limiter, site, stop)
            scanned += 1
            if result.answered:
                found.append(result)
            if on_host:
                on_host(result)

    workers = [asyncio.create_task(worker())
               for _ in range(max(1, min(options.concurrency, len(options.hosts))))]
    await asyncio.gather(*workers)
    order = {h: i for i, h in enumerate(options.hosts)}
    found.sort(key=lambda r: order[r.host])
    return DiscoveryResult(found, scanned, len(options.hosts), interrupted=stop.is_set(),
                           seconds=time.monotonic() - started)


async def _scan_host(host: str, options: DiscoveryOptions, limiter: RateLimiter, site: str,
                     stop: asyncio.Event) -> HostFound:
    """One host, one connection at a time: TCP ports, then identify runs, then SNMP."""
    result = HostFound(host)
    last = 0.0

    async def polite() -> None:  # one operation after another on this host, paced
        nonlocal last
        wait = last + options.min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await limiter.acquire()
        last = time.monotonic()

    for service, port in options.tcp_services.items():
        if stop.is_set():
            return result
        await polite()
        if await _tcp_open(host, port, options.connect_timeout):
            result.services[service] = port
        last = time.monotonic()
    for service, port in result.services.items():
        if service in POSTURE_SERVICES or service not in REGISTRY or stop.is_set():
            continue
        await polite()
        result.observations[service] = await _identify(service, host, port, {}, options,
                                                       site)
        last = time.monotonic()
    if "snmp" in REGISTRY:
        for credential in options.snmp_credentials:
            if stop.is_set():
                break
            await polite()
            obs = await _identify("snmp", host, options.snmp_port, {
                "request_timeout": options.snmp_request_timeout, "retries": 0, **credential},
                options, site)
            last = time.monotonic()
            if obs.status is ProbeStatus.OK:
                result.observations["snmp"] = obs
                result.services["snmp"] = options.snmp_port
                result.snmp_credential = credential
                break
    return result


async def _tcp_open(host: str, port: int, timeout: float) -> bool:
    """A TCP connect without payload: True when it was accepted (then closed at once)."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _identify(protocol: str, host: str, port: int, fields: dict[str, Any],
                    options: DiscoveryOptions, site: str) -> Observation:
    cls = probe_class(protocol)
    probe = cls()
    target = ProbeTarget(asset=AssetRef(id=host, kind=cls.default_kind, zone="discovery"),
                         host=host, port=port, options=cls.Options.model_validate(fields))
    return await run_probe(IdentifyOnly(probe), target, collector_id="discover", site=site,
                           deadline=options.probe_timeout, min_interval=options.min_interval)
