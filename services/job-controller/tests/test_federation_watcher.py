"""The job admins are logged in ahead of use (when the deployer announces a server, and when
the federation watcher first reaches one), so a federation's first job does not wait for a
login between its clients connecting and its submission (the fake admins here count what they are asked; the real session is
test_flare_admin's and test_flare_jobs')."""
from __future__ import annotations

from arcflare.job_controller.adapters.flare_admin import FlareUnavailable, ServerView
from arcflare.job_controller.flare_admins import FlareAdmins
from arcflare.job_controller.watcher import FederationWatcher
from jc_fakes import FakeFlareAdmin, fake_service


class CountingAdmin(FakeFlareAdmin):
    def __init__(self, reachable: bool = True) -> None:
        super().__init__(["site-1"])
        self.reachable, self.warmed = reachable, 0

    def server_view(self) -> ServerView:
        if not self.reachable:
            raise FlareUnavailable("check_status: cannot connect to server")
        return super().server_view()

    def warm(self) -> None:
        self.warmed += 1


def watcher_for(svc, settings, observer: CountingAdmin, jobs: CountingAdmin) -> FederationWatcher:
    return FederationWatcher(svc.state, FlareAdmins(svc.state, lambda fed: observer), settings,
                             keep_warm=FlareAdmins(svc.state, lambda fed: jobs))


def test_a_server_that_answers_gets_its_job_admin_logged_in(tmp_path) -> None:
    observer, jobs = CountingAdmin(), CountingAdmin()
    with fake_service(tmp_path, jobs) as (svc, _client, _admin, settings):
        watcher = watcher_for(svc, settings, observer, jobs)

        watcher.check()

    assert jobs.warmed == 1


def test_a_server_not_up_yet_is_not_logged_into(tmp_path) -> None:
    observer, jobs = CountingAdmin(reachable=False), CountingAdmin()
    with fake_service(tmp_path, jobs) as (svc, _client, _admin, settings):
        watcher = watcher_for(svc, settings, observer, jobs)

        watcher.check()
        observer.reachable = True
        watcher.check()  # the observation failed, so it was not yet due: tried again

    assert jobs.warmed == 1


def test_the_announced_server_gets_its_job_admin_logged_in_at_once(tmp_path) -> None:
    from arcflare.contracts.events import ServerDeployed

    from tests.support.signing import publish, signer_for

    jobs = CountingAdmin()
    with fake_service(tmp_path, jobs) as (svc, _client, _admin, settings):
        publish(svc.bus, signer_for(settings.data_dir, "service:deployer"),
                ServerDeployed(federation="fed", endpoint="localhost:8002", backend="local",
                               handle="4242", generation=1))
        svc.drain()

    assert jobs.warmed == 1


def test_a_server_announced_for_a_federation_not_known_here_is_passed_over(tmp_path) -> None:
    from arcflare.contracts.events import ServerDeployed

    from tests.support.signing import publish, signer_for

    jobs = CountingAdmin()
    with fake_service(tmp_path, jobs) as (svc, _client, _admin, settings):
        publish(svc.bus, signer_for(settings.data_dir, "service:deployer"),
                ServerDeployed(federation="elsewhere", endpoint="localhost:8002",
                               backend="local", handle="4242", generation=1))
        svc.drain()
        dead = svc.bus.peek("events", "job-controller", max_messages=10,
                            sub_queue="deadletter")

    assert jobs.warmed == 0 and dead == []


def test_an_accepted_submit_is_submitted_at_once_not_at_the_watchers_next_tick(tmp_path) -> None:
    import threading
    import time

    from arcflare.contracts.commands import RecipePackage, SubmitJob
    from arcflare.job_controller.watcher import JobWatcher

    admin = FakeFlareAdmin(["site-1", "site-2"])
    with fake_service(tmp_path, admin, job_poll_interval_s=60) as (svc, client, _, settings):
        watcher = JobWatcher(svc.state, svc.dependencies["flare_admins"], settings,
                             svc.dependencies["artifacts"])
        svc.dependencies["job_watch"] = watcher.wake
        stop = threading.Event()
        watching = threading.Thread(target=watcher, args=(stop,))
        watching.start()
        try:
            watcher.wake.set()  # its first look: nothing waits yet
            time.sleep(0.2)
            client.send(SubmitJob(federation="fed", name="lr",
                                  package=RecipePackage(recipe="fedavg-logreg")))
            svc.drain()
            deadline = time.monotonic() + 10
            while not admin.submitted and time.monotonic() < deadline:
                time.sleep(0.05)
            submitted = dict(admin.submitted)
        finally:
            stop.set()
            watching.join(5)

    assert len(submitted) == 1  # within 10 s of a 60 s tick: the commit woke the watcher
    assert not watching.is_alive()  # and a stop is seen between ticks
