"""A job's submission and its later events (done by the watcher, long after the SubmitJob was
handled) continue the trace of the SubmitJob that started it."""
from __future__ import annotations

from pathlib import Path

import pytest
from arcflare.client import Client
from arcflare.contracts.commands import RecipePackage, SubmitJob
from arcflare.job_controller.adapters.flare_admin import JobView
from arcflare.job_controller.bootstrap import bootstrap
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.job_controller.watcher import JobWatcher
from arcflare.observability import tracing
from jc_fakes import FakeFlareAdmin, provisioned

from tests.support.signing import as_provisioner
from tests.support.spans import recorded_spans


class SteppingAdmin(FakeFlareAdmin):
    """NVFlare's view of the job: whatever status the test sets."""

    status = "SUBMITTED"

    def job(self, job_id: str) -> JobView:
        return JobView(job_id, "logreg", self.status, duration_s=3.0)


@pytest.fixture
def recorded():
    with recorded_spans() as exporter:
        yield exporter


def test_the_watchers_job_events_belong_to_the_submit_jobs_trace(tmp_path: Path, recorded):
    admin = SteppingAdmin(["site-1", "site-2"])
    settings = JobControllerSettings(data_dir=tmp_path)
    svc = bootstrap(settings, admin_factory=lambda fed: admin, watch=False)
    as_provisioner(svc, provisioned())
    svc.drain()
    client = Client(settings)
    watcher = JobWatcher(svc.state, svc.dependencies["flare_admins"], settings,
                         svc.dependencies["artifacts"])
    try:
        with tracing.span("arcflare job submit", root=True) as cli:
            client.send(SubmitJob(federation="fed", name="logreg", min_clients=2,
                                  package=RecipePackage(recipe="fedavg-logreg",
                                                        parameters={"rounds": 2})))
        svc.drain()
        watcher.client_wait.poll()  # the clients are there: submitted to NVFlare now
        for status in ("RUNNING", "FINISHED:COMPLETED"):
            admin.status = status
            watcher.poll_jobs()
        svc.drain()
        published = {m.subject: dict(m.application_properties)
                     for m in svc.bus.peek("events", "cli", max_messages=100)}
    finally:
        client.close()
        svc.stop()

    trace_id = cli.get_span_context().trace_id
    for event in ("JobWaitingForClients", "JobSubmitted", "JobStatusChanged", "JobCompleted"):
        assert tracing.parse(published[event]["traceparent"]).trace_id == trace_id, event
    spans = {s.name: s for s in recorded.get_finished_spans()}
    handled = spans["process job-controller"]
    for resumed in ("job submission", "job status changed", "job finished"):
        assert spans[resumed].parent.span_id == handled.context.span_id
        assert spans[resumed].context.trace_id == trace_id
