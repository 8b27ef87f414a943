"""The FLARE admin port and its adapter over nvflare.fuel.flare_api.

One session per federation is kept open between calls (logging in costs about a
second, which a watcher polling every second cannot pay each time) and used by
one call at a time. A call that cannot reach the server closes the session and
retries on a fresh one (reconnect), up to `attempts` times; `close()` ends it, and
the service calls it on stop: an unclosed FLARE API session keeps threads alive
and hangs the process at exit.
"""
from __future__ import annotations

import abc
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from arcflare.observability import tracing
from arcflare.runtime.logging import get_logger
from opentelemetry.trace import SpanKind

log = get_logger(__name__)
T = TypeVar("T")
#: a client's NVFlare version changes only when it restarts: asked again after this long
VERSION_TTL_S = 600.0
#: how long closing waits for the server to answer the logout: a server that went away
#: (stopped, restarted on a renewed kit) never answers, and waiting the command timeout
#: per session would outlast a supervisor's stop grace
LOGOUT_TIMEOUT_S = 2.0
#: a kept session unused this long is used by warm(): NVFlare's admin server ends a session
#: idle for 30 min (its default), and a call on an ended session fails and logs in again
KEEPALIVE_S = 600.0
#: NVFlare's admin client challenges the server right after it starts its cell, before the
#: cell has connected, and tries again a fixed second later (AdminAPI.connect builds its
#: Authenticator with retry_interval=1.0): a new session took 1.17 s where 0.25 s would do,
#: measured against a running server. A federation of 3 hospitals connects in ~2.3 s, so its
#: first job waited for the login that began when its server came up.
AUTH_RETRY_S = 0.1


@dataclass(frozen=True)
class ClientSeen:
    name: str
    #: epoch seconds of the client's last heartbeat, as the server saw it
    last_connect_time: float | None = None
    #: the NVFlare version the client process runs, as it answered the server
    nvflare_version: str | None = None


@dataclass(frozen=True)
class ServerView:
    status: str
    clients: list[ClientSeen] = field(default_factory=list)
    running_jobs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JobView:
    job_id: str
    name: str
    status: str
    submit_time: float | None = None
    start_time: float | None = None
    duration_s: float | None = None


class FlareUnavailable(Exception):
    """The server could not be reached or did not answer in time (transient)."""


class JobRefused(Exception):
    """The server will never take this submission: not a valid job, not allowed, or its
    token names a job since deleted (permanent)."""


class UnknownJob(LookupError):
    """The server has no job with this id."""


class FlareAdmin(abc.ABC):
    """What the job-controller asks of one federation's NVFlare server."""

    @abc.abstractmethod
    def server_view(self) -> ServerView: ...

    @abc.abstractmethod
    def submit(self, job_dir: Path, submit_token: str) -> str:
        """Submit once per token: a repeat with the same token returns the same job id, also
        when the folder's content changed since (a newer build of the same command).
        Raises JobRefused for a folder that is not a job."""

    @abc.abstractmethod
    def find_submitted(self, submit_token: str) -> str | None: ...

    @abc.abstractmethod
    def job(self, job_id: str) -> JobView:
        """The job's state (status verbatim, name from its meta); UnknownJob if there is none."""

    @abc.abstractmethod
    def jobs(self) -> list[JobView]: ...

    @abc.abstractmethod
    def abort(self, job_id: str) -> None:
        """End the job (FINISHED:ABORTED, also before it ran); harmless once it ended."""

    @abc.abstractmethod
    def download_result(self, job_id: str, destination: Path) -> Path:
        """The job's folder as the server keeps it, moved to destination/<job_id>."""

    @abc.abstractmethod
    def disable_client(self, site: str) -> None: ...

    def connected_clients(self) -> list[str]:
        """The names of the clients connected to the server: what a job waiting for its
        clients needs, without the rest of the server view."""
        return [c.name for c in self.server_view().clients]

    def warm(self) -> None:
        """Be ready for the next call (logged in), so that call does not wait for it."""

    def close(self) -> None:
        """Release any connection held between calls."""


