"""Driving a deployer service in tests: provisioning events, outcomes, the server's view."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arcflare.bus.port import Bus
from arcflare.contracts.commands import AdminSpec
from arcflare.contracts.events import FederationProvisioned, SiteProvisioned
from arcflare.deployer.settings import DeployerSettings
from arcflare.trust.local import DEFAULT_OPERATORS, ensure_local_identities
from dep_kits import ADMIN, SERVER_NAME, Kits
from nvflare.fuel.flare_api.api_spec import NoClientsAvailable
from nvflare.fuel.flare_api.flare_api import new_secure_session

# the deployer's tests import these from here
from tests.support.flare_processes import kill_all_in, processes_in  # noqa: F401
from tests.support.signing import publish as signed_publish
from tests.support.signing import signer_for

FINGERPRINT = ":".join(["AB"] * 32)


def settings(data_dir: Path, **overrides) -> DeployerSettings:
    """Fast settings on a data dir with the local identities; the tests' kits are put into
    the artifact store at <data_dir>/../artifacts (dep_kits.provision)."""
    ensure_local_identities(data_dir, operators=(*DEFAULT_OPERATORS, (ADMIN, "arc")))
    overrides.setdefault("artifact_folder", data_dir.parent / "artifacts")
    return DeployerSettings(data_dir=data_dir, watch_interval_s=0.5, stop_grace_s=5,
                            retry_backoff_base_s=0.1, retry_backoff_max_s=1, **overrides)


def federation_provisioned(kits: Kits, *, auto_deploy: bool) -> FederationProvisioned:
    return FederationProvisioned(
        federation=kits.federation, server_endpoint=f"localhost:{kits.port}",
        server_kit=kits.artifact(SERVER_NAME), server_kit_ref=kits.artifact(SERVER_NAME).locator,
        admin_kit=kits.artifact(ADMIN), admin_kit_ref=kits.artifact(ADMIN).locator,
        admin_name=ADMIN,
        sites=[], admins=[AdminSpec(email=ADMIN, org="arc", role="project_admin")],
        ca_fingerprint=FINGERPRINT, auto_deploy=auto_deploy,
    )


def site_provisioned(kits: Kits, site: str, *, deploy: bool) -> SiteProvisioned:
    return SiteProvisioned(
        federation=kits.federation, site=site, org="arc", kit=kits.artifact(site),
        kit_ref=kits.artifact(site).locator,
        cert_fingerprint=FINGERPRINT, not_after=datetime.now(UTC) + timedelta(days=300),
        deploy=deploy,
    )


def publish(bus: Bus, data_dir: Path, *events) -> None:
    """What the provisioner does: its events on the events topic, signed as it signs them,
    on behalf of the admin who ordered them."""
    provisioner = signer_for(data_dir, "service:provisioner")
    for event in events:
        signed_publish(bus, provisioner, event, on_behalf_of=ADMIN)


def client_statuses(kits: Kits) -> dict[str, str]:
    """The server's view (FLARE API check_status): client name -> status."""
    session = new_secure_session(ADMIN, str(kits.admin), timeout=30)
    try:
        try:
            meta = session.check_status("client")
        except NoClientsAvailable:
            return {}
        return {c["client_name"]: c["status"] for c in meta.get("client_status", [])}
    finally:
        session.close()


def registered_clients(kits: Kits) -> set[str]:
    """The clients the server lists (check_status server): a stopped one leaves after the
    server's heart_beat_timeout."""
    session = new_secure_session(ADMIN, str(kits.admin), timeout=30)
    try:
        return {c.name for c in session.get_system_info().client_info}
    finally:
        session.close()


def wait_for(condition, timeout: float = 90.0, poll: float = 0.5):
    """The condition's value once truthy; its last value when time runs out."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(poll)
        value = condition()
    return value


def connected(kits: Kits, sites: list[str]) -> bool:
    statuses = client_statuses(kits)
    return all(statuses.get(s) not in (None, "no_reply") for s in sites)
