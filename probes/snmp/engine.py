"""Cheap SNMPv3 engines and one process-wide MIB view: MIB modules compiled once per process.

Every ``SnmpEngine()`` loads about ten bundled MIB modules. pysnmp's ``MibBuilder`` reads
and compiles each module's Python source on every load (twice, in fact: once in
``MibSource.read`` and again in ``runpy.run_path``), which was ~85 % of the ~55 ms CPU an
engine cost. ``CachedMibBuilder`` executes the same code objects, compiled once, in a
fresh namespace per builder, so every engine still gets its own MIB objects (its own
USM users, targets, counters): sessions share no agent state.

A single engine shared by all sessions was not chosen: pysnmp keys USM users and the
hlapi LCD cache by (user name, engine id), so two agents with one user name and different
keys (or one engine id) would contend for one table row, and ``close_dispatcher`` plus
the per-session datagram counter assume one engine per session. Only SNMPv3 needs an
engine; v1/v2c sessions use pysnmp's engine-less v1arch dispatcher (see ``client``).

The ``MibViewController`` that hlapi reads from ``cache["mibViewController"]`` (v1arch
dispatcher and v3arch engine alike, ``pysnmp.hlapi.varbinds``) only maps names and OIDs:
it holds no per-agent state, so ``mib_view()`` builds one per process, indexed once.
"""

from __future__ import annotations

import traceback
from functools import cache
from types import CodeType
from typing import Any

from pysnmp.entity.engine import SnmpEngine
from pysnmp.proto.rfc3412 import MsgAndPduDispatcher
from pysnmp.smi import builder, error, instrum, view

# (MIB source, module name) -> (code object, module path). Only found modules are
# cached: a module missing now may be compiled into a source directory later.
_CODE: dict[tuple[str, str], tuple[CodeType, str]] = {}


class CachedMibBuilder(builder.MibBuilder):
    """``MibBuilder`` whose ``load_module`` reuses compiled MIB code across builders."""

    def load_module(self, modName: str, **userCtx: Any) -> CachedMibBuilder:
        try:  # MibBuilder's private bookkeeping (pysnmp 7.1)
            paths_seen: set[str] = self._MibBuilder__modPathsSeen  # type: ignore[attr-defined]
            mods_seen: dict[str, str] = self._MibBuilder__modSeen  # type: ignore[attr-defined]
        except AttributeError:  # another pysnmp layout: its own, slower loader
            return super().load_module(modName, **userCtx)  # type: ignore[no-any-return]
        for source in self.get_mib_sources():
            key = (repr(source), modName)
            if key not in _CODE:
                try:
                    code, sfx = source.read(modName)
                except OSError:
                    continue
                _CODE[key] = (code, source.full_path(modName, sfx))
            code, path = _CODE[key]
            if path in paths_seen:
                break
            paths_seen.add(path)
            # The globals runpy.run_path gives a module (pysnmp's default path).
            namespace = {"__name__": "<run_path>", "__file__": path, "__cached__": None,
                         "__doc__": None, "__loader__": None, "__package__": "",
                         "__spec__": None, "mibBuilder": self, "userCtx": userCtx}
            try:
                exec(code, namespace)  # pysnmp's own bundled MIB module code
            except Exception as exc:
                paths_seen.discard(path)
                raise error.MibLoadError(f"MIB module '{path}' load error: "
                                         f"{traceback.format_exc()}") from exc
            mods_seen[modName] = path
            break
        if modName not in mods_seen:
            sources = ", ".join(str(s) for s in self.get_mib_sources())
            raise error.MibNotFoundError(
                f'MIB file "{modName}.py[co]" not found in search path ({sources})')
        return self


@cache
def mib_view() -> view.MibViewController:
    """The process-wide MIB view (name <-> OID lookups, no agent state) for every session."""
    return view.MibViewController(CachedMibBuilder())


def new_engine() -> SnmpEngine:
    """A fresh ``SnmpEngine`` (as ``SnmpEngine()``) whose MIB builder reuses compiled code.

    Its own builder holds its USM users, targets and counters; the view for making and
    unmaking varbinds is the shared ``mib_view()`` (hlapi's ``cache`` key, as SnmpEngine sets).
    """
    dispatcher = MsgAndPduDispatcher(instrum.MibInstrumController(CachedMibBuilder()))
    engine = SnmpEngine(msgAndPduDsp=dispatcher)
    engine.cache["mibViewController"] = mib_view()
    return engine
