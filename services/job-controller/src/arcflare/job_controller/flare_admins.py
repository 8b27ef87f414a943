"""One FlareAdmin per known federation, built from what FederationProvisioned told us."""
from __future__ import annotations

from collections.abc import Callable

from arcflare.job_controller import records
from arcflare.job_controller.adapters.flare_admin import FlareAdmin, FlareApiAdmin
from arcflare.job_controller.records import FederationRecord
from arcflare.job_controller.settings import JobControllerSettings
from arcflare.runtime.state import StateStore


class UnknownFederation(LookupError):
    pass


AdminFactory = Callable[[FederationRecord], FlareAdmin]


def flare_api_factory(settings: JobControllerSettings) -> AdminFactory:
    def build(fed: FederationRecord) -> FlareAdmin:
        return FlareApiAdmin(
            fed.admin_kit_dir,
            fed.admin_name,
            connect_timeout_s=settings.flare_connect_timeout_s,
            command_timeout_s=settings.flare_command_timeout_s,
            attempts=settings.flare_attempts,
        )

    return build


class FlareAdmins:
    def __init__(self, state: StateStore, factory: AdminFactory) -> None:
        self.state = state
        self.factory = factory

    def for_federation(self, name: str) -> FlareAdmin:
        with self.state.connect() as db:
            fed = records.federation(db, name)
        if fed is None:
            raise UnknownFederation(name)
        return self.factory(fed)
