"""A site dies mid-job: the job still ends, and the job-controller reports it.

Own federation: this test kills a client. The server drops a silent client after
its heart_beat_timeout; the watcher then aborts the job (NVFlare's own handling
of a dead client in a FedAvg task can take far longer), so the terminal event
arrives within a few heartbeat timeouts plus the watcher's poll.
"""
from __future__ import annotations

import time

import pytest
from arcflare.client import Client
from jc_federation import LocalFederation
from jc_service import SITES, logreg, start_service, wait_for, wait_until_running

pytestmark = [pytest.mark.nvflare, pytest.mark.slow, pytest.mark.timeout(600)]
HEART_BEAT_TIMEOUT = 10
#: the server checks heartbeats periodically: allow two timeouts, plus the abort itself
BOUND_S = 2 * HEART_BEAT_TIMEOUT + 45


def test_a_killed_client_ends_the_job_with_a_terminal_event(tmp_path):
    fed = LocalFederation(tmp_path / "nvflare", SITES, heart_beat_timeout=HEART_BEAT_TIMEOUT)
    svc = None
    try:
        fed.provision()
        fed.start()
        fed.wait_for_clients(len(SITES))
        svc, settings = start_service(tmp_path / "data", fed)
        svc.start()
        with Client(settings) as client:
            submitted = client.wait(client.send(logreg(rounds=1000, name="orphaned")), timeout=120,
                                    settled=True)
            job_id = submitted.payload["job_id"]
            wait_until_running(fed, job_id, timeout=120)
            fed.kill("site-2")
            killed_at = time.monotonic()
            completed = wait_for(client, job_id, "JobCompleted", timeout=BOUND_S)
            print(f"terminal event {time.monotonic() - killed_at:.1f} s after the kill:",
                  completed.payload["status"])
    finally:
        if svc:
            svc.stop()
        fed.stop()

    assert completed.payload["status"].startswith("FINISHED:")
    assert completed.payload["status"] != "FINISHED:COMPLETED"
    assert "site-2" in completed.payload["reason"]
