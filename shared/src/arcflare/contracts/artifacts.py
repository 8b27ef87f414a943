"""Artifact references: what travels on the bus instead of anything bigger than a message.

Job packages, job results and startup kits are put into an artifact store and named by
a content-addressed reference (a claim check): the sha256 of the bytes, their size, their
media type, and the store's locator `<store>:<area>/<sha256>`. A reader fetches by the
reference and verifies hash and size before it uses a byte, so a reference is no path of
the sender's machine and cannot name anything but the bytes it was made from.
"""
from __future__ import annotations

from typing import Annotated, Literal

from arcflare.contracts.fields import Part
from pydantic import Field, model_validator

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="hex sha256 of the bytes")]
#: packages (job folders people submit), results (what NVFlare gave back), kits (startup
#: kits: private keys; kept apart from the rest so access to them can be granted apart)
Area = Literal["packages", "results", "kits"]
AREAS: tuple[str, ...] = ("packages", "results", "kits")

#: a job folder as `arcflare job submit` packs it (deterministic tar, gzip)
JOB_PACKAGE = "application/vnd.arcflare.job-package+tar+gzip"
#: an NVFlare job result (the server's download), packed the same way
JOB_RESULT = "application/vnd.arcflare.job-result+tar+gzip"
#: an NVFlare startup kit, packed the same way
STARTUP_KIT = "application/vnd.arcflare.startup-kit+tar+gzip"
#: archives people submit as they are
ZIP = "application/zip"
TAR = "application/x-tar"
GZIP = "application/gzip"


class ArtifactRef(Part):
    """Bytes in the artifact store, by content."""

    sha256: Sha256
    size: int = Field(ge=0, le=1 << 40)
    media_type: str = Field(max_length=127,
                            pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
    #: `<store>:<area>/<sha256>`, e.g. `azureblob:packages/9f86…`: which store and which
    #: of its areas holds the bytes; readers accept only their own store and the area
    #: they expect
    locator: str = Field(max_length=200, pattern=r"^[a-z][a-z0-9]*:[a-z]+/[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _locator_names_the_hash(self) -> ArtifactRef:
        if not self.locator.endswith("/" + self.sha256):
            raise ValueError("locator must end with /<sha256> of the same reference")
        return self

    @property
    def store(self) -> str:
        return self.locator.split(":", 1)[0]

    @property
    def area(self) -> str:
        return self.locator.split(":", 1)[1].split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.locator} ({self.size} bytes, {self.media_type})"
