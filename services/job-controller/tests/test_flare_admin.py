"""The FLARE admin adapter's session handling: reuse, reconnect on failure, always closed.

Sessions are stand-ins here (what is tested is the adapter's bookkeeping); the real
FLARE API sessions are exercised in test_flare_jobs.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from arcflare.job_controller.adapters.flare_admin import FlareApiAdmin, FlareUnavailable, job_view
from nvflare.fuel.flare_api.api_spec import NoConnection


class StubSession:
    def __init__(self, fail_times: int) -> None:
        self.fail_times, self.closed = fail_times, False
        self.timeouts: list[float] = []

    def set_timeout(self, value: float) -> None:
        self.timeouts.append(value)

    def get_job_meta(self, job_id: str) -> dict:
        if self.fail_times:
            self.fail_times -= 1
            raise NoConnection("cannot connect to server")
        return {"job_id": job_id, "name": "j", "status": "RUNNING", "duration": "0:00:17.5"}

    def close(self) -> None:
        self.closed = True


def admin_with(sessions: list[StubSession]) -> FlareApiAdmin:
    admin = FlareApiAdmin(Path("/kit"), "a@b.org", attempts=3, backoff_s=0)
    pool = iter(sessions)
    admin._open = lambda: next(pool)  # type: ignore[method-assign]
    return admin


def test_one_session_serves_many_calls_and_is_closed_on_close() -> None:
    session = StubSession(fail_times=0)
    admin = admin_with([session])

    views = [admin.job("j1"), admin.job("j2")]
    admin.close()

    assert [v.status for v in views] == ["RUNNING", "RUNNING"]
    assert session.closed


def test_closing_waits_briefly_for_the_logout_of_a_server_that_may_be_gone() -> None:
    from arcflare.job_controller.adapters.flare_admin import LOGOUT_TIMEOUT_S

    session = StubSession(fail_times=0)
    admin = admin_with([session])
    admin.job("j1")

    admin.close()

    # the logout is the one command sent at close; the 30 s command timeout is not its bound
    assert session.closed and session.timeouts == [LOGOUT_TIMEOUT_S]
    assert LOGOUT_TIMEOUT_S < admin.command_timeout_s


def test_a_lost_connection_closes_the_session_and_retries_on_a_new_one() -> None:
    broken, fresh = StubSession(fail_times=1), StubSession(fail_times=0)
    admin = admin_with([broken, fresh])

    view = admin.job("j1")

    assert view.status == "RUNNING" and broken.closed and not fresh.closed
    admin.close()
    assert fresh.closed


def test_after_the_last_attempt_the_server_is_reported_unavailable() -> None:
    sessions = [StubSession(fail_times=1) for _ in range(3)]
    admin = admin_with(sessions)

    with pytest.raises(FlareUnavailable, match="get_job_meta"):
        admin.job("j1")
    assert all(s.closed for s in sessions)


def test_nvflare_durations_are_read_as_seconds() -> None:
    assert job_view({"duration": "0:00:17.5"}).duration_s == 17.5
    assert job_view({"duration": "1 day, 1:00:00"}).duration_s == 86400.0 + 3600.0
    assert job_view({}).duration_s is None


class StatusSession(StubSession):
    """A server with two clients that answers version requests, counting them."""

    def __init__(self) -> None:
        super().__init__(fail_times=0)
        self.asked: list[list[str]] = []

    def get_system_info(self):
        from types import SimpleNamespace as Info

        return Info(server_info=Info(status="started"), job_info=[],
                    client_info=[Info(name="a", last_connect_time=1.0),
                                 Info(name="b", last_connect_time=2.0)])

    def report_version(self, target_type: str, targets: list[str]) -> dict:
        self.asked.append(targets)
        return {name: {"version": "2.9.0"} for name in targets if name == "a"} | {
            "b": {"error": "No replies"}}


def test_each_client_is_asked_its_nvflare_version_once_not_at_every_poll() -> None:
    session = StatusSession()
    admin = admin_with([session])

    first, second = admin.server_view(), admin.server_view()

    assert [(c.name, c.nvflare_version) for c in first.clients] == [("a", "2.9.0"), ("b", None)]
    assert second.clients == first.clients
    assert session.asked == [["a", "b"]]


def test_the_clients_a_waiting_job_needs_cost_one_round_trip_not_the_version_question() -> None:
    session = StatusSession()
    admin = admin_with([session])

    assert admin.connected_clients() == ["a", "b"]
    assert session.asked == []  # report_version goes through the server to every new client


def test_warming_logs_in_once_and_the_next_call_uses_that_session() -> None:
    session = StatusSession()
    admin = admin_with([session])  # a second login would find the pool empty

    admin.warm()
    admin.warm()
    clients = admin.connected_clients()

    assert clients == ["a", "b"] and admin._sess is session


def test_warming_a_session_in_use_returns_at_once() -> None:
    import threading

    opened: list[int] = []
    admin = FlareApiAdmin(Path("/kit"), "a@b.org")
    admin._open = lambda: opened.append(1)  # type: ignore[method-assign]
    holding, release = threading.Event(), threading.Event()

    def call_in_progress() -> None:
        with admin._lock:
            holding.set()
            release.wait(10)

    caller = threading.Thread(target=call_in_progress)
    caller.start()
    holding.wait(10)
    admin.warm()  # would block for the call's whole length if it waited for the lock
    release.set()
    caller.join()

    assert opened == []


def test_a_server_that_cannot_be_reached_leaves_warming_to_the_next_call() -> None:
    admin = FlareApiAdmin(Path("/kit"), "a@b.org")

    def unreachable():
        raise NoConnection("cannot connect to server")

    admin._open = unreachable  # type: ignore[method-assign]

    admin.warm()  # logged, not raised

    assert admin._sess is None


def test_a_kept_session_idle_for_long_is_used_before_the_server_ends_it(monkeypatch) -> None:
    from arcflare.job_controller.adapters import flare_admin

    session = StatusSession()
    calls: list[str] = []
    session.get_system_info = lambda inner=session.get_system_info: calls.append("info") or inner()
    admin = admin_with([session])
    admin.warm()
    admin.warm()
    assert calls == []  # fresh: nothing to do

    monkeypatch.setattr(flare_admin, "KEEPALIVE_S", -1.0)
    admin.warm()

    assert calls == ["info"] and admin._sess is session


def test_a_new_session_challenges_the_server_again_after_a_tenth_of_a_second_not_a_second(
        monkeypatch) -> None:
    from arcflare.job_controller.adapters import flare_admin
    from nvflare.fuel.hci.client import api
    from nvflare.private.fed.authenticator import Authenticator as Stock

    monkeypatch.setattr(api, "Authenticator", Stock)  # as NVFlare ships it
    args = {"cell": None, "project_name": "p", "client_name": "a@b.org", "client_type": "admin",
            "expected_sp_identity": "server", "secure_mode": True, "root_cert_file": "ca",
            "private_key_file": "key", "cert_file": "cert", "msg_timeout": 5.0, "timeout": 10}
    assert api.Authenticator(retry_interval=1.0, **args).retry_interval == 1.0

    flare_admin._challenge_sooner()
    flare_admin._challenge_sooner()  # once is enough: not a subclass of a subclass

    assert api.Authenticator.__mro__[1] is Stock
    assert api.Authenticator(retry_interval=1.0, **args).retry_interval == flare_admin.AUTH_RETRY_S
    assert api.Authenticator(retry_interval=0.05, **args).retry_interval == 0.05
