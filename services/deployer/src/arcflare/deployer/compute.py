"""The compute port: where a participant (the server or a site) runs.

`local` runs NVFlare processes from the kits on this machine; `azureml` submits
Azure ML command jobs. Both are idempotent: deploying a participant that already
runs adopts it instead of starting a second copy.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from arcflare.contracts.artifacts import ArtifactRef
from arcflare.contracts.fields import ComputeSpec, DataInput

SERVER = "server"

Role = Literal["server", "client"]
RunStatus = Literal["starting", "running", "exited", "failed", "unknown"]


class DeploymentError(Exception):
    """A deployment that cannot succeed until a person fixes its cause (the reason says how)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """One participant to run: the federation's server or one of its sites."""

    federation: str
    name: str  # SERVER or the site name
    #: what a compute runs: before a deploy, `file:` of the kit in the deployer's own cache
    #: (or the Azure ML asset); as recorded, the announced kit_ref
    kit_ref: str
    compute: ComputeSpec = field(default_factory=ComputeSpec)
    #: host:port the server listens on (for the server: what must accept connections)
    endpoint: str | None = None
    #: bumped for every new process or job, so Azure ML job names stay unique per attempt
    generation: int = 1
    #: the site's data inputs, bound to its client as ARCFLARE_INPUT_<NAME> (none for the server)
    data: tuple[DataInput, ...] = ()
    #: the kit in the artifact store, as the provisioner announced it
    kit: ArtifactRef | None = None

    @property
    def role(self) -> Role:
        return "server" if self.name == SERVER else "client"


@dataclass(frozen=True)
class Placement:
    """Where a target runs now: enough to find it again after a restart."""

    backend: str
    handle: str  # pid or Azure ML job name
    pid: int | None = None
    pgid: int | None = None
    create_time: float | None = None
    workspace: str | None = None
    generation: int = 1
    #: true when a running copy was found and adopted instead of started
    adopted: bool = False
    #: false while it is only started (a local server not yet listening, an Azure ML job
    #: still queued): the watcher announces it once it runs
    ready: bool = True


@dataclass(frozen=True)
class Observation:
    status: RunStatus
    detail: str = ""


class Compute(abc.ABC):
    backend: ClassVar[str]
    #: how often the watcher looks at a placement that is not ready yet; None: its usual
    #: interval (an Azure ML job queues for minutes, a local server listens within seconds)
    starting_poll_s: ClassVar[float | None] = None

    @abc.abstractmethod
    def deploy(self, target: Target, previous: Placement | None = None) -> Placement:
        """Run the target, or adopt its running copy, without waiting for it: a placement
        that is not ready yet is announced by the watcher once observe() says running.
        Raises DeploymentError for causes a person must fix."""

    @abc.abstractmethod
    def stop(self, placement: Placement) -> None:
        """Stop it (and everything it started); stopping a stopped one is a no-op."""

    @abc.abstractmethod
    def observe(self, placement: Placement) -> Observation:
        """Its state now, without side effects. For a placement not ready yet: starting,
        running once it serves, failed once it cannot (the watcher then stops it)."""

    def expected_exit(self, placement: Placement) -> bool:
        """True while (or after) this process is being stopped on request."""
        return False

    def stopped_with_stack(self, placement: Placement) -> bool:
        """True when the process ended because the whole local stack was stopped
        (`arcflare local down`), so a restarted deployer does not call it a crash."""
        return False


class Computes:
    """The compute adapters by backend name; an adapter is built on first use, so a
    deployer without Azure ML settings still runs local federations."""

    def __init__(self, factories: Mapping[str, Callable[[], Compute]]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, Compute] = {}

    def get(self, backend: str) -> Compute:
        if backend not in self._built:
            factory = self._factories.get(backend)
            if factory is None:
                raise DeploymentError(
                    f"compute.backend {backend!r} is not available in this deployer; "
                    f"use one of: {', '.join(sorted(self._factories))}"
                )
            self._built[backend] = factory()
        return self._built[backend]

    def built(self) -> dict[str, Compute]:
        return dict(self._built)
