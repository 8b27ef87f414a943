"""Redaction defaults and caps: what leaves the site carries no secret and no person."""
from __future__ import annotations

import pytest
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import SiteLogTail
from arcflare.site_agent.redaction import InvalidRedactionPattern, Redactor
from arcflare.site_agent.tails import MAX_BYTES, MAX_LINES, RateLimit, make_safe
from site_agent_secrets import KEY_BODY, PLANTED, SECRETS


def test_defaults_and_custom_patterns_remove_every_planted_secret():
    redactor = Redactor([r"MRN-\d+"])

    lines, count = redactor.redact_lines(PLANTED)
    text = "\n".join(lines)

    assert not [s for s in SECRETS if s in text]
    assert count >= 7
    assert "[REDACTED:pem]" in text and lines[0].endswith("loading key")


def test_a_tail_that_starts_inside_a_pem_block_is_redacted():
    lines, count = Redactor().redact_lines([KEY_BODY, "-----END RSA PRIVATE KEY-----", "after"])

    assert KEY_BODY not in "\n".join(lines) and lines[-1] == "after" and count == 1


def test_a_pem_block_cut_at_the_end_is_redacted():
    lines, _ = Redactor().redact_lines(["before", "-----BEGIN CERTIFICATE-----", KEY_BODY])

    assert KEY_BODY not in "\n".join(lines) and lines[0] == "before"


def test_a_bad_custom_pattern_is_named():
    with pytest.raises(InvalidRedactionPattern, match=r"redaction_patterns\[1\]"):
        Redactor(["ok", "(unclosed"])


def test_make_safe_caps_lines_and_bytes_after_redaction():
    many = [f"{i:04d} " + "y" * 1000 for i in range(500)]

    safe = make_safe(many, Redactor())
    message = SiteLogTail(federation="fed-a", site="site-1", file="log.txt", lines=safe.lines,
                          truncated=safe.truncated, redacted_count=safe.redacted_count,
                          request_id="x" * 36)

    assert len(safe.lines) <= MAX_LINES
    assert len(Envelope.wrap(message).body()) <= MAX_BYTES
    assert safe.truncated and safe.lines[-1].startswith("0499")


def test_the_rate_limit_refuses_a_burst_then_recovers():
    now = [0.0]
    limit = RateLimit(per_minute=6, burst=2, clock=lambda: now[0])

    assert [limit.try_acquire() == 0.0 for _ in range(3)] == [True, True, False]
    now[0] += 10.0
    assert limit.try_acquire() == 0.0
