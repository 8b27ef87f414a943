"""One health word, one short code and one sentence per participant, joined from the facts
of their authors: the deployer (is the process meant to run?), the site's agent (what the
client does), the server as the job-controller observed it (who registered, is a job on).

The deployer's word wins when it says the participant is not meant to run (stopped,
crashed, failed, removed): an agent's last heartbeat from before that is no longer news.
"""
from __future__ import annotations

from typing import Any

#: the agent sees a process but the server never saw the client register
NEVER_REGISTERED = "process up, never registered: check server address/firewall/cert"
#: codes for agents that send none (before they did), from their health word
_CODE_OF_HEALTH = {"connected": "registered"}

Verdict = tuple[str, str, str]  # (health word, code, sentence)


def _ended(lifecycle: str | None, reason: str | None, what: str) -> Verdict | None:
    match lifecycle:
        case "deploy_failed":
            return "failed", "deploy_failed", f"The deployer could not start {what}: {reason}"
        case "crashed":
            return "crashed", "crashed", (f"{what.capitalize()} ended on its own; the deployer "
                                          "found its process gone (see its log.txt).")
        case "stopped" if reason == "torn down":
            return "stopped", "torn_down", "The federation was torn down."
        case "stopped":
            return "stopped", "stopped", f"{what.capitalize()} was stopped on request."
        case "removed":
            return "removed", "removed", "Removed from the federation; its kit was deleted."
    return None


def site_verdict(site: dict[str, Any], server_view: str) -> Verdict:
    if site.get("removed"):
        return "removed", "removed", "Removed from the federation; its kit was deleted."
    ended = _ended(site.get("lifecycle"), site.get("lifecycle_reason"), "the site's client")
    if ended:
        return ended
    health = site.get("health")
    if health is None:
        if site.get("lifecycle") is None:
            return "not deployed", "not_deployed", "Provisioned; not deployed yet."
        return "unknown", "no_heartbeat", ("Started by the deployer; no heartbeat from its "
                                           "site agent yet.")
    code = site.get("diagnosis_code") or _CODE_OF_HEALTH.get(health, health)
    sentence = site.get("diagnosis") or ""
    agent_sees_process = health in ("starting", "connected", "degraded")
    if agent_sees_process and server_view == "not registered" and not sentence:
        return health, "never_registered", NEVER_REGISTERED
    return health, code, sentence


def engine_of(server_status: str | None, running_jobs: list[str] | None) -> str | None:
    """NVFlare's engine: idle, or running a job. Its status is "started" while a job runs
    and "stopped" when none does, whether or not the server process is up."""
    if server_status is None:
        return None
    if running_jobs or server_status == "started":
        return "running job"
    if server_status == "stopped":
        return "idle"
    return server_status.lower()


def server_verdict(server: dict[str, Any], registered: int | None, expected: int) -> Verdict:
    ended = _ended(server["lifecycle"], server["lifecycle_reason"], "the server")
    if ended:
        return ended
    endpoint = server.get("endpoint") or "its endpoint"
    engine = server.get("engine")
    if server["lifecycle"] is None and engine is None:
        return "not deployed", "not_deployed", "Provisioned; the server is not deployed yet."
    if engine is None:
        return "unknown", "not_observed", (f"Listening at {endpoint}; the job-controller has "
                                           "not reported its engine yet.")
    jobs = ", ".join(server.get("running_jobs") or []) or "none"
    return engine, "serving", (f"Serving at {endpoint}: engine {server['engine_status']}, "
                               f"running jobs: {jobs}; {registered} of {expected} sites "
                               "registered.")
