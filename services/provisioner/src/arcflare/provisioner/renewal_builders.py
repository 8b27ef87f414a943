"""NVFlare's builders for a renewed kit: one participant's new key and certificate.

NVFlare's CertBuilder keeps every certificate and key it signed in the CA state
(cert.json) and hands the same pair out again whenever that participant is built once
more — right for re-provisioning, wrong for a renewal. RenewingCertBuilder forgets the
renewed participant's entry just before NVFlare builds it, so NVFlare's own code makes a
new key, signs a new certificate with the federation's CA and records them in place of
the old ones (the old key leaves the CA state with them). It builds no other participant:
in a site's or an admin's renewal the server is only named (as for a new site), and a
server's renewal has no other participant.
"""
from __future__ import annotations

from arcflare.provisioner.new_site_builders import FOR_NEW_SITES
from nvflare.lighter.constants import ParticipantType
from nvflare.lighter.ctx import ProvisionContext
from nvflare.lighter.entity import Participant
from nvflare.lighter.impl.cert import CertBuilder

CERT_BUILDER = "nvflare.lighter.impl.cert.CertBuilder"
STATIC_FILE_BUILDER = "nvflare.lighter.impl.static_file.StaticFileBuilder"


class RenewingCertBuilder(CertBuilder):
    def __init__(self, renew: str, kind: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.renew = renew
        self.kind = kind

    def _renews(self, participant: Participant) -> bool:
        if participant.type != self.kind:
            return False
        # NVFlare may shorten a server's name to fit a certificate's CN: there is one server
        return participant.type == ParticipantType.SERVER or participant.name == self.renew

    def _build_write_cert_pair(self, participant: Participant, base_name: str,
                               ctx: ProvisionContext) -> None:
        if not self._renews(participant):
            return
        self.persistent_state.content.pop(participant.subject, None)
        super()._build_write_cert_pair(participant, base_name, ctx)


def for_renewal(project: dict, participant: str, kind: str) -> dict:
    """`project` (the renewed participant, and the server it connects to) with the builders
    that renew exactly that participant's kit (modified in place)."""
    for builder in project.get("builders", []):
        if builder["path"] == CERT_BUILDER:
            builder["path"] = f"{__name__}.RenewingCertBuilder"
            builder["args"] = {**builder.get("args", {}), "renew": participant, "kind": kind}
        elif builder["path"] == STATIC_FILE_BUILDER and kind != ParticipantType.SERVER:
            builder["path"] = FOR_NEW_SITES[STATIC_FILE_BUILDER]
    return project
