"""Alerts reach a local webhook (HMAC verified, retried after a 500, dead-lettered after
repeated failure) and a local syslog socket (RFC 5424 with structured data, CEF; UDP and
TCP). The secret appears in no log line and no dead letter."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
import sqlalchemy as sa

from otaudit.errors import InputError
from otaudit.server.alerts.deadletter import dead_letters
from otaudit.server.alerts.dispatch import AlertDispatcher, from_settings
from otaudit.server.alerts.model import Alert
from otaudit.server.alerts.syslog import SyslogSender
from otaudit.server.alerts.webhook import WebhookSender, verify
from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.settings import get_settings

from support.alert_listeners import tcp_syslog, udp_syslog, webhook_receiver

SECRET = "s3cret-for-tests-0123456789abcdef"
RFC5424 = re.compile(rb"^<(\d+)>1 (\S+) (\S+) otaudit (\d+) (\S+) (\[otaudit@32473 .*?[^\\]\]) "
                     rb"\xef\xbb\xbf(.*)$", re.S)


def alert(**kw: object) -> Alert:
    values: dict = {"type": "drift", "severity": "high", "site": "plant-a",
                    "asset_id": "plc-1", "summary": "plc-1: identity.firmware_version changed",
                    "data": {"fact": "identity.firmware_version", "kind": "firmware",
                             "policy": "violation", "note": 'quote " and ] bracket'}}
    values.update(kw)
    return Alert(**values)  # type: ignore[arg-type]


class Recorder:
    """A sender that keeps what it is given."""

    channel, target = "test", "memory"

    def __init__(self) -> None:
        self.got: list[Alert] = []

    def deliver(self, a: Alert) -> tuple[None, int]:
        self.got.append(a)
        return None, 1


def engine_for(url: str) -> sa.Engine:
    engine = make_engine(url)
    init_db(engine)
    return engine


def test_the_webhook_is_signed_and_retried_after_a_500(sqlite_url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with webhook_receiver([500]) as hook:
        settings = get_settings(alert_webhook_url=hook.url, alert_webhook_secret=SECRET,
                                alert_retry_base=0.01)
        dispatcher = from_settings(settings, engine_for(sqlite_url))
        assert dispatcher is not None
        sent = alert()
        assert dispatcher.submit([sent]) == 1
        assert dispatcher.flush(20)
    assert len(hook.requests) == 2  # the 500, then the retry
    for request in hook.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert verify(SECRET.encode(), headers["x-otaudit-timestamp"], request.body,
                      headers["x-otaudit-signature"])
        assert not verify(b"another secret of 32 bytes......", headers["x-otaudit-timestamp"],
                          request.body, headers["x-otaudit-signature"])
        assert headers["x-otaudit-delivery"] == sent.id and headers["x-otaudit-event"] == "drift"
    body = json.loads(hook.requests[1].body)
    assert (body["type"], body["site"], body["data"]["fact"]) == (
        "drift", "plant-a", "identity.firmware_version")
    assert dispatcher.counts == {"submitted": 1, "delivered": 1, "dead": 0}
    assert SECRET not in caplog.text


def test_repeated_failure_ends_as_a_dead_letter(database_url: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    engine = engine_for(database_url)
    with webhook_receiver([503] * 10) as hook:
        sender = WebhookSender(hook.url + "?token=abc", SECRET.encode(), max_attempts=3,
                               base_delay=0.01)
        dispatcher = AlertDispatcher([sender], engine)
        dispatcher.submit([alert()])
        assert dispatcher.flush(20)
    assert len(hook.requests) == 3
    with session_factory(engine)() as session:
        [letter] = dead_letters(session)
    assert (letter.channel, letter.attempts, letter.event_type) == ("webhook", 3, "drift")
    assert letter.target == hook.url  # no query string (a token may hide there)
    assert "HTTP 503" in letter.last_error and letter.payload["asset_id"] == "plc-1"
    assert SECRET not in json.dumps(letter.payload) and SECRET not in caplog.text
    assert "abc" not in caplog.text


def test_a_client_error_is_not_retried(sqlite_url: str) -> None:
    with webhook_receiver([400]) as hook:
        dispatcher = AlertDispatcher([WebhookSender(hook.url, SECRET.encode(),
                                                    base_delay=0.01)], engine_for(sqlite_url))
        dispatcher.submit([alert()])
        assert dispatcher.flush(20)
    assert len(hook.requests) == 1 and dispatcher.counts["dead"] == 1


def test_an_unreachable_webhook_is_retried_then_dead(sqlite_url: str) -> None:
    from tests_helpers import free_tcp_port

    sender = WebhookSender(f"http://127.0.0.1:{free_tcp_port()}/x", SECRET.encode(),
                           max_attempts=2, base_delay=0.01, timeout=2)
    error, attempts = sender.deliver(alert())
    assert attempts == 2 and error is not None and "127.0.0.1" in error


def test_syslog_over_udp_is_rfc5424_with_structured_data() -> None:
    with udp_syslog() as sock:
        sender = SyslogSender.from_target(f"udp://127.0.0.1:{sock.getsockname()[1]}")
        assert sender.deliver(alert()) == (None, 1)
        data, _ = sock.recvfrom(65536)
    match = RFC5424.match(data)
    assert match, data
    pri, _stamp, _host, _pid, msgid, sd, msg = match.groups()
    assert int(pri) == 16 * 8 + 3 and msgid == b"drift"  # local0, error (high)
    assert b'type="drift"' in sd and b'site="plant-a"' in sd and b'asset="plc-1"' in sd
    assert b'fact="identity.firmware_version"' in sd and b'policy="violation"' in sd
    assert msg.decode() == "plc-1: identity.firmware_version changed"


def test_syslog_over_tcp_frames_by_octet_count_and_escapes_sd_values() -> None:
    with tcp_syslog() as sink:
        sender = SyslogSender.from_target(f"tcp://127.0.0.1:{sink.port}")
        tricky = alert(site='pl"ant]\\a')
        assert sender.deliver(tricky)[0] is None
        assert sender.deliver(alert(severity="info"))[0] is None
        deadline = time.monotonic() + 10
        while len(sink.frames) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(sink.frames) == 2
    assert b'site="pl\\"ant\\]\\\\a"' in sink.frames[0]
    assert sink.frames[1].startswith(b"<134>1 ")  # local0, informational


def test_cef_in_the_message_part() -> None:
    with udp_syslog() as sock:
        sender = SyslogSender.from_target(f"udp://127.0.0.1:{sock.getsockname()[1]}",
                                          fmt="cef")
        sender.deliver(alert(summary="a|b=c"))
        data, _ = sock.recvfrom(65536)
    msg = RFC5424.match(data).group(7).decode()  # type: ignore[union-attr]
    head = msg.split("|")
    assert head[:3] == ["CEF:0", "otaudit", "otaudit"] and "drift" in head
    assert "a\\|b=c" in msg and "msg=a|b\\=c" in msg and "cs1=plant-a" in msg
    assert "|8|" in msg  # high


def test_the_minimum_severity_filters() -> None:
    recorder = Recorder()
    dispatcher = AlertDispatcher([recorder], None, min_severity="medium")
    assert dispatcher.submit([alert(severity="info"), alert(severity="low"),
                              alert(severity="medium"), alert(severity="critical")]) == 2
    assert dispatcher.flush(5)
    assert [a.severity for a in recorder.got] == ["medium", "critical"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"alert_webhook_url": "http://127.0.0.1:9/x"}, "needs a signing secret"),
    ({"alert_webhook_url": "ftp://x/y", "alert_webhook_secret": SECRET}, "http:// or https://"),
    ({"alert_webhook_url": "http://x/y", "alert_webhook_secret": "short"}, "16 bytes"),
    ({"alert_syslog_target": "127.0.0.1:514"}, "udp://HOST:PORT"),
    ({"alert_syslog_target": "udp://127.0.0.1:notaport"}, "udp://HOST:PORT"),
])
def test_bad_alert_settings_are_input_errors(settings: dict, message: str) -> None:
    with pytest.raises(InputError) as err:
        from_settings(get_settings(**settings))
    assert message in str(err.value) + " ".join(err.value.problems)
    assert SECRET not in str(err.value)


def test_no_channel_no_dispatcher() -> None:
    assert from_settings(get_settings()) is None


def test_the_secret_comes_from_a_file(tmp_path, sqlite_url: str) -> None:
    path = tmp_path / "hook.secret"
    path.write_text(SECRET + "\n")
    with webhook_receiver() as hook:
        dispatcher = from_settings(get_settings(alert_webhook_url=hook.url,
                                                alert_webhook_secret_file=str(path)))
        assert dispatcher is not None
        dispatcher.submit([alert()])
        assert dispatcher.flush(10)
    headers = {k.lower(): v for k, v in hook.requests[0].headers.items()}
    assert verify(SECRET.encode(), headers["x-otaudit-timestamp"], hook.requests[0].body,
                  headers["x-otaudit-signature"])


def _s7(password: bool, firmware: str, minutes: int):
    from support.observations import make_observation

    return make_observation(probe="s7", minutes=minutes, facts={
        "identity.firmware_version": firmware, "s7.classic_access": True,
        "s7.password_set": password})


def _message(obs):
    return f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}", obs.to_json()


@pytest.mark.parametrize("inline", [True, False])
def test_ingest_alerts_drift_and_a_new_fail_after_the_first_evaluation(
        database_url: str, inline: bool) -> None:
    from otaudit.server.ingest import Ingestor

    recorder = Recorder()
    dispatcher = AlertDispatcher([recorder], None)
    ingestor = Ingestor(engine_for(database_url), alerts=dispatcher, evaluate_inline=inline)

    def ingest(obs) -> None:
        ingestor.ingest([_message(obs)])
        ingestor.evaluate_pending()
        assert dispatcher.flush(10)

    ingest(_s7(False, "V4.5", 0))  # first audit: fails, but it is the starting point
    assert recorder.got == []
    ingest(_s7(True, "V4.5", 10))  # a password set: drift, no fail
    assert [(a.type, a.data["fact"]) for a in recorder.got] == [("drift", "s7.password_set")]
    recorder.got.clear()
    ingest(_s7(False, "V4.6", 20))  # removed again, and new firmware
    got = sorted((a.type, a.data.get("fact") or a.data.get("check_id"), a.severity)
                 for a in recorder.got)
    assert got == [("drift", "identity.firmware_version", "high"),
                   ("drift", "s7.password_set", "medium"),
                   ("new_fail", "OTA-S7-002", "high")]
    recorder.got.clear()
    ingest(_s7(False, "V4.6", 30))  # nothing changed: nothing to say
    assert recorder.got == []


def test_a_newly_open_known_exploited_advisory_is_a_critical_alert(database_url: str,
                                                                   tmp_path) -> None:
    from pathlib import Path

    from otaudit.server.advisories.importer import import_source
    from otaudit.server.advisories.kev import update_kev
    from otaudit.server.ingest import Ingestor

    from support.observations import make_observation

    fixtures = Path(__file__).parent.parent / "fixtures" / "csaf"
    engine = engine_for(database_url)
    kev = tmp_path / "kev.json"
    kev.write_text(json.dumps({
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "1",
        "dateReleased": "2026-12-01T12:00:00.000Z", "count": 1, "vulnerabilities": [{
            "cveID": "CVE-2019-6819", "vendorProject": "Schneider Electric",
            "product": "Modicon", "vulnerabilityName": "test", "dateAdded": "2024-01-02",
            "shortDescription": "x", "requiredAction": "Apply updates.", "dueDate": "2024-01-23",
            "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []}]}))
    with session_factory(engine).begin() as session:
        import_source(session, str(fixtures))
        update_kev(session, str(kev))
    recorder = Recorder()
    ingestor = Ingestor(engine, alerts=AlertDispatcher([recorder], None))

    def m340(firmware: str, minutes: int) -> None:
        obs = make_observation("plc-m340", minutes=minutes, facts={
            "identity.vendor": "Schneider Electric", "identity.product": "Modicon M340",
            "identity.model": "BMX P34 2020", "identity.firmware_version": firmware})
        ingestor.ingest([_message(obs)])
        assert ingestor.alerts is not None and ingestor.alerts.flush(10)

    m340("SV3.20", 0)  # later than the < 3.01 fix: the starting point, no alert
    assert recorder.got == []
    m340("SV3.00", 5)  # a downgrade: ICSA-19-183-01 is open again, and exploited
    advisories = [a for a in recorder.got if a.type == "new_advisory"]
    assert [(a.severity, a.data["advisory_id"], a.data["cve"], a.data["known_exploited"])
            for a in advisories] == [("critical", "ICSA-19-183-01", "CVE-2019-6819", True)]
    recorder.got.clear()
    m340("SV3.00", 10)  # still open: not new
    assert recorder.got == []
