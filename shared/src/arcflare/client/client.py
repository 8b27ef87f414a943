"""Client: what the CLI, notebooks and tests use to talk to a federation's services."""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from arcflare.artifacts import ArtifactStore, open_artifact_store
from arcflare.artifacts.folders import fetch_folder
from arcflare.artifacts.unpacking import Caps
from arcflare.bus import connect
from arcflare.bus.codec import to_outgoing
from arcflare.bus.port import Bus
from arcflare.client.job_packages import job_name, upload_job
from arcflare.contracts.artifacts import JOB_RESULT, ArtifactRef
from arcflare.contracts.base import Command
from arcflare.contracts.commands import ArtifactPackage, SubmitJob
from arcflare.contracts.envelope import Envelope, describe_errors
from arcflare.contracts.outcomes import ACCEPTED, is_failure, outcome_types
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION, TOPOLOGY
from arcflare.observability import messaging, tracing
from arcflare.runtime import identity
from arcflare.runtime.admission import Admission, Refused
from arcflare.runtime.logging import get_logger
from arcflare.runtime.settings import Settings
from arcflare.trust.jws import Signer

log = get_logger("arcflare.client")

_SESSION_QUEUES = {q.name for q in TOPOLOGY.queues if q.options.requires_session}
#: what a downloaded job result may hold (a model and the server's logs, not a data set)
RESULT_CAPS = Caps(max_bytes=8 * 1024**3, max_files=100_000)


class CommandFailed(Exception):
    """The command's outcome was CommandRejected or a *Failed event."""

    def __init__(self, outcome: Envelope) -> None:
        payload = outcome.payload
        reason = payload.get("reason", "")
        detail = payload.get("detail") or ""
        errors = describe_errors(payload.get("errors", []))
        text = ", ".join(x for x in (reason, detail, errors) if x)
        super().__init__(f"{outcome.type}: {text}" if text else outcome.type)
        self.outcome = outcome


