"""NVFlare's builders for kits added to a running federation: the server left alone.

A project for new sites names the server only for what their kits say about it
(fed_client.json: its name, port, identity); the stored server kit stays as it is.
NVFlare's builders would still build a scratch server kit alongside, loading the
server's key from the CA state to do it; these subclasses build only the new sites.
They are put in the project's `builders` in place of NVFlare's (same arguments).
"""
from __future__ import annotations

from nvflare.lighter.constants import ParticipantType
from nvflare.lighter.ctx import ProvisionContext
from nvflare.lighter.entity import Participant
from nvflare.lighter.impl.cert import CertBuilder
from nvflare.lighter.impl.static_file import StaticFileBuilder


class NewSiteCertBuilder(CertBuilder):
    def _build_write_cert_pair(self, participant: Participant, base_name: str,
                               ctx: ProvisionContext) -> None:
        if participant.type != ParticipantType.SERVER:
            super()._build_write_cert_pair(participant, base_name, ctx)


class NewSiteStaticFileBuilder(StaticFileBuilder):
    def _build_server(self, server: Participant, ctx: ProvisionContext) -> None:
        pass  # its files would go to a scratch folder that is dropped


#: NVFlare builder path -> the one a new-site project uses instead
FOR_NEW_SITES = {
    "nvflare.lighter.impl.cert.CertBuilder": f"{__name__}.NewSiteCertBuilder",
    "nvflare.lighter.impl.static_file.StaticFileBuilder": f"{__name__}.NewSiteStaticFileBuilder",
}


def for_new_sites(project: dict) -> dict:
    """`project` with the builders above in place of NVFlare's (modified in place)."""
    for builder in project.get("builders", []):
        builder["path"] = FOR_NEW_SITES.get(builder["path"], builder["path"])
    return project
