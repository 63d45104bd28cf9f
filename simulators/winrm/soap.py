"""WS-Management SOAP as a Windows WinRM service writes it (MS-WSMV, the WinRS shell).

Just enough for a remote shell: the request's addressing headers (Action, MessageID,
ResourceURI, SelectorSet ShellId, MaxEnvelopeSize, OperationTimeout) and body, and the
replies to Create, Command, Receive, Signal and Delete, plus SOAP faults with the
``WSManFault`` detail (code, machine, message) that clients read. Shapes follow MS-WSMV
3.1.4 (shell Create/Command/Receive/Signal; transfer Delete) and what pywinrm and pypsrp
send and parse.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

S = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
CMD_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

CREATE = f"{TRANSFER}/Create"
DELETE = f"{TRANSFER}/Delete"
COMMAND = f"{RSP}/Command"
RECEIVE = f"{RSP}/Receive"
SIGNAL = f"{RSP}/Signal"
ACTIONS = {CREATE: "create", DELETE: "delete", COMMAND: "command", RECEIVE: "receive",
           SIGNAL: "signal"}
DONE = f"{RSP}/CommandState/Done"
RUNNING = f"{RSP}/CommandState/Running"

# WSManFault codes (winerror.h ERROR_WSMAN_*) a Windows host answers with
TIMED_OUT = 2150858793  # no output within OperationTimeout
ACTION_NOT_SUPPORTED = 2150858757
SHELL_NOT_FOUND = 2150858843
INVALID_SELECTORS = 2150858813
BAD_REQUEST = 2150858817  # malformed or schema-invalid request


class SoapError(ValueError):
    """The request is not a WS-Man message this responder understands."""


@dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    max_envelope_size: int
    operation_timeout: float
    selectors: dict[str, str]
    body: ET.Element
    options: dict[str, str] = field(default_factory=dict)


def _duration(text: str | None, default: float) -> float:
    """``PT20S``/``PT20.500S`` (xs:duration in seconds, as WinRM clients write it)."""
    if not text or not text.startswith("PT") or not text.endswith("S"):
        return default
    try:
        return float(text[2:-1])
    except ValueError:
        return default


def parse_request(data: bytes) -> Request:
    """The addressing headers and body of one SOAP envelope; ``SoapError`` if it is not."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoapError(f"not XML: {exc}") from None
    if root.tag != f"{{{S}}}Envelope":
        raise SoapError("not a SOAP 1.2 envelope")
    header, body = root.find(f"{{{S}}}Header"), root.find(f"{{{S}}}Body")
    if header is None or body is None:
        raise SoapError("envelope without Header or Body")

    def text(tag: str) -> str | None:
        element = header.find(tag)
        return element.text.strip() if element is not None and element.text else None

    action, message_id = text(f"{{{WSA}}}Action"), text(f"{{{WSA}}}MessageID")
    if not action or not message_id:
        raise SoapError("no wsa:Action or wsa:MessageID header")
    try:
        max_size = int(text(f"{{{WSMAN}}}MaxEnvelopeSize") or 153600)
    except ValueError:
        raise SoapError("MaxEnvelopeSize is not a number") from None
    selectors = {s.get("Name", ""): (s.text or "").strip()
                 for s in header.iterfind(f"{{{WSMAN}}}SelectorSet/{{{WSMAN}}}Selector")}
    options = {o.get("Name", ""): (o.text or "").strip()
               for o in header.iterfind(f"{{{WSMAN}}}OptionSet/{{{WSMAN}}}Option")}
    return Request(action=action, message_id=message_id,
                   resource_uri=text(f"{{{WSMAN}}}ResourceURI") or "",
                   max_envelope_size=max_size,
                   operation_timeout=_duration(text(f"{{{WSMAN}}}OperationTimeout"), 60.0),
                   selectors=selectors, body=body, options=options)


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{S}" xmlns:a="{WSA}" xmlns:x="{TRANSFER}" '
        f'xmlns:w="{WSMAN}" xmlns:rsp="{RSP}" xmlns:p="http://schemas.microsoft.com/wbem/'
        'wsman/1/wsman.xsd"><s:Header>'
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>").encode()


