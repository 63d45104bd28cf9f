"""Starts a plant layout in worker processes and writes its inventory.

Devices are dealt to the workers protocol by protocol, so every worker (one per core
by default) serves the same mix. ``Fleet.stop`` sends SIGTERM to every worker, waits
for it to release its ports and dump its request logs, and kills what is left after
the timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from otaudit.simulators.fleet.layout import HIGH_PORTS, OFFLINE, DeviceSpec, PlantLayout

WORKER_MODULE = "otaudit.simulators.fleet.worker"
KNOWN_HOSTS_ENV = "OTAUDIT_SSH_KNOWN_HOSTS"  # read by the SSH probe (its TOFU store)


class FleetError(RuntimeError):
    pass


def deal(devices: list[DeviceSpec], workers: int) -> list[list[DeviceSpec]]:
    """Split devices over ``workers`` so that each gets its share of every protocol."""
    shares: list[list[DeviceSpec]] = [[] for _ in range(workers)]
    turn = 0
    for protocol in sorted({d.protocol for d in devices}):
        for device in (d for d in devices if d.protocol == protocol):
            shares[turn % workers].append(device)
            turn += 1
    return shares


class Fleet:
    """A running plant: ``with Fleet(layout, out_dir) as fleet: ...``."""

    def __init__(self, layout: PlantLayout, out_dir: Path, *, workers: int | None = None,
                 python: str = sys.executable, start_timeout: float = 600.0) -> None:
        self.layout = layout
        self.out_dir = Path(out_dir)
        self.log_dir = self.out_dir / "requests"
        self.workers = max(1, min(workers or os.cpu_count() or 1, len(layout.devices)))
        self.python = python
        self.start_timeout = start_timeout
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ready_seconds: float | None = None
        self._buffers: dict[int, bytes] = {}
        for device in layout.devices:
            if device.runs == OFFLINE and device.port == 0:
                device.port = HIGH_PORTS[device.protocol]  # nothing listens there

    # -- lifecycle -----------------------------------------------------------------
    def start(self, on_started: Callable[[], None] | None = None) -> Fleet:
        """Start the workers; return once every device listens (``on_started`` per device)."""
        spec_dir = self.out_dir / "workers"
        for folder in (spec_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for stale in self.log_dir.glob("*.jsonl"):
            stale.unlink()
        started = time.monotonic()
        by_id = {d.id: d for d in self.layout.devices}
        for k, share in enumerate(deal(self.layout.devices, self.workers)):
            spec_path = spec_dir / f"worker-{k}.json"
            spec_path.write_text(json.dumps({
                "worker": k, "log_dir": str(self.log_dir),
                "key_root": str(self.out_dir / "hostkeys"),
                "devices": [d.to_dict() for d in share]}))
            err = open(spec_dir / f"worker-{k}.log", "wb")  # noqa: SIM115 (child owns it)
            try:
                proc = subprocess.Popen([self.python, "-m", WORKER_MODULE, str(spec_path)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=err)
            finally:
                err.close()
            self.procs.append(proc)
        try:
            self._await_ready(by_id, on_started or (lambda: None))
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        return self

    def _await_ready(self, by_id: dict[str, DeviceSpec], on_started: Callable[[], None]
                     ) -> None:
        deadline = time.monotonic() + self.start_timeout
        waiting = {p.pid for p in self.procs}
        with selectors.DefaultSelector() as sel:
            for proc in self.procs:
                assert proc.stdout is not None
                sel.register(proc.stdout, selectors.EVENT_READ, proc)
            while waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FleetError(f"plant not ready within {self.start_timeout:g} s")
                for key, _ in sel.select(timeout=min(left, 1.0)):
                    proc = key.data
                    for event in self._read_events(proc):
                        kind = event.get("event")
                        if kind == "started":
                            by_id[event["id"]].port = int(event["port"])
                            on_started()
                        elif kind == "ready":
                            waiting.discard(proc.pid)
                            sel.unregister(key.fileobj)
                            break
                        elif kind == "failed":
                            raise FleetError(f"worker {proc.pid}: {event.get('error')}")
                for proc in self.procs:
                    if proc.pid in waiting and proc.poll() is not None:
                        raise FleetError(f"worker {proc.pid} exited with {proc.returncode}; "
                                         f"see {self.out_dir / 'workers'}")

    def _read_events(self, proc: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
        assert proc.stdout is not None
        chunk = os.read(proc.stdout.fileno(), 65536)
        data = self._buffers.get(proc.pid, b"") + chunk
        *lines, rest = data.split(b"\n")
        self._buffers[proc.pid] = rest
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every worker, wait until all ended (their logs are then on disk)."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    def __enter__(self) -> Fleet:
        return self.start() if not self.procs else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- outputs ------------------------------------------------------------------
    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def inventory(self) -> dict[str, Any]:
        return self.layout.inventory()

    @property
    def known_hosts(self) -> Path:
        """Where a collector should pin this plant's SSH host keys (they live in
        ``hostkeys/`` here, so another plant folder means other keys)."""
        return self.out_dir / "known_hosts"

    def env(self) -> dict[str, str]:
        """Variables to export for a collector: the credentials the inventory refers to
        and the SSH known-hosts file of this plant."""
        env = self.layout.env()
        if any(d.protocol == "ssh" for d in self.layout.devices):
            env[KNOWN_HOSTS_ENV] = str(self.known_hosts.resolve())
        return env

    def write_outputs(self) -> dict[str, Path]:
        """``inventory.yaml``, ``plant.env`` (export lines) and ``plant.json`` (state)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        inventory = self.out_dir / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(self.inventory(), sort_keys=False))
        env_file = self.out_dir / "plant.env"
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in self.env().items()))
        state = self.out_dir / "plant.json"
        state.write_text(json.dumps({
            "site": self.layout.site, "seed": self.layout.seed,
            "devices": len(self.layout.devices), "workers": self.pids,
            "launcher": os.getpid(), "inventory": str(inventory),
            "request_logs": str(self.log_dir), "variants": self.layout.by_variant(),
            "endpoints": {d.id: f"{d.protocol}://{d.host}:{d.port}" for d in self.layout.devices},
        }, indent=1))
        return {"inventory": inventory, "env": env_file, "state": state}
