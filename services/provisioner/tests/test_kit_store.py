"""The kit store port: one contract, run against the folder and the Azure ML adapters."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from arcflare.flare.kits import FolderKitStore, KitNotFound, resolve
from arcflare.provisioner.adapters.aml_kit_store import (
    AzureMLKitStore,
    asset_name,
    kit_asset,
    kit_version,
)
from azure.ai.ml.constants import AssetTypes


def built_kit(where: Path, name: str = "site-1", cert: bytes = b"CERT") -> Path:
    kit = where / name
    (kit / "startup").mkdir(parents=True)
    (kit / "startup" / "client.crt").write_bytes(cert)
    (kit / "startup" / "client.key").write_bytes(b"KEY")
    (kit / "startup" / "start.sh").write_text("#!/bin/sh\n")
    os.chmod(kit / "startup" / "start.sh", 0o755)
    return kit


class FakeDataOperations:
    """Records what would be sent to Azure ML instead of sending it."""

    def __init__(self) -> None:
        self.created = []
        self.archived = []

    def create_or_update(self, data):
        self.created.append(data)
        return data

    def archive(self, name: str, version: str) -> None:
        self.archived.append((name, version))


class FakeMLClient:
    def __init__(self) -> None:
        self.data = FakeDataOperations()


@pytest.fixture(params=["folder", "azureml"])
def kit_store(request, tmp_path):
    local = FolderKitStore(tmp_path / "kits")
    return local if request.param == "folder" else AzureMLKitStore(local, FakeMLClient())


class TestKitStoreContract:
    def test_put_returns_a_ref_that_names_the_kit(self, kit_store, tmp_path):
        ref = kit_store.put("demo", "site-1", built_kit(tmp_path / "build"))

        assert kit_store.ref("demo", "site-1") == ref
        assert kit_store.participants("demo") == ["site-1"]

    def test_the_ref_resolves_to_the_kit(self, kit_store, tmp_path):
        ref = kit_store.put("demo", "site-1", built_kit(tmp_path / "build", cert=b"MINE"))

        assert (kit_store.resolve(ref) / "startup" / "client.crt").read_bytes() == b"MINE"

    def test_put_replaces_a_kit_as_a_whole(self, kit_store, tmp_path):
        kit_store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))
        second = kit_store.put("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))

        assert kit_store.ref("demo", "site-1") == second
        assert kit_store.participants("demo") == ["site-1"]

    def test_remove_forgets_the_kit(self, kit_store, tmp_path):
        kit_store.put("demo", "site-1", built_kit(tmp_path / "build"))

        kit_store.remove("demo", "site-1")
        kit_store.remove("demo", "site-1")

        assert kit_store.ref("demo", "site-1") is None
        assert kit_store.participants("demo") == []

    # --- versions ------------------------------------------------------------------
    def test_replace_puts_the_new_version_in_place_and_keeps_the_old(self, kit_store, tmp_path):
        kit_store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))

        ref = kit_store.replace("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))

        assert kit_store.ref("demo", "site-1") == ref
        assert (kit_store.resolve(ref) / "startup" / "client.crt").read_bytes() == b"TWO"
        assert (kit_store.previous("demo", "site-1") / "startup" / "client.crt").read_bytes() \
            == b"ONE"
        assert kit_store.participants("demo") == ["site-1"]
        assert kit_store.unsettled("demo") == ["site-1"]

    def test_drop_previous_deletes_the_old_version_only(self, kit_store, tmp_path):
        kit_store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))
        ref = kit_store.replace("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))

        kit_store.drop_previous("demo", "site-1")
        kit_store.drop_previous("demo", "site-1")

        assert kit_store.previous("demo", "site-1") is None
        assert (kit_store.resolve(ref) / "startup" / "client.crt").read_bytes() == b"TWO"
        assert kit_store.unsettled("demo") == []

    def test_a_second_replace_keeps_only_the_version_it_replaced(self, kit_store, tmp_path):
        kit_store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))
        kit_store.replace("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))

        kit_store.replace("demo", "site-1", built_kit(tmp_path / "c", cert=b"THREE"))

        assert (kit_store.previous("demo", "site-1") / "startup" / "client.crt").read_bytes() \
            == b"TWO"

    def test_restore_previous_undoes_a_replace(self, kit_store, tmp_path):
        kit_store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))
        kit_store.replace("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))

        restored = kit_store.restore_previous("demo", "site-1")
        again = kit_store.restore_previous("demo", "site-1")

        ref = kit_store.ref("demo", "site-1")
        assert (restored, again) == (True, False)
        assert (kit_store.resolve(ref) / "startup" / "client.crt").read_bytes() == b"ONE"
        assert kit_store.previous("demo", "site-1") is None

    def test_remove_takes_every_version(self, kit_store, tmp_path):
        kit_store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))
        kit_store.replace("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))

        kit_store.remove("demo", "site-1")

        assert kit_store.previous("demo", "site-1") is None
        assert kit_store.participants("demo") == kit_store.unsettled("demo") == []


def test_a_replace_cut_short_between_its_renames_is_mended_by_restore(tmp_path):
    # Prepare: the current kit moved aside, the new one whole beside its place, no kit in it
    store = FolderKitStore(tmp_path / "kits")
    store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))
    root = tmp_path / "kits" / "demo"
    (root / ".previous").mkdir(mode=0o700)
    (root / "site-1").rename(root / ".previous" / "site-1")
    (root / ".incoming").mkdir(mode=0o700)
    built_kit(root / ".incoming", cert=b"TWO")

    # Execute
    listed = store.unsettled("demo")
    restored = store.restore_previous("demo", "site-1")

    # Assert
    assert listed == ["site-1"] and restored
    assert (root / "site-1" / "startup" / "client.crt").read_bytes() == b"ONE"
    assert not (root / ".incoming" / "site-1").exists()


def test_a_replaced_kit_is_private_before_it_takes_its_place(tmp_path):
    store = FolderKitStore(tmp_path / "kits")
    store.put("demo", "site-1", built_kit(tmp_path / "a"))

    ref = store.replace("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))

    kit = resolve(ref)
    assert stat.S_IMODE((kit / "startup" / "client.key").stat().st_mode) == 0o600
    for folder in (kit, tmp_path / "kits" / "demo" / ".previous"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_azureml_versions_follow_the_local_ones(tmp_path):
    client = FakeMLClient()
    store = AzureMLKitStore(FolderKitStore(tmp_path / "kits"), client)
    first = store.put("demo", "site-1", built_kit(tmp_path / "a", cert=b"ONE"))

    second = store.replace("demo", "site-1", built_kit(tmp_path / "b", cert=b"TWO"))
    store.drop_previous("demo", "site-1")

    assert [d.version for d in client.data.created] == \
        [first.rsplit(":", 1)[1], second.rsplit(":", 1)[1]]
    assert client.data.archived == [tuple(first.removeprefix("azureml:").split(":"))]


def test_folder_kits_are_private_and_resolve_locally(tmp_path):
    store = FolderKitStore(tmp_path / "kits")

    ref = store.put("demo", "site-1", built_kit(tmp_path / "build"))

    kit = resolve(ref)
    assert ref == f"file:{tmp_path / 'kits' / 'demo' / 'site-1'}"
    assert stat.S_IMODE(kit.stat().st_mode) == 0o700
    assert stat.S_IMODE((kit / "startup" / "client.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((kit / "startup" / "start.sh").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "kits" / "demo").stat().st_mode) == 0o700


@pytest.mark.parametrize("ref", ["azureml:arcflare-kit-demo-site-1:1", "file:relative/kit",
                                 "file:/a/../etc"])
def test_only_absolute_file_refs_resolve(ref):
    with pytest.raises(ValueError, match=re.escape(repr(ref))):  # the message names the ref
        resolve(ref)


def test_a_file_ref_without_a_kit_is_not_found(tmp_path):
    with pytest.raises(KitNotFound):
        resolve(f"file:{tmp_path}")


def test_azureml_kit_is_a_uri_folder_data_asset(tmp_path):
    client = FakeMLClient()
    store = AzureMLKitStore(FolderKitStore(tmp_path / "kits"), client)

    ref = store.put("demo", "admin@hospital.org", built_kit(tmp_path / "b", "admin@hospital.org"))

    (sent,) = client.data.created
    local = tmp_path / "kits" / "demo" / "admin@hospital.org"
    assert sent.type == AssetTypes.URI_FOLDER
    assert sent.name == "arcflare-kit-demo-admin-hospital-org"
    assert ref == f"azureml:{sent.name}:{kit_version(local)}"
    rest = sent._to_rest_object().as_dict()["properties"]
    assert rest["dataType"] == "uri_folder"
    assert str(rest["dataUri"]) == str(local)
    assert rest["tags"] == {"arcflare": "kit", "federation": "demo",
                            "participant": "admin@hospital.org"}


def test_azureml_remove_archives_the_asset_version(tmp_path):
    client = FakeMLClient()
    store = AzureMLKitStore(FolderKitStore(tmp_path / "kits"), client)
    ref = store.put("demo", "site-1", built_kit(tmp_path / "b"))

    store.remove("demo", "site-1")

    assert client.data.archived == [tuple(ref.removeprefix("azureml:").split(":"))]


def test_asset_versions_follow_the_certificates(tmp_path):
    one = built_kit(tmp_path / "a", cert=b"ONE")
    same = built_kit(tmp_path / "b", cert=b"ONE")
    other = built_kit(tmp_path / "c", cert=b"TWO")

    assert kit_version(one) == kit_version(same) != kit_version(other)
    assert kit_asset("demo", "site-1", one).version == kit_version(one)
    assert asset_name("demo", "site-1") == "arcflare-kit-demo-site-1"


AML_ENV = ("ARCFLARE_TEST_AML_SUBSCRIPTION", "ARCFLARE_TEST_AML_RESOURCE_GROUP",
           "ARCFLARE_TEST_AML_WORKSPACE")


@pytest.mark.aml_live
@pytest.mark.skipif(not all(os.environ.get(v) for v in AML_ENV),
                    reason=f"needs an Azure ML workspace: set {', '.join(AML_ENV)}")
def test_live_upload_to_azure_ml(tmp_path):
    sub, group, workspace = (os.environ[v] for v in AML_ENV)
    store = AzureMLKitStore.from_settings(FolderKitStore(tmp_path / "kits"), sub, group, workspace)
    ref = store.put("arcflare-test", "site-1", built_kit(tmp_path / "b", cert=os.urandom(16)))
    try:
        name, version = ref.removeprefix("azureml:").split(":")
        assert store.ml_client.data.get(name=name, version=version).type == AssetTypes.URI_FOLDER
    finally:
        store.remove("arcflare-test", "site-1")
