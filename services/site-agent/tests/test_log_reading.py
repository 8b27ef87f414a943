"""Log files as untrusted input: missing, rotated, unreadable, huge lines, binary."""
from __future__ import annotations

import os

import pytest
from arcflare.site_agent.adapters.process import ProcessObserver
from arcflare.site_agent.logtail import MAX_LINE_CHARS, LogFollower, read_last_lines
from arcflare.site_agent.observer import LogUnavailable


def test_the_last_lines_are_returned_in_order(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))

    tail = read_last_lines(log, 3)

    assert tail.lines == ["line 997", "line 998", "line 999"] and not tail.truncated


def test_a_multi_megabyte_line_is_cut_and_reading_stays_bounded(tmp_path):
    log = tmp_path / "log.txt"
    log.write_bytes(b"before\n" + b"x" * (5 * 1024 * 1024) + b"\nafter\n")

    tail = read_last_lines(log, 200)

    assert tail.lines[-1] == "after"
    assert all(len(line) <= MAX_LINE_CHARS + 40 for line in tail.lines)
    assert tail.truncated


def test_binary_garbage_becomes_printable_text(tmp_path):
    log = tmp_path / "log.txt"
    log.write_bytes(b"ok line\n\x00\x01\xff\xfe\x1b[31mred\x07\n")

    tail = read_last_lines(log, 5)

    assert tail.lines[0] == "ok line"
    assert not any(ch in tail.lines[1] for ch in "\x00\x01\x1b\x07")
    assert "red" in tail.lines[1]


def test_the_follower_sees_appends_then_a_rotation(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("old 1\nold 2\n")
    follower = LogFollower(log)
    assert follower.read_new() == ["old 1", "old 2"]
    with open(log, "a") as f:
        f.write("new 1\npartial")
    assert follower.read_new() == ["new 1"]
    with open(log, "a") as f:
        f.write(" done\n")
    assert follower.read_new() == ["partial done"]

    os.rename(log, tmp_path / "log.txt.1")
    log.write_text("rotated 1\n")

    assert follower.read_new() == ["rotated 1"]


def test_the_follower_survives_a_missing_file(tmp_path):
    follower = LogFollower(tmp_path / "log.txt")

    assert follower.read_new() == []
    (tmp_path / "log.txt").write_text("appeared\n")
    assert follower.read_new() == ["appeared"]


def test_the_follower_skips_a_burst_to_its_end(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("")
    follower = LogFollower(log, max_read=1024)
    follower.read_new()
    log.write_text("".join(f"burst {i:05d}\n" for i in range(10_000)))

    lines = follower.read_new()

    assert lines[-1] == "burst 09999" and len(lines) < 100


def test_only_allow_listed_files_can_be_tailed(tmp_path):
    (tmp_path / "log.txt").write_text("x\n")
    (tmp_path / "startup").mkdir()
    (tmp_path / "startup" / "client.key").write_text("secret")
    observer = ProcessObserver(tmp_path)

    with pytest.raises(LogUnavailable, match="not an allowed log"):
        observer.tail("startup/client.key", 10)
    with pytest.raises(LogUnavailable, match="not an allowed log"):
        observer.tail("../log.txt", 10)


def test_missing_and_unreadable_logs_are_explained(tmp_path):
    observer = ProcessObserver(tmp_path)
    (tmp_path / "error_log.txt").mkdir()  # unreadable as a file, even for root

    with pytest.raises(LogUnavailable, match="does not exist"):
        observer.tail("log.txt", 10)
    with pytest.raises(LogUnavailable, match="cannot be read"):
        observer.tail("error_log.txt", 10)


def test_the_kit_certificate_expiry_is_read_from_startup(tmp_path):
    from datetime import UTC, datetime, timedelta

    from arcflare.site_agent.adapters.workspace import certificate_not_after
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "site-1")])
    not_after = datetime(2025, 1, 2, tzinfo=UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(not_after - timedelta(days=360)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    (tmp_path / "startup").mkdir()
    (tmp_path / "startup" / "client.crt").write_bytes(cert.public_bytes(Encoding.PEM))

    assert certificate_not_after(tmp_path) == not_after.timestamp()
    assert certificate_not_after(tmp_path / "nothing-here") is None


def test_a_client_that_logged_its_shutdown_then_exited_is_stopped_not_crashed(tmp_path):
    import subprocess
    import sys

    (tmp_path / "log.txt").write_text("")
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "nvflare.private.fed.app.client.client_train", "-m", str(tmp_path)])
    try:
        observer = ProcessObserver(tmp_path)
        assert observer.observe().runtime == "running"
        with open(tmp_path / "log.txt", "a") as f:
            f.write("2099-01-01 00:00:00,000 - ClientEngine - INFO - Client shutdown...\n")
        assert observer.observe().runtime == "running"  # the line is read while it runs
    finally:
        fake.kill()
        fake.wait()

    assert observer.observe().runtime == "stopped"
