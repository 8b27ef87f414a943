"""Periodic tails read a log in chunks: a key block split across ticks leaves nothing behind."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from arcflare.site_agent.adapters.process import ProcessObserver
from arcflare.site_agent.key_blocks import MAX_BLOCK_LINES
from arcflare.site_agent.redaction import FollowedLog, Redactor
from arcflare.site_agent.reporter import PeriodicTails
from arcflare.site_agent.telemetry import TelemetrySender

from tests.support.signing import signer_for

STAMP = "2026-12-01 17:49:42,512 - KeyLoader - INFO - "
#: an encrypted PEM key: header lines and short body lines the bare-base64 rule would not
#: know for key material on their own; only knowing the block is open redacts them
HEADERS = ["Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,5A1F0C3E9B7D2E4F6A8C0B1D3E5F7A9C"]
SHORT_BODY = ["kR9sT1uV5wX0yZ2a", "Q0xPU0VEQk9EWQ=="]
LONG_BODY = ["MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAPE89pbwkJE1gqOB",
             "r4lNBiu/Ggts6cVKpcH1r1h4gu5fkpBlSq9+TMBoig686k9gTB6ZC8f9XbRcbdIS"]


@pytest.fixture
def periodic(tmp_path: Path):
    (tmp_path / "log.txt").write_text("")
    bus = SqliteBus(tmp_path / "bus.db")
    tails = PeriodicTails(federation="fed-a", site="site-1", file="log.txt", every_s=60,
                          observer=ProcessObserver(tmp_path), redactor=Redactor(),
                          telemetry=TelemetrySender(bus, signer=signer_for(
                              tmp_path / "ids", "site:fed-a/site-1")))
    tails.tick()  # the follower starts at the end of the file
    yield tails, tmp_path / "log.txt", bus
    bus.close()


def append(log: Path, lines: list[str]) -> None:
    with open(log, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def published(bus: SqliteBus) -> list[list[str]]:
    return [json.loads(m.body)["lines"]
            for m in bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=100)]


def test_a_key_block_split_over_three_ticks_never_leaves_the_site(periodic) -> None:
    tails, log, bus = periodic
    chunks = [[STAMP + "loading the site key", "-----BEGIN RSA PRIVATE KEY-----", *HEADERS],
              [*SHORT_BODY, *LONG_BODY],
              ["-----END RSA PRIVATE KEY-----", STAMP + "key loaded"]]

    for chunk in chunks:
        append(log, chunk)
        tails.tick()

    sent = published(bus)
    text = "\n".join(line for tail in sent for line in tail)
    assert [secret for secret in HEADERS + SHORT_BODY + LONG_BODY if secret in text] == []
    assert sent == [[STAMP + "loading the site key", "[REDACTED:pem]"],
                    ["[REDACTED:pem]"],
                    ["[REDACTED:pem]", STAMP + "key loaded"]]


def test_a_putty_key_split_over_ticks_is_redacted_up_to_its_mac(periodic) -> None:
    tails, log, bus = periodic
    append(log, ["PuTTY-User-Key-File-3: ssh-ed25519", "Encryption: none", "Private-Lines: 1"])
    tails.tick()
    append(log, ["AAAAIFxWq7pL3kR9", "Private-MAC: 6f2c9e1ab4d7", STAMP + "done"])
    tails.tick()

    assert published(bus) == [["[REDACTED:putty]"], ["[REDACTED:putty]", STAMP + "done"]]


def test_a_begin_marker_never_closed_stops_redacting_after_a_key_s_length() -> None:
    followed = FollowedLog(Redactor())
    followed.redact_lines(["-----BEGIN CERTIFICATE-----"])
    after = [f"{STAMP}round {i} done" for i in range(MAX_BLOCK_LINES + 10)]

    lines, _ = followed.redact_lines(after)

    assert lines[0] == "[REDACTED:pem]" and lines[1:] == after[MAX_BLOCK_LINES:]
    assert followed.open_block is None


def test_a_one_off_tail_has_no_memory_of_an_earlier_one() -> None:
    redactor = Redactor()
    redactor.redact_lines(["-----BEGIN PRIVATE KEY-----"])

    assert redactor.redact_lines([STAMP + "key loaded"]) == ([STAMP + "key loaded"], 0)