def _challenge_sooner() -> None:
    """Make NVFlare's admin client retry its first challenge after AUTH_RETRY_S, not 1 s. The
    Authenticator is looked up in nvflare.fuel.hci.client.api at each connect, so a subclass
    there changes only the retry interval; an NVFlare without that name is left as it is."""
    from nvflare.fuel.hci.client import api

    stock = getattr(api, "Authenticator", None)
    if stock is None or getattr(stock, "arcflare_retry_s", None) == AUTH_RETRY_S:
        return

    class Authenticator(stock):
        arcflare_retry_s = AUTH_RETRY_S

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.retry_interval = min(self.retry_interval, AUTH_RETRY_S)

    api.Authenticator = Authenticator


def _close(sess: Any) -> None:
    try:
        sess.set_timeout(LOGOUT_TIMEOUT_S)
        sess.close()
    except Exception as exc:  # noqa: BLE001 - closing a broken session may fail too
        log.info("closing the FLARE API session failed", error=repr(exc))


def job_view(meta: dict[str, Any]) -> JobView:
    return JobView(
        job_id=meta.get("job_id", ""),
        name=meta.get("name", ""),
        status=meta.get("status", ""),
        submit_time=meta.get("submit_time"),
        start_time=_start_time(meta),
        duration_s=_duration(meta.get("duration")),
    )


