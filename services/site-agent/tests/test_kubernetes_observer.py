"""The Kubernetes observer against a loopback stub of the three endpoints it calls."""
from __future__ import annotations

import pytest
from arcflare.client.client import Client
from arcflare.contracts.commands import RestartSiteClient
from arcflare.site_agent.adapters.kubernetes import KubernetesObserver
from arcflare.site_agent.bootstrap import bootstrap, build_observer
from arcflare.site_agent.health import HealthModel
from arcflare.site_agent.observer import CannotRestart, LogUnavailable
from site_agent_kube_stub import CRASH_LOOP, LAST_ERROR, RUNNING, KubeStub, pod

REGISTERED = ("2026-11-29 08:00:07,100 - FederatedClient - INFO - Successfully registered "
              "client:site-1 for project fed-a.")


@pytest.fixture
def stub():
    server = KubeStub()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def observer(stub, agent_settings, tmp_path) -> KubernetesObserver:
    settings = agent_settings(observer="kubernetes", k8s_namespace="hospital",
                              kubeconfig=stub.kubeconfig(tmp_path / "kubeconfig"))
    built = build_observer(settings)
    assert isinstance(built, KubernetesObserver)
    return built


def test_a_running_pod_that_registered_is_connected(stub, observer):
    stub.pods = [pod("nvflare-site-1-abc", state=RUNNING)]
    stub.logs["nvflare-site-1-abc"] = "starting\n" + REGISTERED + "\n"

    obs = observer.observe()
    health = HealthModel().update(obs)[-1]

    assert obs.runtime == "running" and obs.pod == "nvflare-site-1-abc"
    assert health.status == "connected"
    assert "site-1 (project fed-a)" in health.diagnosis
    lists = [q for m, path, q in stub.requests if path == "/api/v1/namespaces/hospital/pods"]
    assert lists[0]["labelSelector"] == "arcflare.io/site=site-1"


def test_log_lines_are_read_once_across_observations(stub, observer):
    stub.pods = [pod("p1", state=RUNNING)]
    stub.logs["p1"] = REGISTERED + "\n"
    first = observer.observe()
    stub.logs["p1"] += ("2026-11-29 08:01:00,000 - CoreCell - ERROR - cannot send to 'server': "
                        "target_unreachable\n")

    second = observer.observe()

    assert first.new_log_lines == [REGISTERED]
    assert len(second.new_log_lines) == 1 and "target_unreachable" in second.new_log_lines[0]


def test_a_crash_looping_pod_is_crashed_with_its_last_exit(stub, observer):
    stub.pods = [pod("p1", state=CRASH_LOOP, restarts=7, last_state=LAST_ERROR)]

    obs = observer.observe()
    health = HealthModel().update(obs)[-1]

    assert obs.runtime == "restarting" and obs.restarts == 7
    assert health.status == "crashed"
    assert "7 restarts" in health.diagnosis and "exit code 1" in health.diagnosis


def test_a_missing_pod_is_stopped_and_names_the_selector(stub, observer):
    stub.pods = []

    health = HealthModel().update(observer.observe())[-1]

    assert health.status == "stopped"
    assert "arcflare.io/site=site-1" in health.diagnosis and "hospital" in health.diagnosis
    with pytest.raises(LogUnavailable):
        observer.tail("log.txt", 10)
    with pytest.raises(CannotRestart):
        observer.restart()


def test_an_image_that_cannot_be_pulled_is_misconfigured(stub, observer):
    stub.pods = [pod("p1", phase="Pending", state={"waiting": {
        "reason": "ImagePullBackOff", "message": "pull access denied"}})]

    health = HealthModel().update(observer.observe())[-1]

    assert health.status == "misconfigured" and "ImagePullBackOff" in health.diagnosis


def test_tail_reads_the_pod_log_and_refuses_other_files(stub, observer):
    stub.pods = [pod("p1", state=RUNNING)]
    stub.logs["p1"] = "\n".join(f"line {i}" for i in range(50))

    tail = observer.tail("log.txt", 5)

    assert tail.lines == [f"line {i}" for i in range(45, 50)]
    with pytest.raises(LogUnavailable, match="only log.txt"):
        observer.tail("error_log.txt", 5)


def test_restart_deletes_the_pod(stub, observer):
    stub.pods = [pod("p1", state=RUNNING)]

    handle = observer.restart()

    assert handle == "pod:hospital/p1"
    assert stub.deleted == ["p1"]
    assert ("DELETE", "/api/v1/namespaces/hospital/pods/p1") in [(m, p) for m, p, _ in
                                                                  stub.requests]


def test_an_unreachable_api_is_unknown_not_a_crash(agent_settings, tmp_path):
    stub = KubeStub()
    config = stub.kubeconfig(tmp_path / "kubeconfig")
    stub.close()  # nothing listens there any more
    observer = build_observer(agent_settings(observer="kubernetes", k8s_namespace="hospital",
                                             kubeconfig=config))

    health = HealthModel().update(observer.observe())[-1]

    assert health.status == "unknown" and "cannot be reached" in health.diagnosis


def test_only_the_three_endpoints_are_called(stub, observer):
    stub.pods = [pod("p1", state=RUNNING)]
    stub.logs["p1"] = REGISTERED
    observer.observe()
    observer.tail("log.txt", 3)
    observer.restart()

    paths = {(m, p) for m, p, _ in stub.requests}

    assert paths == {("GET", "/api/v1/namespaces/hospital/pods"),
                     ("GET", "/api/v1/namespaces/hospital/pods/p1/log"),
                     ("DELETE", "/api/v1/namespaces/hospital/pods/p1")}


def test_periodic_tails_get_each_new_pod_log_line_once(stub, observer):
    stub.pods = [pod("p1", state=RUNNING)]
    stub.logs["p1"] = "one\ntwo\n"
    first = observer.new_lines("log.txt")
    stub.logs["p1"] += "three\n"

    second = observer.new_lines("log.txt")

    assert first == ["one", "two"] and second == ["three"]
    observer.observe()  # the health reader has its own cursor
    assert observer.new_lines("log.txt") == []


def test_no_credentials_at_all_is_misconfigured_not_a_crash(agent_settings, tmp_path,
                                                            monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    observer = build_observer(agent_settings(observer="kubernetes",
                                             kubeconfig=tmp_path / "no-kubeconfig"))

    health = HealthModel().update(observer.observe())[-1]

    assert health.status == "misconfigured" and "ARCFLARE_KUBECONFIG" in health.diagnosis


def test_restart_site_client_over_the_bus_deletes_the_pod(stub, agent_settings, tmp_path):
    settings = agent_settings(observer="kubernetes", k8s_namespace="hospital",
                              allow_restart=True, kubeconfig=stub.kubeconfig(tmp_path / "kc"))
    stub.pods = [pod("p1", state=RUNNING)]
    stub.logs["p1"] = REGISTERED
    svc = bootstrap(settings)
    try:
        client = Client(settings, bus=svc.bus)
        svc.background[0].tick()
        command_id = client.send(RestartSiteClient(federation="fed-a", site="site-1"))
        svc.drain()
        answer = client.wait(command_id, timeout=5)
    finally:
        svc.stop(timeout=5)
        svc.bus.close()

    assert answer.type == "SiteClientRestarted" and answer.payload["handle"] == "pod:hospital/p1"
    assert stub.deleted == ["p1"]
