"""The politeness check catches an impolite client and ignores what is not a request."""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

from otaudit.simulators.fleet import Fleet, generate_layout
from otaudit.simulators.fleet.politeness import check_politeness, starts_operation


def write_logs(folder: Path, devices: list[dict], records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "devices-w0.jsonl").write_text("".join(json.dumps(d) + "\n" for d in devices))
    (folder / "requests-w0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def device(name: str, protocol: str, concurrent: int = 1, runs: str = "profile") -> dict:
    return {"device": name, "protocol": protocol, "variant": "v", "runs": runs,
            "connections": 3, "max_concurrent": concurrent, "requests": 0}


def request(name: str, protocol: str, at: float, kind: str = "fc43/14", **detail) -> dict:
    return {"device": name, "protocol": protocol, "at": at, "connection": 1, "peer": "",
            "kind": kind, "detail": detail}


def test_flags_crowding_and_hurry_but_not_handshakes(tmp_path: Path) -> None:
    records = [
        request("plc-1", "modbus", 0.0), request("plc-1", "modbus", 0.001),  # hurried
        request("plc-2", "s7", 0.0, "cotp_connect"), request("plc-2", "s7", 0.001,
                                                             "setup_communication"),
        request("plc-2", "s7", 0.06, "read_szl"), request("plc-2", "s7", 0.12, "read_szl"),
        request("hmi-1", "ssh", 0.0, "exec"), request("hmi-1", "ssh", 0.002, "exec"),
        request("sw-1", "snmp", 0.0, "GET", version="v3", user="", varbinds=0),
        request("sw-1", "snmp", 0.001, "GET", version="v3", user="ro", varbinds=6),
        request("sw-1", "snmp", 0.06, "GETBULK", version="v3", user="ro", varbinds=1),
    ]
    devices = [device("plc-1", "modbus"), device("plc-2", "s7", concurrent=2),
               device("hmi-1", "ssh"), device("sw-1", "snmp", concurrent=4)]
    report = check_politeness(write_logs(tmp_path, devices, records), interval=0.05)
    assert [d.device for d in report.hurried] == ["plc-1", "hmi-1"]
    assert [d.device for d in report.crowded] == ["plc-2"]  # UDP "connections" are ports
    assert not report.ok and "VIOLATED" in report.summary()
    checks = {d.device: d for d in report.devices}
    assert checks["plc-2"].requests == 3 and checks["sw-1"].requests == 2  # set-ups: one each
    assert not starts_operation(request("x", "ssh", 0, "auth", username="auditor"), None)


def test_a_late_stamp_is_made_up_for_by_the_gap_before(tmp_path: Path) -> None:
    stamps = {"late": [0.0, 0.05, 1.45, 1.46, 1.51],  # 1.45 stamped ~1.3 s late
              "early": [0.0, 0.05, 0.1, 0.11, 0.16]}  # 0.11 sent 10 ms after 0.1
    records = [request(name, "s7", at, "read_szl") for name, ats in stamps.items()
               for at in ats]
    report = check_politeness(
        write_logs(tmp_path, [device(n, "s7") for n in stamps], records), interval=0.05)
    assert [d.device for d in report.hurried] == ["early"]
    assert min(report.gaps("s7")) < 0.011


def _modbus_read_device_id(transaction: int) -> bytes:
    pdu = bytes([0x2B, 0x0E, 0x01, 0x00])
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, 1) + pdu


def test_an_unpaced_client_fails(tmp_path: Path) -> None:
    layout = generate_layout(1, seed=1, port_mode="any", subnet=205)
    spec = layout.devices[0]
    assert spec.protocol == "modbus"
    fleet = Fleet(layout, tmp_path / "plant", workers=1).start()
    try:
        with socket.create_connection((spec.host, spec.port), timeout=5) as sock:
            for transaction, pause in enumerate([0.0, 0.0, 0.08, 0.08], start=1):
                time.sleep(pause)
                sock.sendall(_modbus_read_device_id(transaction))
                sock.recv(1024)
    finally:
        fleet.stop()
    report = check_politeness(fleet.log_dir, interval=0.05)
    (check,) = report.devices
    assert check.requests == 4 and check.max_concurrent == 1
    assert check.min_gap is not None and check.min_gap < 0.025  # the back-to-back ones
    assert all(gap >= 0.07 for gap in check.gaps[-2:])  # then paced: 80 ms apart
    assert report.hurried == [check] and not report.ok


def test_a_hurried_gap_names_the_backlog_its_stamp_came_in(tmp_path: Path) -> None:
    """Diagnostic only: the verdict stays VIOLATED, the summary says the earlier stamp was
    one of many its worker took at once (a late stamp), or says nothing when it was not."""
    batch = [request(f"plc-{i}", "modbus", 1.0 + i * 0.0001) for i in range(2, 8)]
    records = [request("plc-1", "modbus", 1.0), request("plc-1", "modbus", 1.02), *batch,
               request("plc-9", "modbus", 5.0), request("plc-9", "modbus", 5.02)]
    names = ["plc-1", "plc-9"] + [f"plc-{i}" for i in range(2, 8)]
    report = check_politeness(write_logs(tmp_path, [device(n, "modbus") for n in names],
                                         records), interval=0.05)
    checks = {d.device: d for d in report.hurried}
    assert set(checks) == {"plc-1", "plc-9"} and not report.ok
    assert checks["plc-1"].backlog == 7 and checks["plc-9"].backlog == 1
    assert "one of 7 its worker took within 1 ms" in report.summary()
    assert report.summary().count("a backlog") == 1