class Client:
    """Sends commands signed as a person, and follows events, believing only those whose
    signature and sender check out (a forged outcome must not end a --wait)."""

    def __init__(self, settings: Settings | None = None, *, bus: Bus | None = None,
                 issued_by: str | None = None, signer: Signer | None = None,
                 artifacts: ArtifactStore | None = None) -> None:
        self.settings = settings or Settings()
        #: issued_by chooses among the person identities in the data dir; a signer given
        #: explicitly (a notebook's own certificate) wins
        self.signer = signer or identity.person_signer(self.settings, issued_by)
        self.issued_by = self.signer.principal.id
        self.admission = Admission(identity.verifier(self.settings),
                                   clock_skew_s=self.settings.clock_skew_s)
        self.bus = bus or connect(self.settings)
        tracing.configure("arcflare-sdk")  # as OTEL_* say, unless the program traces already
        messaging.use_bus(self.bus)
        # where followers start: only what happens after this client was made
        self._cursors = {topic: self._head(topic) for topic in ("events", "telemetry")}
        self._commands: dict[str, str] = {}
        self._artifacts = artifacts

    def close(self) -> None:
        self.bus.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commands ---------------------------------------------------------------
    def send(self, command: Command, *, ttl: timedelta | None = None) -> str:
        """Send a command to its queue (session = federation); returns its id. Traced, it is
        the start of a trace of its own (or a part of the caller's current one)."""
        envelope = Envelope.wrap(command)
        with messaging.sending(command.channel, envelope) as traceparent:
            message = to_outgoing(envelope, signer=self.signer,
                                  session=command.channel in _SESSION_QUEUES, time_to_live=ttl)
            self.bus.send(command.channel, [messaging.stamp(message, traceparent)])
        self._commands[envelope.message_id] = envelope.type
        return envelope.message_id

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store the settings name (ARCFLARE_ARTIFACT_STORE), opened on first use."""
        if self._artifacts is None:
            self._artifacts = open_artifact_store(self.settings)
        return self._artifacts

    def upload_job(self, path: Path | str) -> ArtifactPackage:
        """A job folder or archive of this machine, uploaded: the package to submit."""
        return upload_job(self.artifacts, Path(path))

    def submit_job(self, federation: str, path: Path | str, *, name: str | None = None,
                   **fields: Any) -> str:
        """Upload a job folder or archive and send SubmitJob with its reference; returns the
        command id (wait() gives its outcome). fields: min_clients, sites, timeout_s, ..."""
        package = self.upload_job(path)
        return self.send(SubmitJob(federation=federation, name=name or job_name(Path(path)),
                                   package=package, **fields))

    def download_result(self, result: ArtifactRef | dict, dest: Path | str) -> Path:
        """A job's result (JobCompleted.result: the server's job folder with the global model
        and logs) fetched from the artifact store, verified and unpacked into dest, which
        must not exist yet."""
        ref = result if isinstance(result, ArtifactRef) else ArtifactRef.model_validate(result)
        return fetch_folder(self.artifacts, ref, Path(dest), area="results", caps=RESULT_CAPS,
                            media_types={JOB_RESULT}, what=f"result {ref.locator}")

    def wait(self, command_id: str, timeout: float = 120.0, *,
             command_type: str | None = None, raise_on_failure: bool = False,
             settled: bool = False) -> Envelope:
        """The event that answers the command: its success event, a *Failed event or
        CommandRejected. Raises TimeoutError when none arrives in time. With settled, an
        outcome that only accepts the command (a SubmitJob's JobWaitingForClients) is passed
        over for the one that settles it (JobSubmitted or JobFailed)."""
        kind = command_type or self._commands.get(command_id)
        wanted = set(outcome_types(kind)) if kind else None
        passed_over = set(ACCEPTED) if settled else set()
        for envelope in self.follow(timeout=timeout, topics=("events", "telemetry")):
            if envelope.causation_id != command_id or envelope.type in passed_over:
                continue
            if wanted is None or envelope.type in wanted:
                if raise_on_failure and is_failure(envelope.type):
                    raise CommandFailed(envelope)
                return envelope
        raise TimeoutError(f"no outcome for command {command_id} within {timeout:.0f} s")

    # --- events -----------------------------------------------------------------
    def follow(
        self,
        types: Iterable[str] | None = None,
        federation: str | None = None,
        *,
        timeout: float | None = None,
        topics: Iterable[str] = ("events",),
        from_start: bool = False,
        until_idle: bool = False,
        poll: float = 0.1,
    ) -> Iterator[Envelope]:
        """Events as they are published (peeked from the `cli` subscription, so following
        disturbs no consumer). Ends after `timeout` seconds (never if None), or with
        until_idle once everything present has been read."""
        wanted = set(types) if types else None
        topics = tuple(topics)
        cursors = {t: (None if from_start else self._cursors.get(t)) for t in topics}
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            got = 0
            for topic in topics:
                batch = self.bus.peek(topic, FOLLOW_SUBSCRIPTION, max_messages=256,
                                      from_sequence_number=cursors[topic])
                for received in batch:
                    cursors[topic] = received.sequence_number + 1
                    got += 1
                    try:
                        envelope = self.admission.admit(received, command=False).envelope
                    except Refused as refused:
                        log.warning("ignoring a message that is not what it claims",
                                    message_id=received.message_id, reason=refused.reason,
                                    detail=refused.detail)
                        continue
                    if wanted and envelope.type not in wanted:
                        continue
                    if federation and envelope.federation != federation:
                        continue
                    yield envelope
            if not got:
                if until_idle:
                    return
                time.sleep(poll)

    def _head(self, topic: str) -> int | None:
        """The sequence number after the newest message now in the follow subscription."""
        last = None
        cursor = None
        while True:
            batch = self.bus.peek(topic, FOLLOW_SUBSCRIPTION, max_messages=256,
                                  from_sequence_number=cursor)
            if not batch:
                break
            last = batch[-1].sequence_number
            cursor = last + 1
        return None if last is None else last + 1
