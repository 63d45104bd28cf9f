"""SNMPv3 engines shared by sessions, one process-wide MIB view, MIB code compiled once.

Every ``SnmpEngine()`` loads about ten bundled MIB modules. pysnmp's ``MibBuilder`` reads
and compiles each module's Python source on every load (twice, in fact: once in
``MibSource.read`` and again in ``runpy.run_path``), which was ~85 % of the ~55 ms CPU an
engine cost. ``CachedMibBuilder`` executes the same code objects, compiled once, in a
fresh namespace per builder, so every engine still gets its own MIB objects (its own
USM users, targets, counters): sessions share no agent state.

Sessions share one engine per event loop and SNMPv3 credential (``SharedEngines``): an
engine with its MIB objects is ~0.5-0.9 MiB, and a pass over a plant had ~20 of them
alive at once, one per v3 session in flight. pysnmp keys USM users and the hlapi LCD cache
by (user name, engine id), so two agents with one user name and different keys (or one
engine id) would contend for one table row: sessions with different credentials never
share an engine. What stays per agent within a shared engine: each session has its own
transport domain (``udp.DOMAIN_NAME + (n,)``), hence its own UDP socket, datagram counter,
target address rows and pysnmp's engine-id cache entry (keyed by domain and address). The
one per-agent state a shared engine keys by the agent's engine id alone is USM's timeline
(boots/time): agents cloned with one engine id but different clocks would see a
notInTimeWindow on the shared engine, so the client then asks once more on a private
engine (``new_engine``), as every session did before. Only SNMPv3 needs an engine; v1/v2c
sessions use pysnmp's engine-less v1arch dispatcher (see ``client``).

The ``MibViewController`` that hlapi reads from ``cache["mibViewController"]`` (v1arch
dispatcher and v3arch engine alike, ``pysnmp.hlapi.varbinds``) only maps names and OIDs:
it holds no per-agent state, so ``mib_view()`` builds one per process, indexed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import traceback
import weakref
from dataclasses import dataclass, field
from functools import cache
from types import CodeType
from typing import Any

from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
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


@dataclass(eq=False)
class SharedEngine:
    """One engine for the sessions of one credential, on the loop's shared dispatcher
    under its own receive id."""

    key: object
    engine: SnmpEngine
    recv_id: tuple[str, int]
    users: int = 0


@dataclass(eq=False)
class _LoopState:
    carrier: AsyncioDispatcher
    routes: dict[tuple[int, ...], object] = field(default_factory=dict)
    engines: dict[object, SharedEngine] = field(default_factory=dict)


class SharedEngines:
    """Per event loop: one transport dispatcher for every SNMP session (each session
    registers its own socket on it under its own transport domain, and ``route`` says
    which of its apps gets what arrives there), and credential -> the engine its sessions
    share while any uses it. The last ``release`` of an engine takes it off the dispatcher.
    A loop that ends drops its state with it (weak keys).
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary())
        self._ids = itertools.count(1)

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._by_loop.get(loop)
        if state is None:
            carrier = AsyncioDispatcher(loop=loop)
            state = self._by_loop[loop] = _LoopState(carrier)
            routes = state.routes
            carrier.register_routing_callback(lambda domain, *_: routes.get(domain))
        return state

    def carrier(self) -> AsyncioDispatcher:
        return self._state().carrier

    def route(self, domain: tuple[int, ...], recv_id: object) -> None:
        """Datagrams arriving on ``domain`` go to the app registered as ``recv_id``."""
        self._state().routes[domain] = recv_id

    def unroute(self, domain: tuple[int, ...]) -> None:
        self._state().routes.pop(domain, None)

    def acquire(self, key: object) -> SharedEngine:
        state = self._state()
        shared = state.engines.get(key)
        if shared is None:
            engine, recv_id = new_engine(), ("v3", next(self._ids))
            engine.register_transport_dispatcher(state.carrier, recv_id)
            shared = state.engines[key] = SharedEngine(key, engine, recv_id)
        shared.users += 1
        return shared

    def release(self, shared: SharedEngine) -> None:
        shared.users -= 1
        if shared.users > 0:
            return
        state = self._state()
        if state.engines.get(shared.key) is shared:
            del state.engines[shared.key]
        engine, carrier = shared.engine, state.carrier
        # only this engine's callbacks: pysnmp's unregister_transport_dispatcher would drop
        # every timer callback of the shared dispatcher
        carrier.unregister_recv_callback(shared.recv_id)
        tick = getattr(engine, "_SnmpEngine__receive_timer_tick_callback", None)
        if tick is not None:
            with contextlib.suppress(ValueError):
                carrier.unregister_timer_callback(tick)
        engine.transport_dispatcher = None

    def alive(self) -> int:
        """Engines open on the running loop (for tests)."""
        return len(self._state().engines)


shared_engines = SharedEngines()
