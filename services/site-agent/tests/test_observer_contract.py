"""What every SiteObserver promises, run against each adapter with no client at all:
observing never raises, logs outside the allow-list and restarts of nothing are
refused with a sentence."""
from __future__ import annotations

import pytest
from arcflare.site_agent.adapters.process import ProcessObserver
from arcflare.site_agent.bootstrap import build_observer
from arcflare.site_agent.observer import CannotRestart, LogUnavailable, Observation
from site_agent_kube_stub import KubeStub


@pytest.fixture(params=["process", "kubernetes"])
def observer(request, tmp_path, agent_settings):
    if request.param == "process":
        yield ProcessObserver(tmp_path / "no-such-workspace")
        return
    stub = KubeStub()
    try:
        yield build_observer(agent_settings(observer="kubernetes", k8s_namespace="hospital",
                                            kubeconfig=stub.kubeconfig(tmp_path / "kc")))
    finally:
        stub.close()


def test_observing_nothing_is_an_observation_with_a_reason(observer):
    obs = observer.observe()

    assert isinstance(obs, Observation)
    assert obs.runtime in {"stopped", "broken"} and obs.detail.endswith(".")


def test_a_log_that_is_not_there_is_refused_with_a_sentence(observer):
    with pytest.raises(LogUnavailable) as refused:
        observer.tail("log.txt", 10)
    with pytest.raises(LogUnavailable):
        observer.tail("../../etc/passwd", 10)

    assert len(str(refused.value)) > 10


def test_restarting_nothing_is_refused(observer):
    with pytest.raises(CannotRestart):
        observer.restart()
