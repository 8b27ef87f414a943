"""The artifact store: what the claim check costs over moving the same bytes bare.

A 50 MB package (random bytes: a model or data file does not compress) goes in and comes
back out, verified:
- azureblob: through the port (hash, existence check, upload, streamed download that counts
  and hashes) vs bare azure-storage-blob upload + download of the same file against the same
  Azurite, with the same upload concurrency. Target ≤ 1.2×.
- folder: through the port vs two plain file copies (into the store, out of it). ≤ 1.5×.
Each round changes the package's first bytes, so the port never skips a write as a
duplicate; rounds alternate which side goes first; each side's best round is compared.

Context, no target: `folder_sha256_floor` is hashing the package twice and nothing else — what
any store that names a put by its sha256 and verifies every read must pay. On a machine whose
kernel copies a file faster than SHA-256 reads it, that floor alone is above 1.5× two copies.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from arcflare.artifacts.azureblob import AzureBlobArtifactStore
from arcflare.artifacts.folder import FolderArtifactStore
from arcflare.artifacts.port import ArtifactStore
from arcflare.contracts.artifacts import JOB_PACKAGE
from azure.storage.blob import BlobServiceClient

from tests.support.azurite import node_missing, running_azurite

SIZE = 50 * 1024 * 1024
ROUNDS = 15
UPLOAD_CONCURRENCY = 4


def best_of_alternating(port: Callable[[int], None], bare: Callable[[int], None],
                        rounds: int = ROUNDS) -> tuple[float, float]:
    """Best wall time of each side over `rounds` rounds, the side going first alternating."""
    times: dict[str, list[float]] = {"port": [], "bare": []}
    for i in range(rounds):
        sides = [("port", port), ("bare", bare)]
        for name, side in (sides if i % 2 == 0 else reversed(sides)):
            started = time.perf_counter()
            side(i)
            times[name].append(time.perf_counter() - started)
    return min(times["port"]), min(times["bare"])


def fresh(package: Path, i: int) -> None:
    """Other first bytes: another artifact, written in full."""
    with open(package, "r+b") as f:
        f.write(i.to_bytes(8, "big") + uuid.uuid4().bytes)


def through_port(store: ArtifactStore, package: Path, out: Path) -> Callable[[int], None]:
    def once(i: int) -> None:
        fresh(package, i)
        ref = store.put(package, JOB_PACKAGE, area="packages")
        store.fetch(ref, out / "fetched", area="packages", max_bytes=2 * SIZE)

    return once


def bare_blob(service: BlobServiceClient, package: Path, out: Path) -> Callable[[int], None]:
    container = service.get_container_client("bare")
    container.create_container()

    def once(i: int) -> None:
        fresh(package, i)
        blob = container.get_blob_client(uuid.uuid4().hex)
        with open(package, "rb") as data:
            blob.upload_blob(data, length=SIZE, overwrite=True,
                             max_concurrency=UPLOAD_CONCURRENCY)
        with open(out / "downloaded", "wb") as target:
            blob.download_blob().readinto(target)

    return once


def bare_copies(root: Path, package: Path, out: Path) -> Callable[[int], None]:
    root.mkdir()

    def once(i: int) -> None:
        fresh(package, i)
        stored = root / uuid.uuid4().hex
        shutil.copyfile(package, stored)
        shutil.copyfile(stored, out / "copied")

    return once


def _hash_twice(package: Path) -> float:
    started = time.perf_counter()
    for _ in range(2):
        with open(package, "rb") as f:
            hashlib.file_digest(f, "sha256")
    return time.perf_counter() - started


def report(results, name: str, port_s: float, bare_s: float, limit: float, what: str) -> None:
    results.add(f"artifacts.{name}_50mb", port_s, "s", baseline=bare_s, target=f"<= {limit}",
                on="ratio", note=f"baseline: {what}")


def run(results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        package = work / "package.bin"
        package.write_bytes(os.urandom(SIZE))
        out = work / "out"
        out.mkdir()

        port_s, bare_s = best_of_alternating(
            through_port(FolderArtifactStore(work / "store"), package, out),
            bare_copies(work / "plain", package, out))
        report(results, "folder_put_fetch", port_s, bare_s, 1.5, "two plain file copies")
        floor_s = min(_hash_twice(package) for _ in range(ROUNDS))
        # context, no target: the SHA-256 of put and fetch alone, beside the plain copies
        results.add("artifacts.folder_sha256_floor_50mb", floor_s, "s", baseline=bare_s,
                    note="sha256 of put + fetch, nothing else")

        if why := node_missing():
            results.errors["bench_artifacts.azureblob"] = f"skipped: {why}"
            return
        with running_azurite() as azurite:
            service = BlobServiceClient.from_connection_string(azurite.connection_string)
            store = AzureBlobArtifactStore(service, container_prefix="bench",
                                           max_concurrency=UPLOAD_CONCURRENCY)
            port_s, bare_s = best_of_alternating(through_port(store, package, out),
                                                 bare_blob(service, package, out))
        report(results, "azureblob_put_fetch", port_s, bare_s, 1.2,
               "bare azure-storage-blob upload + download")
