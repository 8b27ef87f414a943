from __future__ import annotations

import pytest
from arcflare.contracts.commands import AddSite
from arcflare.contracts.events import SiteProvisioned
from arcflare.observability import tracing
from arcflare.runtime import Rejected

from tests.support.spans import recorded_spans

FPR = ":".join(["AB"] * 32)


def add_site(cmd: AddSite, *, uow) -> None:
    """The provisioner's AddSite, reduced to its outcome (and a refusal for site "refused")."""
    if cmd.site == "refused":
        raise Rejected("conflict", "site refused exists elsewhere")
    uow.publish(SiteProvisioned(federation=cmd.federation, site=cmd.site, org=cmd.org,
                                kit_ref="file:/kits/x", cert_fingerprint=FPR,
                                not_after="2027-01-01T00:00:00Z"))


@pytest.fixture
def recorded():
    with recorded_spans() as exporter:
        yield exporter


@pytest.fixture
def untraced():
    tracing.uninstall()
    yield
