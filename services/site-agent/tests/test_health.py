"""The health model on log lines copied from real nvflare 2.9 clients."""
from __future__ import annotations

from arcflare.site_agent.health import HealthModel
from arcflare.site_agent.observer import Observation

ADDR = "fl.hospital-net.org:8002"
REFUSED = ("2026-11-29 08:12:37,087 - conn_manager - ERROR - Connector [CH00001 ACTIVE "
           "http://localhost:53023] failed with exception ClientConnectorError: "
           "ClientConnectorError: Cannot connect to host localhost:53023 ssl:<ssl.SSLContext "
           "object at 0x7f7e77ffbad0> [Connect call failed ('127.0.0.1', 53023)]")
DNS = ("2026-11-29 08:14:25,149 - conn_manager - ERROR - Connector [CH00001 ACTIVE "
       "http://no-such-host.invalid:53023] failed with exception ClientConnectorDNSError: "
       "ClientConnectorDNSError: Cannot connect to host no-such-host.invalid:53023 "
       "ssl:<ssl.SSLContext object at 0x7f00e6d1fad0> [Name or service not known]")
TLS = ("2026-11-29 08:14:25,984 - conn_manager - ERROR - Connector [CH00001 ACTIVE "
       "http://localhost:53023] failed with exception ClientConnectorCertificateError: "
       "ClientConnectorCertificateError: Cannot connect to host localhost:53023 ssl:True "
       "[SSLCertVerificationError: (1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
       "failed: self-signed certificate in certificate chain (_ssl.c:1006)')]")
EXPIRED = TLS.replace("self-signed certificate in certificate chain", "certificate has expired")
REGISTERED = ("2026-11-29 08:13:06,168 - FederatedClient - INFO - Successfully registered "
              "client:site-a for project fedx.")
LOST = ("2026-11-29 08:13:37,183 - CoreCell - ERROR - [ME=site-a O=site-a D=server F=site-a "
        "T=server CH=task TP=heart_beat SCH=? STP=? SEQ=?] cannot send to 'server': "
        "target_unreachable")
RECONNECTED = ("2026-11-29 08:14:05,171 - conn_manager - INFO - Connection [CN00003 "
               "127.0.0.1:34966 => 127.0.0.1:53023 SSL localhost] is created: PID: 8321")


def running(*lines: str, identity: str = "100@1.0", started: float = 0.0) -> Observation:
    return Observation("running", identity=identity, pid=100, started_at=started,
                       new_log_lines=list(lines), server_address=ADDR)


def model(now: float = 10.0) -> HealthModel:
    return HealthModel(registration_grace_s=60, clock=lambda: now)


def test_registration_means_connected():
    health = model().update(running(REGISTERED))[-1]

    assert health.status == "connected" and ADDR in health.diagnosis


def test_a_refused_connection_is_disconnected_and_names_the_address():
    health = model().update(running(REFUSED))[-1]

    assert health.status == "disconnected"
    assert "localhost:53023" in health.diagnosis and "firewall" in health.diagnosis


def test_unresolvable_wrong_ca_and_expired_certificates_are_misconfigured():
    dns, tls, expired = (model().update(running(line))[-1] for line in (DNS, TLS, EXPIRED))

    assert dns.status == "misconfigured" and "no-such-host.invalid:53023" in dns.diagnosis
    assert tls.status == "misconfigured" and "self-signed certificate" in tls.diagnosis
    assert expired.status == "misconfigured" and "expired" in expired.diagnosis


def test_losing_and_regaining_the_server_after_registration():
    m = model()
    m.update(running(REGISTERED))

    lost = m.update(running(LOST))[-1]
    back = m.update(running(RECONNECTED))[-1]

    assert lost.status == "disconnected" and back.status == "connected"


def test_up_but_never_registered_after_the_grace_period():
    assert model(now=10).update(running())[-1].status == "starting"

    late = model(now=120).update(running())[-1]

    assert late.status == "disconnected" and "never registered" in late.diagnosis
    assert ADDR in late.diagnosis


def test_a_new_incarnation_we_did_not_ask_for_passes_through_crashed():
    m = model()
    m.update(running(REGISTERED, identity="100@1.0"))

    passed = m.update(running(identity="200@50.0", started=50.0))

    assert [h.status for h in passed] == ["crashed", "starting"]


def test_a_requested_restart_is_not_a_crash():
    m = model()
    m.update(running(REGISTERED, identity="100@1.0"))
    m.expect_restart()

    passed = m.update(running(identity="200@50.0", started=50.0))

    assert [h.status for h in passed] == ["starting"]


def test_process_states_map_to_health():
    m = model()
    assert m.update(Observation("exited", detail="gone"))[-1].status == "crashed"
    assert m.update(Observation("restarting", detail="again"))[-1].status == "crashed"
    assert m.update(Observation("stopped", detail="off"))[-1].status == "stopped"
    assert m.update(Observation("broken", detail="no ws"))[-1].status == "misconfigured"


def test_an_expired_site_certificate_is_misconfigured_before_any_log_says_so():
    obs = Observation("running", identity="1@1", pid=1, started_at=0.0,
                      server_address=ADDR, certificate_not_after=5.0)

    health = model(now=10.0).update(obs)[-1]

    assert health.status == "misconfigured" and "client.crt" in health.diagnosis
    assert "1970-01-01" in health.diagnosis


def test_each_diagnosis_carries_a_short_code():
    lines = {"registered": REGISTERED, "server_unreachable": REFUSED, "dns_error": DNS,
             "tls_error": TLS, "cert_expired": EXPIRED}

    codes = {code: model().update(running(line))[-1].code for code, line in lines.items()}

    assert codes == {code: code for code in lines}
    assert model(now=120).update(running())[-1].code == "never_registered"
    assert model(now=10).update(running())[-1].code == "registering"
