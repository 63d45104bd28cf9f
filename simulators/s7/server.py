"""python-snap7's S7 server, serving the SZL records of one profile and logging every PDU.

Subclasses ``snap7.server.Server`` (python-snap7 3.3; private hooks, hence the pin):
``_get_szl_data``/``_handle_szl`` answer from the profile, ``_process_request`` records
each PDU, ``_handle_client`` checks the called TSAP (rack/slot) and can refuse classic
access. Measured pitfalls handled here (docs/protocol-stack.md §2): bind the given
loopback address (not 0.0.0.0), listen backlog 128 (not 5), no SO_REUSEPORT (two
simulators must never share a port), and ``stop`` closes client sockets so it returns
at once instead of waiting out the 5 s receive deadline of every client thread.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Any

from snap7.error import S7ConnectionError
from snap7.server import CPUState, Server, ServerISOConnection, ServerState

from otaudit.simulators.base import RequestLog
from otaudit.simulators.s7.profile import S7Profile
from otaudit.simulators.s7.szl import szl_payload

JOB, USERDATA = 0x01, 0x07
JOB_FUNCTIONS = {
    0xF0: "setup_communication", 0x04: "read_var", 0x05: "write_var",
    0x1A: "request_download", 0x1B: "download_block", 0x1C: "download_ended",
    0x1D: "start_upload", 0x1E: "upload", 0x1F: "end_upload",
    0x28: "plc_control", 0x29: "plc_stop",
}
USERDATA_GROUPS = {1: "programmer", 2: "cyclic_data", 3: "block_functions", 4: "szl",
                   5: "security", 7: "time"}
NOT_AVAILABLE = 0xD402  # "information function unavailable", as snap7's real data banks answer
COTP_DR, DR_ADDRESS_UNKNOWN, DR_REFUSED = 0x80, 0x03, 0x88


def describe_pdu(pdu: bytes) -> tuple[str, dict[str, Any]]:
    """Log kind and details of one S7 PDU (``read_szl``, ``write_var``, ...)."""
    if len(pdu) < 10 or pdu[0] != 0x32:
        return "malformed", {"bytes": pdu[:32].hex()}
    rosctr, param_len = pdu[1], struct.unpack(">H", pdu[6:8])[0]
    params = pdu[10:10 + param_len] if rosctr != 0x03 else pdu[12:12 + param_len]
    if rosctr == JOB and params:
        name = JOB_FUNCTIONS.get(params[0], "job")
        return name, {"rosctr": rosctr, "function": params[0]}
    if rosctr == USERDATA and len(params) >= 8:
        group, subfunction = params[5] & 0x0F, params[6]
        detail: dict[str, Any] = {"rosctr": rosctr, "group": group, "subfunction": subfunction}
        data = pdu[10 + param_len:]
        if group == 4 and subfunction == 1:
            if len(data) >= 8:
                detail["szl_id"], detail["index"] = struct.unpack(">HH", data[4:8])
                return "read_szl", detail
            return "read_szl_continue", detail
        return f"userdata_{USERDATA_GROUPS.get(group, group)}", detail
    return "pdu", {"rosctr": rosctr}


class ProfileServer(Server):
    """One simulated CPU: answers from ``profile`` and writes to ``log``."""

    def __init__(self, profile: S7Profile, log: RequestLog) -> None:
        super().__init__(log=False)
        self.profile = profile
        self.request_log = log
        self._sockets: set[socket.socket] = set()
        self._connections: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------
    def start_on(self, host: str, port: int) -> int:
        """Bind ``host:port`` (0 = any free port) and serve; return the bound port."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.server_socket, self.host = sock, host
        self.port = sock.getsockname()[1]
        self.running, self.state = True, ServerState.RUNNING
        self.cpu_state = CPUState.RUN if self.profile.cpu_mode == "RUN" else CPUState.STOP
        self.server_thread = threading.Thread(target=self._server_loop, daemon=True,
                                              name=f"s7sim-{self.port}")
        self.server_thread.start()
        return self.port

    def stop(self) -> int:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:  # wake client threads blocked in recv
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return super().stop()

    @staticmethod
    def _event_sender(address: tuple[str, int]) -> int:
        try:
            return int.from_bytes(socket.inet_aton(address[0]), "big")
        except OSError:  # IPv6 peer (the base class assumes IPv4)
            return 0

    # -- connection ----------------------------------------------------------------------
    def _handle_client(self, client_socket: socket.socket, address: tuple[str, int]) -> None:
        peer = f"{address[0]}:{address[1]}"
        conn_id = self.request_log.open(peer)
        with self._lock:
            self._sockets.add(client_socket)
            self._connections[address] = conn_id
        try:
            iso = ServerISOConnection(client_socket)
            if self._accept_iso(iso, conn_id, peer):
                self._serve(iso, address)
        except OSError:
            pass
        finally:
            self.request_log.close(conn_id)
            with self._lock:
                self._sockets.discard(client_socket)
                self._connections.pop(address, None)
            with self.client_lock:
                current = threading.current_thread()
                if current in self.clients:
                    self.clients.remove(current)
                self.client_count = max(0, self.client_count - 1)
            with contextlib.suppress(OSError):
                client_socket.close()

    def _accept_iso(self, iso: ServerISOConnection, conn_id: int, peer: str) -> bool:
        """Read the COTP connection request; confirm it or refuse it like a CPU."""
        deadline = time.monotonic() + iso.RECEIVE_DEADLINE
        try:
            header = iso._recv_exact(4, deadline)
            length = struct.unpack(">H", header[2:4])[0]
            if header[0] != 3 or length < 7:
                return False
            payload = iso._recv_exact(length - 4, deadline)
        except (TimeoutError, ConnectionError, S7ConnectionError):
            return False
        if not iso._parse_cotp_cr(payload):
            self.request_log.record("cotp_malformed", connection=conn_id, peer=peer)
            return False
        tsap = iso.called_tsap or b""
        rack = slot = None
        if len(tsap) == 2:
            rack, slot = (tsap[1] >> 5) & 0x07, tsap[1] & 0x1F
        refusal = None
        if self.profile.refuse in ("cotp", "close"):
            refusal = DR_REFUSED
        elif len(tsap) == 2 and (rack != self.profile.rack
                                 or slot not in (self.profile.accept_slots or [])):
            refusal = DR_ADDRESS_UNKNOWN
        self.request_log.record("cotp_connect", connection=conn_id, peer=peer,
                                called_tsap=tsap.hex(), rack=rack, slot=slot,
                                accepted=refusal is None)
        if refusal is None:
            iso.socket.sendall(iso._build_tpkt(iso._build_cotp_cc()))
            iso.connected = True
            return True
        self.request_log.close(conn_id)  # before the peer can see the refusal and retry
        if self.profile.refuse != "close":
            dr = struct.pack(">BBHHB", 6, COTP_DR, iso.dst_ref, iso.src_ref, refusal)
            iso.socket.sendall(iso._build_tpkt(dr))
        return False

    def _serve(self, iso: ServerISOConnection, address: tuple[str, int]) -> None:
        while self.running:
            try:
                request = iso.receive_data()
            except TimeoutError:
                continue
            except (ConnectionError, S7ConnectionError):
                return
            response = self._process_request(request, address)
            if response:
                iso.send_data(response)

    # -- PDUs ---------------------------------------------------------------------------
    def _process_request(self, request_data: bytes, client_address: tuple[str, int]) -> Any:
        kind, detail = describe_pdu(request_data)
        with self._lock:
            conn_id = self._connections.get(client_address, 0)
        self.request_log.record(kind, connection=conn_id,
                                peer=f"{client_address[0]}:{client_address[1]}", **detail)
        if kind == "setup_communication" and self.profile.refuse == "setup":
            sequence = struct.unpack(">H", request_data[4:6])[0]
            # ACK_DATA with error class 0x81 code 0x04 (service not available in this context)
            return struct.pack(">BBHHHHBB", 0x32, 0x03, 0, sequence, 0, 0, 0x81, 0x04)
        return super()._process_request(request_data, client_address)

    def _handle_szl(self, request: dict[str, Any], userdata_params: dict[str, Any],
                    client_address: tuple[str, int]) -> bytes:
        raw = (request.get("data") or {}).get("data", b"")
        if len(raw) < 4:
            return self._userdata_error(request, userdata_params, NOT_AVAILABLE)
        szl_id, index = struct.unpack(">HH", raw[:4])
        payload = self._get_szl_data(szl_id, index)
        if payload is None:
            return self._userdata_error(request, userdata_params, NOT_AVAILABLE)
        return self._build_userdata_success_response(
            request, userdata_params, struct.pack(">HH", szl_id, index) + payload)

    def _get_szl_data(self, szl_id: int, szl_index: int) -> bytes | None:
        return szl_payload(self.profile, szl_id, szl_index)

    @staticmethod
    def _userdata_error(request: dict[str, Any], params: dict[str, Any], code: int) -> bytes:
        """USERDATA reply with the error in the parameter block, as CPUs send it."""
        param = struct.pack(">BBBBBBBBBBH", 0x00, 0x01, 0x12, 0x08, 0x12,
                            0x80 | params.get("group", 4), params.get("subfunction", 1),
                            params.get("sequence", 0), 0x00, 0x00, code)
        data = struct.pack(">BBH", 0x0A, 0x00, 0)
        header = struct.pack(">BBHHHH", 0x32, USERDATA, 0, request.get("sequence", 0),
                             len(param), len(data))
        return header + param + data
