"""One FlareAdmin per known federation, built from what FederationProvisioned told us."""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from arcflare.artifacts import ArtifactError
from arcflare.artifacts.unpacking import InvalidArchive
from arcflare.flare.kit_artifacts import KitCache
from arcflare.job_controller import tables
from arcflare.job_controller.adapters.flare_admin import FlareAdmin, FlareApiAdmin
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.job_controller.tables import FederationRecord
from arcflare.runtime.state import StateStore


class UnknownFederation(LookupError):
    pass


class OfFederation(Protocol):
    @property
    def federation(self) -> str: ...


T = TypeVar("T", bound=OfFederation)


AdminFactory = Callable[[FederationRecord], FlareAdmin]


class AdminKitUnusable(RuntimeError):
    """The federation's admin kit cannot be had: the message names the kit and why."""


def flare_api_factory(settings: JobControllerSettings, kits: KitCache) -> AdminFactory:
    """FLARE API admins logging in with the admin kit FederationProvisioned named, fetched
    from the artifact store into the job-controller's own kit cache."""

    def build(fed: FederationRecord) -> FlareAdmin:
        if fed.admin_kit is None:
            raise AdminKitUnusable(f"federation {fed.name} was announced without an admin kit "
                                   "in the artifact store; provision it again")
        try:
            kit_dir = kits.folder(fed.admin_kit, fed.admin_name)
        except (ArtifactError, InvalidArchive) as exc:
            raise AdminKitUnusable(f"the admin kit of {fed.name}: {exc}") from None
        return FlareApiAdmin(
            kit_dir,
            fed.admin_name,
            connect_timeout_s=settings.flare_connect_timeout_s,
            command_timeout_s=settings.flare_command_timeout_s,
            attempts=settings.flare_attempts,
        )

    return build


class FlareAdmins:
    """Admins are kept per federation (each holds its session) until the record changes."""

    def __init__(self, state: StateStore, factory: AdminFactory) -> None:
        self.state = state
        self.factory = factory
        self._lock = threading.Lock()
        self._admins: dict[str, tuple[FederationRecord, FlareAdmin]] = {}

    def for_federation(self, name: str) -> FlareAdmin:
        with self.state.connect() as db:
            fed = tables.federation(db, name)
        if fed is None:
            raise UnknownFederation(name)
        with self._lock:
            known = self._admins.get(name)
            if known and known[0] == fed:
                return known[1]
            if known:
                known[1].close()  # the kit or admin changed: log in anew
            admin = self.factory(fed)
            self._admins[name] = (fed, admin)
            return admin

    def by_federation(self, items: Iterable[T]) -> Iterator[tuple[FlareAdmin, list[T]]]:
        """Items (jobs, waits) grouped by their federation, each group with its admin;
        federations no longer known are passed over."""
        groups: dict[str, list[T]] = defaultdict(list)
        for item in items:
            groups[item.federation].append(item)
        for federation, group in groups.items():
            try:
                admin = self.for_federation(federation)
            except UnknownFederation:
                continue
            yield admin, group

    def close(self) -> None:
        with self._lock:
            admins, self._admins = list(self._admins.values()), {}
        for _, admin in admins:
            admin.close()