def created(req: Request, shell_id: str, address: str, owner: str, client_ip: str) -> bytes:
    body = (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{CMD_SHELL}</w:ResourceURI><w:SelectorSet>"
        f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        "</a:ReferenceParameters></x:ResourceCreated>"
        f'<rsp:Shell xmlns:rsp="{RSP}"><rsp:ShellId>{shell_id}</rsp:ShellId>'
        f"<rsp:ResourceUri>{CMD_SHELL}</rsp:ResourceUri><rsp:Owner>{escape(owner)}</rsp:Owner>"
        f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
        "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin"
        "</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
        "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S"
        "</rsp:ShellInactivity></rsp:Shell>")
    return _envelope(f"{TRANSFER}/CreateResponse", req.message_id, body)


def command_line(req: Request) -> tuple[str, list[str]]:
    """The executable and arguments of a Command request."""
    line = req.body.find(f"{{{RSP}}}CommandLine")
    command = line.find(f"{{{RSP}}}Command") if line is not None else None
    if command is None or not (command.text or "").strip():
        raise SoapError("Command without rsp:CommandLine/rsp:Command")
    args = [(a.text or "") for a in line.iterfind(f"{{{RSP}}}Arguments")]  # type: ignore[union-attr]
    return command.text.strip(), args  # type: ignore[union-attr]


def command_started(req: Request, command_id: str) -> bytes:
    body = (f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>")
    return _envelope(f"{RSP}/CommandResponse", req.message_id, body)


def receive_target(req: Request) -> str:
    """The CommandId a Receive asks output of."""
    stream = req.body.find(f"{{{RSP}}}Receive/{{{RSP}}}DesiredStream")
    command_id = stream.get("CommandId") if stream is not None else None
    if not command_id:
        raise SoapError("Receive without DesiredStream CommandId")
    return command_id


def _stream(name: str, cid: str, data: str, end: bool) -> str:
    end_attr = ' End="true"' if end else ""
    return f'<rsp:Stream Name="{name}" CommandId={cid}{end_attr}>{data}</rsp:Stream>'


def received(req: Request, command_id: str, chunks: list[tuple[str, str, bool]],
             exit_code: int | None) -> bytes:
    """``chunks``: (stream name, base64 text, End); ``exit_code`` None: still running."""
    cid = quoteattr(command_id)
    streams = "".join(_stream(name, cid, data, end) for name, data, end in chunks)
    state = (f'<rsp:CommandState CommandId={cid} State="{DONE}"><rsp:ExitCode>{exit_code}'
             "</rsp:ExitCode></rsp:CommandState>" if exit_code is not None else
             f'<rsp:CommandState CommandId={cid} State="{RUNNING}"/>')
    body = f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
    return _envelope(f"{RSP}/ReceiveResponse", req.message_id, body)


def signal_target(req: Request) -> tuple[str, str]:
    """(CommandId, Code) of a Signal."""
    signal = req.body.find(f"{{{RSP}}}Signal")
    code = signal.find(f"{{{RSP}}}Code") if signal is not None else None
    if signal is None or not signal.get("CommandId") or code is None:
        raise SoapError("Signal without CommandId or Code")
    return signal.get("CommandId", ""), (code.text or "").strip()


def signalled(req: Request) -> bytes:
    return _envelope(f"{RSP}/SignalResponse", req.message_id, "<rsp:SignalResponse/>")


def deleted(req: Request) -> bytes:
    return _envelope(f"{TRANSFER}/DeleteResponse", req.message_id, "")


def fault(relates_to: str, code: int, subcode: str, message: str, machine: str) -> bytes:
    """A SOAP fault with the WSManFault detail (sent with HTTP 500)."""
    body = (
        f"<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>{subcode}"
        f'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(message)}'
        f'</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="{FAULT}" Code="{code}" '
        f"Machine={quoteattr(machine)}><f:Message>{escape(message)}</f:Message>"
        "</f:WSManFault></s:Detail></s:Fault>")
    return _envelope(f"{WSA}/fault", relates_to, body)