def _start_time(meta: dict[str, Any]) -> float | None:
    value = meta.get("start_time")
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _duration(value: Any) -> float | None:
    """NVFlare reports duration as str(timedelta): '0:00:17.345678' or '1 day, 1:00:00'."""
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or ":" not in value:
        return None
    days, _, clock = value.rpartition(", ")
    try:
        hours, minutes, seconds = clock.split(":")
        whole_days = int(days.split()[0]) if days else 0
        return whole_days * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class FlareApiAdmin(FlareAdmin):
    def __init__(
        self,
        admin_kit_dir: Path,
        admin_name: str,
        *,
        connect_timeout_s: float = 10.0,
        command_timeout_s: float = 30.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        self.admin_kit_dir = Path(admin_kit_dir)
        self.admin_name = admin_name
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._lock = threading.RLock()
        self._sess: Any = None
        self._used = 0.0  # monotonic time of the session's last answered call
        #: client name -> (NVFlare version, when it was asked)
        self._versions: dict[str, tuple[str | None, float]] = {}

    def _open(self) -> Any:
        from nvflare.fuel.flare_api.flare_api import new_secure_session

        _challenge_sooner()
        return new_secure_session(
            self.admin_name,
            str(self.admin_kit_dir),
            timeout=self.connect_timeout_s,
            command_timeout=self.command_timeout_s,
        )

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A session of its own, closed on exit (for callers that drive the FLARE API directly)."""
        sess = self._open()
        try:
            yield sess
        finally:
            _close(sess)

    def close(self) -> None:
        with self._lock:
            sess, self._sess = self._sess, None
            if sess is not None:
                _close(sess)

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        from nvflare.fuel.flare_api.api_spec import (
            NoConnection,
            NoReply,
            SessionClosed,
            SessionExpired,
        )

        retryable = (NoConnection, NoReply, SessionClosed, SessionExpired, TimeoutError, ConnectionError)
        with self._lock, tracing.child_span(f"flare_api {what}", kind=SpanKind.CLIENT,
                                            attributes={"rpc.system": "nvflare",
                                                        "rpc.method": what}):
            for attempt in range(1, self.attempts + 1):
                try:
                    if self._sess is None:
                        self._sess = self._open()
                    answer = fn(self._sess)
                    self._used = time.monotonic()
                    return answer
                except retryable as exc:
                    log.warning("a FLARE API call failed", call=what, attempt=attempt, error=str(exc))
                    self.close()  # reconnect on the next attempt
                    if attempt == self.attempts:
                        raise FlareUnavailable(f"{what}: {exc}") from exc
                    time.sleep(self.backoff_s * attempt)
        raise AssertionError("unreachable")

    def warm(self) -> None:
        """Log in now unless a session is open: logging in costs about a second (more on a
        busy machine), which a federation's first job would otherwise wait for between its
        clients connecting and its submission. A server that cannot be reached is left for
        the next call to retry; a session in use is warm already."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._sess is None:
                self._sess = self._open()
                self._used = time.monotonic()
            elif time.monotonic() - self._used > KEEPALIVE_S:
                self._call("check_status", lambda s: s.get_system_info())
        except Exception as exc:  # noqa: BLE001 - warming is a nicety; the next call logs in
            log.info("logging in ahead of use failed; the next call tries again", error=repr(exc))
        finally:
            self._lock.release()

    def connected_clients(self) -> list[str]:
        """One round trip: the server's client list, without asking the clients' versions
        (server_view's second round trip, through the server to each new client)."""
        info = self._call("check_status", lambda s: s.get_system_info())
        return [c.name for c in info.client_info]

    def server_view(self) -> ServerView:
        info = self._call("check_status", lambda s: s.get_system_info())
        names = [c.name for c in info.client_info]
        versions = self._client_versions(names)
        return ServerView(
            status=str(info.server_info.status),
            clients=[ClientSeen(c.name, c.last_connect_time, versions.get(c.name))
                     for c in info.client_info],
            running_jobs=[j.job_id for j in info.job_info],
        )

    def _client_versions(self, names: list[str]) -> dict[str, str | None]:
        """Each connected client's NVFlare version, asked of those not asked recently: one
        round trip to the clients when one (re)appears, none in between."""
        now = time.monotonic()
        stale = [n for n in names if now - self._versions.get(n, (None, -VERSION_TTL_S))[1]
                 >= VERSION_TTL_S]
        if stale:
            try:
                answers = self._call("report_version",
                                     lambda s: s.report_version("client", stale)) or {}
            except Exception as exc:  # noqa: BLE001 - the version is a nicety; status is not
                log.info("report_version_failed", clients=stale, error=repr(exc))
                answers = {}
            for name in stale:
                answer = answers.get(name)
                version = answer.get("version") if isinstance(answer, dict) else None
                self._versions[name] = (str(version) if version else None, now)
        return {n: self._versions[n][0] for n in names if n in self._versions}

    def submit(self, job_dir: Path, submit_token: str) -> str:
        from nvflare.fuel.flare_api.api_spec import (
            AuthorizationError,
            InvalidJobDefinition,
            SubmitTokenConflict,
            SubmitTokenJobDeleted,
        )

        try:
            return self._call("submit_job", lambda s: s.submit_job(str(job_dir), submit_token=submit_token))
        except SubmitTokenConflict as exc:
            # the token's job exists, with other content: that job is the submission
            return exc.existing_job_id or self._submitted(submit_token, exc)
        except (InvalidJobDefinition, AuthorizationError, SubmitTokenJobDeleted) as exc:
            raise JobRefused(str(exc)) from exc

    def _submitted(self, submit_token: str, conflict: Exception) -> str:
        job_id = self.find_submitted(submit_token)
        if job_id is None:
            raise conflict
        return job_id

    def find_submitted(self, submit_token: str) -> str | None:
        jobs = self._call("list_jobs", lambda s: s.list_jobs(submit_token=submit_token))
        return jobs[0]["job_id"] if jobs else None

    def job(self, job_id: str) -> JobView:
        with _unknown_job(job_id):
            return job_view(self._call("get_job_meta", lambda s: s.get_job_meta(job_id)))

    def jobs(self) -> list[JobView]:
        return [job_view(m) for m in self._call("list_jobs", lambda s: s.list_jobs(detailed=True))]

    def abort(self, job_id: str) -> None:
        from nvflare.fuel.flare_api.api_spec import JobNotRunning

        def abort(sess: Any) -> None:
            try:
                sess.abort_job(job_id)
            except JobNotRunning:
                pass  # already finished: nothing to abort, the terminal state stands

        with _unknown_job(job_id):
            self._call("abort_job", abort)

    def download_result(self, job_id: str, destination: Path) -> Path:
        # NVFlare moves its download into destination/<job_id>; start clean so a retry works
        target = destination / job_id
        if target.exists():
            shutil.rmtree(target)
        location = self._call(
            "download_job", lambda s: s.download_job_result(job_id, destination=str(destination))
        )
        return Path(location)

    def disable_client(self, site: str) -> None:
        self._call("disable_client", lambda s: s.disable_client(site))


@contextmanager
def _unknown_job(job_id: str) -> Iterator[None]:
    from nvflare.fuel.flare_api.api_spec import JobNotFound

    try:
        yield
    except JobNotFound as exc:
        raise UnknownJob(job_id) from exc
