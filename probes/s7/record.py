"""Record a live S7 CPU as a simulator profile (``otaudit sim s7 --record HOST``).

The recording is the contract with ``simulators/s7``: a profile YAML holding only
``rack``/``slot`` and ``raw_szl`` (``"0xIIII/0xXXXX": hex of the partial list``) for
every SZL the probe reads. It goes through the probe's own client and read-only guard,
paced like a probe run. An SZL the CPU refuses is left out, so the replay refuses it
too (0xD402); nothing is invented.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from otaudit.probes.base import ProbeContext, ProbeError, ProbeTarget
from otaudit.probes.s7.client import ReadOnlyS7Client, S7ClientError, SzlRefused
from otaudit.probes.s7.probe import SZL_READS, S7Options, connect_client

HEX_LINE = 64  # hex digits per line in the YAML


async def record(target: ProbeTarget, ctx: ProbeContext, out: Path) -> list[Path]:
    """Read the SZLs the probe reads and write ``out`` (a profile YAML); return the files."""
    options = target.options
    if not isinstance(options, S7Options):
        raise ProbeError(f"s7 recorder got {type(options).__name__} options")
    client: ReadOnlyS7Client = await connect_client(target, options, ctx)
    raw_szl: dict[str, str] = {}
    notes: list[str] = []
    try:
        for szl_id, index in SZL_READS:
            await ctx.pace()
            key = f"0x{szl_id:04X}/0x{index:04X}"
            try:
                raw = await client.read_szl(szl_id, index)
            except SzlRefused as exc:
                notes.append(f"SZL {key} refused by the CPU ({exc}): replayed as unavailable")
                continue
            except S7ClientError as exc:
                raise ProbeError(f"read SZL {key}: {exc}") from None
            raw_szl[key] = _wrap(raw.hex())
    finally:
        await client.disconnect()
    session = client.session
    assert session is not None
    profile = {"name": f"recording-{target.host}",
               "description": f"recording of the S7 CPU at {target.endpoint}"
                              + ("; " + "; ".join(notes) if notes else ""),
               "rack": session.rack, "slot": session.slot, "raw_szl": raw_szl}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("# otaudit S7 recording: replay with `otaudit sim s7 --profile "
                   f"{out.name}`\n" + yaml.safe_dump(profile, sort_keys=False, width=100))
    tmp.replace(out)
    return [out]


def _wrap(text: str) -> str:
    return "\n".join(text[i:i + HEX_LINE] for i in range(0, len(text), HEX_LINE))
