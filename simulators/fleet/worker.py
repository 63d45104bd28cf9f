"""One worker process of the plant: runs its share of devices in one event loop.

``python -m otaudit.simulators.fleet.worker SPEC.json`` reads the devices to run,
starts them and reports each bound port as a JSON line on stdout, then
``{"event": "ready"}``. It stops on SIGTERM/SIGINT or when its stdin closes (the
launcher is gone), and dumps every device's request log to the log folder:
``requests-wK.jsonl`` (one line per request, with the device id) and
``devices-wK.jsonl`` (per device: connections, peak concurrent connections, requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from otaudit.simulators import create_simulator
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.fleet.layout import OFFLINE, PROFILE, DeviceSpec
from otaudit.simulators.fleet.standins import stand_in

STOP_TIMEOUT = 10.0


def build_device(spec: DeviceSpec, port: int, key_root: Path | None) -> SimulatedDevice:
    """The simulator (or stand-in) of one device spec, not started."""
    if spec.runs == PROFILE:
        options = dict(spec.sim_options)
        if spec.protocol == "ssh" and key_root is not None:
            options["host_key_dir"] = str(key_root / spec.id)  # keys survive restarts
        return create_simulator(spec.protocol, spec.profile, host=spec.host, port=port,
                                **options)
    return stand_in(spec.runs, spec.protocol, spec.transport, spec.host, port, spec.index)


def _emit(event: str, **data: Any) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):  # the launcher may be gone
        sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
        sys.stdout.flush()


async def start_device(spec: DeviceSpec, key_root: Path | None) -> SimulatedDevice:
    """Start on the requested port; when it is taken, on any free port (reported)."""
    device = build_device(spec, spec.port, key_root)
    try:
        await device.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or spec.port == 0:
            raise
        with contextlib.suppress(Exception):
            await device.stop()
        device = build_device(spec, 0, key_root)
        await device.start()
    return device


def dump_logs(devices: dict[str, tuple[DeviceSpec, SimulatedDevice]], log_dir: Path,
              worker: int) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"requests-w{worker}.jsonl", "w", encoding="utf-8") as requests, \
            open(log_dir / f"devices-w{worker}.jsonl", "w", encoding="utf-8") as summary:
        for device_id, (spec, device) in devices.items():
            log = device.log
            records = list(log.records)
            for record in records:
                line = {"device": device_id, "protocol": spec.protocol, **asdict(record)}
                requests.write(json.dumps(line, default=str) + "\n")
            summary.write(json.dumps({
                "device": device_id, "protocol": spec.protocol, "variant": spec.variant,
                "runs": spec.runs,
                "host": device.host, "port": device.port, "connections": log.connections,
                "max_concurrent": log.max_concurrent, "requests": len(records)}) + "\n")


async def run_worker(specs: list[DeviceSpec], log_dir: Path, worker: int,
                     key_root: Path | None, *, watch_stdin: bool = False) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if watch_stdin:  # stdin EOF: the launcher went away
        loop.add_reader(sys.stdin.fileno(), _on_stdin, stop)
    started = time.monotonic()
    devices: dict[str, tuple[DeviceSpec, SimulatedDevice]] = {}
    code = 0
    try:
        for spec in specs:
            if stop.is_set():
                break
            if spec.runs == OFFLINE:
                continue
            device = await start_device(spec, key_root)
            devices[spec.id] = (spec, device)
            _emit("started", id=spec.id, port=device.port)
        if not stop.is_set():
            _emit("ready", devices=len(devices), seconds=round(time.monotonic() - started, 2))
            await stop.wait()
    except Exception as exc:  # report, then stop what did start
        _emit("failed", error=f"{type(exc).__name__}: {exc}")
        code = 1
    finally:
        await _stop_all([d for _, d in devices.values()])
        dump_logs(devices, log_dir, worker)
        _emit("stopped", devices=len(devices))
    return code


def _on_stdin(stop: asyncio.Event) -> None:
    try:
        data = sys.stdin.buffer.read1(4096)  # type: ignore[attr-defined]
    except OSError:
        data = b""
    if not data:
        asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
        stop.set()


async def _stop_all(devices: list[SimulatedDevice]) -> None:
    async def stop_one(device: SimulatedDevice) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(device.stop(), STOP_TIMEOUT)

    await asyncio.gather(*(stop_one(d) for d in devices))


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.stderr.write("usage: python -m otaudit.simulators.fleet.worker SPEC.json\n")
        return 2
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    specs = [DeviceSpec.from_dict(d) for d in spec["devices"]]
    key_root = Path(spec["key_root"]) if spec.get("key_root") else None
    return asyncio.run(run_worker(specs, Path(spec["log_dir"]), int(spec["worker"]), key_root,
                                  watch_stdin=True))


if __name__ == "__main__":
    sys.exit(main())
