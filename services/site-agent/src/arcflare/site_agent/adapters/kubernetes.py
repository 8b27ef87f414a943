"""The Kubernetes observer: the NVFlare client's pod, found by label selector.

It calls exactly three endpoints of the core/v1 API (and its tests stub exactly
these): list pods in a namespace by label selector, read a pod's log, delete a
pod. On Kubernetes the client's log.txt is its container output.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import urllib3
from arcflare.runtime import get_logger
from arcflare.site_agent.logtail import MAX_SCAN_BYTES, Tail, clean_line
from arcflare.site_agent.observer import CannotRestart, LogUnavailable, Observation, SiteObserver
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

log = get_logger(__name__)

#: waiting reasons that no amount of waiting fixes
_BROKEN = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
           "CreateContainerError", "RunContainerError"}
_FIRST_READ_LINES = 500
_REQUEST_TIMEOUT = 10
#: what a call to the API can raise: HTTP errors, transport errors, unexpected payloads
_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, ValidationError, ValueError)


def api_client(kubeconfig: Path | None) -> Any:
    """In-cluster credentials inside a pod, else the kubeconfig (given or default)."""
    if kubeconfig is None:
        try:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            cfg.retries = 1
            return client.ApiClient(cfg)
        except config.ConfigException:
            pass
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig) if kubeconfig else None,
                            client_configuration=cfg, persist_config=False)
    cfg.retries = 1
    return client.ApiClient(cfg)


@dataclass
class _LogCursor:
    identity: str | None = None
    stamp: str | None = None  # the last RFC 3339 stamp read
    read_at: float = 0.0


class KubernetesObserver(SiteObserver):
    kind = "kubernetes"

    def __init__(self, core_v1: Any, *, namespace: str, label_selector: str,
                 container: str | None = None) -> None:
        self.api = core_v1
        self.namespace = namespace
        self.selector = label_selector
        self.container = container
        self.config_problem: str | None = None
        self._health_cursor = _LogCursor()
        self._tail_cursor = _LogCursor()

    @classmethod
    def from_settings(cls, settings: Any) -> KubernetesObserver:
        """The observer; with no usable credentials it still runs and reports why."""
        problem = None
        try:
            api = client.CoreV1Api(api_client(settings.kubeconfig))
        except (config.ConfigException, OSError, ValueError) as exc:
            api, problem = None, (
                f"The agent has no usable Kubernetes credentials ({exc}): run it in the "
                "cluster with a service account, or set ARCFLARE_KUBECONFIG.")
        observer = cls(api, namespace=settings.k8s_namespace,
                       label_selector=settings.label_selector(), container=settings.k8s_container)
        observer.config_problem = problem
        return observer

    # --- observing ----------------------------------------------------------
    def observe(self) -> Observation:
        try:
            pod = self._pod()
        except LogUnavailable as exc:
            return Observation("broken" if self.config_problem else "unknown", detail=str(exc))
        if pod is None:
            return Observation("stopped", detail=(
                f"No pod matches label selector '{self.selector}' in namespace "
                f"'{self.namespace}' yet: check that the site's Azure ML job was submitted "
                "and scheduled on the cluster."))
        name, phase = pod.metadata.name, pod.status.phase
        status = self._container_status(pod)
        restarts = status.restart_count if status else 0
        base = {"pod": name, "restarts": restarts}
        state = status.state if status else None
        if state is not None and state.running is not None:
            return self._running(pod, state.running.started_at, restarts)
        if state is not None and state.waiting is not None:
            return self._waiting(name, state.waiting, status, base)
        if phase == "Succeeded" or (state and state.terminated and state.terminated.exit_code == 0):
            return Observation("stopped", detail=f"The NVFlare client pod {name} has finished.",
                               **base)
        if phase == "Failed" or (state and state.terminated):
            return Observation("exited", detail=(
                f"The NVFlare client pod {name} failed ({_termination(status)}): read its "
                "logs, then restart the site."), **base)
        return Observation("starting", detail=(
            f"The NVFlare client pod {name} is {phase or 'pending'}{_condition(pod)}."), **base)

    def _pod(self) -> Any | None:
        if self.config_problem:
            raise LogUnavailable(self.config_problem)
        try:
            pods = self.api.list_namespaced_pod(
                self.namespace, label_selector=self.selector,
                _request_timeout=_REQUEST_TIMEOUT).items or []
        except _API_ERRORS as exc:  # API down, RBAC, DNS: say so, never crash
            raise LogUnavailable(_api_problem(exc, f"list pods in namespace {self.namespace}"))
        live = [p for p in pods if p.metadata.deletion_timestamp is None] or pods
        if not live:
            return None
        return max(live, key=lambda p: p.metadata.creation_timestamp or datetime.min)

    def _container_status(self, pod: Any) -> Any | None:
        statuses = pod.status.container_statuses or []
        if self.container:
            return next((s for s in statuses if s.name == self.container), None)
        return statuses[0] if statuses else None

    def _waiting(self, name: str, waiting: Any, status: Any, base: dict) -> Observation:
        reason = waiting.reason or "Waiting"
        if reason == "CrashLoopBackOff":
            return Observation("restarting", detail=(
                f"The NVFlare client in pod {name} keeps crashing ({status.restart_count} "
                f"restarts, last: {_termination(status)}): read the pod's previous logs."),
                **base)
        if reason in _BROKEN:
            return Observation("broken", detail=(
                f"The NVFlare client pod {name} cannot start ({reason}: "
                f"{(waiting.message or '').strip()[:200]}): check the image and its registry "
                "credentials."), **base)
        return Observation("starting", detail=f"The NVFlare client pod {name} is {reason}.",
                           **base)

    def _running(self, pod: Any, started: datetime | None, restarts: int) -> Observation:
        identity = f"{pod.metadata.uid}/{restarts}"
        return Observation(
            "running", identity=identity, pod=pod.metadata.name, restarts=restarts,
            started_at=started.timestamp() if started else None,
            new_log_lines=self._new_lines(pod.metadata.name, identity, self._health_cursor))

    def new_lines(self, file: str) -> list[str]:
        """New lines of the client container's output (periodic tails)."""
        if file != "log.txt":
            raise LogUnavailable(f"on Kubernetes only log.txt can be tailed, not {file}")
        pod = self._pod()
        if pod is None:
            return []
        return self._new_lines(pod.metadata.name, pod.metadata.uid, self._tail_cursor)

    def _new_lines(self, name: str, identity: str, cursor: _LogCursor) -> list[str]:
        """Lines since the cursor's last read, deduplicated on the API's RFC 3339 stamps."""
        if cursor.identity != identity:
            cursor.identity, cursor.stamp = identity, None
        first = cursor.stamp is None
        since = int(time.monotonic() - cursor.read_at) + 5  # overlap; deduplicated below
        try:
            text = self._read_log(name, tail_lines=_FIRST_READ_LINES if first else None,
                                  since_seconds=None if first else since, timestamps=True)
            cursor.read_at = time.monotonic()
        except _API_ERRORS as exc:
            log.warning("pod log not readable", pod=name, error=repr(exc))
            return []
        lines = []
        for raw in text.splitlines():
            stamp, _, line = raw.partition(" ")
            if cursor.stamp is not None and stamp <= cursor.stamp:
                continue
            cursor.stamp = stamp
            lines.append(clean_line(line.encode())[0])
        return lines

    def _read_log(self, name: str, **params: Any) -> str:
        params = {k: v for k, v in params.items() if v is not None}
        if self.container:
            params["container"] = self.container
        text = self.api.read_namespaced_pod_log(
            name, self.namespace, limit_bytes=MAX_SCAN_BYTES, _request_timeout=_REQUEST_TIMEOUT,
            **params)
        return text if isinstance(text, str) else str(text)

    # --- logs ---------------------------------------------------------------
    def tail(self, file: str, lines: int) -> Tail:
        if file != "log.txt":
            raise LogUnavailable(
                f"on Kubernetes only log.txt (the client container's output) can be tailed, "
                f"not {file}")
        pod = self._pod()
        if pod is None:
            raise LogUnavailable(f"no pod matches label selector '{self.selector}' in namespace "
                                 f"'{self.namespace}' yet")
        try:
            text = self._read_log(pod.metadata.name, tail_lines=lines)
        except _API_ERRORS as exc:
            raise LogUnavailable(_api_problem(exc, f"read the log of pod {pod.metadata.name}"))
        out, truncated = [], False
        for raw in text.splitlines()[-lines:]:
            line, cut = clean_line(raw.encode("utf-8", "replace"))
            out.append(line)
            truncated = truncated or cut
        return Tail(out, truncated)

    # --- restarting -------------------------------------------------------------
    def restart(self) -> str:
        try:
            pod = self._pod()
        except LogUnavailable as exc:
            raise CannotRestart(str(exc)) from None
        if pod is None:
            raise CannotRestart(f"no pod matches label selector '{self.selector}' in namespace "
                                f"'{self.namespace}': there is nothing to restart")
        name = pod.metadata.name
        try:
            self.api.delete_namespaced_pod(name, self.namespace, _request_timeout=_REQUEST_TIMEOUT)
        except _API_ERRORS as exc:
            raise CannotRestart(_api_problem(exc, f"delete pod {name}")) from None
        log.info("site client pod deleted; its controller recreates it", pod=name)
        return f"pod:{self.namespace}/{name}"


def _termination(status: Any) -> str:
    last = status.last_state.terminated if status and status.last_state else None
    if last is None and status and status.state:
        last = status.state.terminated
    if last is None:
        return "no exit recorded"
    return f"{last.reason or 'exited'}, exit code {last.exit_code}"


def _condition(pod: Any) -> str:
    for cond in pod.status.conditions or []:
        if cond.status == "False" and cond.reason:
            return f" ({cond.reason}: {(cond.message or '').strip()[:200]})"
    return ""


def _api_problem(exc: Exception, action: str) -> str:
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return (f"The agent is not allowed to {action} (HTTP {status}): grant its service "
                "account get/list on pods and pods/log (and delete to allow restarts).")
    if status == 404:
        return f"Cannot {action}: not found (HTTP 404); check the namespace."
    if status:
        return f"The Kubernetes API refused to {action} (HTTP {status})."
    return f"The Kubernetes API cannot be reached to {action}: {type(exc).__name__}."
