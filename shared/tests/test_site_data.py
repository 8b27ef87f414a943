"""A site's data inputs in the contracts: the spec's short forms, and one clear error per mistake."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from arcflare.cli.federation import load_spec
from arcflare.contracts.commands import AddSite, CreateFederation, SiteSpec
from arcflare.contracts.envelope import field_errors
from arcflare.contracts.events import SiteHeartbeat, SiteProvisioned
from arcflare.contracts.fields import input_variable
from pydantic import ValidationError

ARC = {"backend": "azureml", "compute": "arc-st-marys"}
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "federation.yaml"


def site(data: list, compute: dict | None = None) -> SiteSpec:
    return SiteSpec.model_validate({"name": "st-marys", "org": "st_marys", "data": data,
                                    **({"compute": compute} if compute else {})})


def problems(data: list, compute: dict | None = None) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as failed:
        site(data, compute)
    return field_errors(failed.value)


def test_each_kind_is_known_by_its_locator_key_and_serialises_with_its_kind():
    spec = yaml.safe_load("""
        - {name: admissions, path: /srv/fl/admissions}
        - {name: imaging, uri: "azureml://datastores/st_marys/paths/imaging/", mode: download}
        - {name: labs, uri: "azureml:labs-2024:3"}
        - {name: ct-scans, pvc: ct-scans, mount_path: /mnt/ct}
    """)

    data = site(spec, ARC).data

    assert [(d.kind, d.name) for d in data] == [
        ("path", "admissions"), ("uri", "imaging"), ("uri", "labs"), ("pvc", "ct-scans")]
    assert data[1].mode == "download" and data[2].mode == "ro_mount"
    dumped = site(spec, ARC).model_dump(mode="json")["data"]
    assert dumped[3] == {"kind": "pvc", "name": "ct-scans", "pvc": "ct-scans",
                         "mount_path": "/mnt/ct"}
    assert site(dumped, ARC).data == data  # what travels in events reads back the same


def test_the_variable_a_job_reads_is_the_name_upper_cased_with_underscores():
    assert input_variable("ct-scans") == "ARCFLARE_INPUT_CT_SCANS"
    assert input_variable("Labs_2024") == "ARCFLARE_INPUT_LABS_2024"


@pytest.mark.parametrize(("data", "field", "problem"), [
    ([{"name": "x"}], "data.0", "give exactly one of these keys"),
    ([{"name": "x", "path": "/a", "uri": "azureml:a:1"}], "data.0", "exactly one of"),
    ([{"name": "x", "kind": "s3", "path": "/a"}], "data.0", "a path, a uri or a pvc"),
    ([{"name": "x", "path": "data/x"}], "data.0.path.path", "absolute folder path"),
    ([{"name": "x", "path": "/srv/../etc"}], "data.0.path.path", "without '..'"),
    ([{"name": "has space", "path": "/a"}], "data.0.path.name", "pattern"),
    ([{"name": "x", "uri": "https://example.org/x"}], "data.0.uri.uri", "pattern"),
    ([{"name": "x", "pvc": "Not_A_Claim", "mount_path": "/mnt/x"}], "data.0.pvc.pvc", "pattern"),
    ([{"name": "x", "pvc": "claim"}], "data.0.pvc.mount_path", "required"),
    ([{"name": "x", "uri": "azureml:a:1", "mode": "rw_mount"}], "data.0.uri.mode", "ro_mount"),
])
def test_a_bad_input_is_one_error_naming_its_field(data, field, problem):
    errors = problems(data, ARC)

    assert len(errors) == 1, errors
    assert errors[0]["field"] == field and problem in errors[0]["problem"], errors


def test_a_datastore_or_claim_on_a_local_site_is_refused_naming_the_input():
    errors = problems([{"name": "imaging", "uri": "azureml:imaging:1"}])

    assert "data.0: input 'imaging' is a uri, which only an Azure ML job can mount" in \
        errors[0]["problem"]


def test_two_names_a_job_could_not_tell_apart_are_refused():
    errors = problems([{"name": "ct-scans", "path": "/a"}, {"name": "CT_SCANS", "path": "/b"}])

    assert "'CT_SCANS' and 'ct-scans' would both be ARCFLARE_INPUT_CT_SCANS" in \
        errors[0]["problem"]


def test_add_site_and_create_federation_check_the_same_way():
    with pytest.raises(ValidationError, match="only an Azure ML job can mount"):
        AddSite(federation="f", site="s", org="o", data=[{"name": "x", "uri": "azureml:x:1"}])
    with pytest.raises(ValidationError, match="sites.0"):
        CreateFederation(name="f", sites=[{"name": "s", "org": "o", "data": [{"name": "x"}]}],
                         admins=[{"email": "a@b.org", "org": "o", "role": "project_admin"}])
    added = AddSite(federation="f", site="s", org="o", data=[{"name": "x", "path": "/srv/x"}])
    assert added.data[0].path == "/srv/x"


def test_events_carry_names_and_locators_and_the_agent_only_presence_and_size():
    provisioned = SiteProvisioned.model_json_schema()
    heartbeat = SiteHeartbeat.model_json_schema()

    assert "data" in provisioned["properties"]
    reported = heartbeat["$defs"]["InputHealth"]["properties"]
    assert set(reported) == {"name", "present", "readable", "size"}
    assert reported["size"]["anyOf"][0]["enum"] == ["empty", "<1MB", "<1GB", ">=1GB"]


def test_the_example_spec_shows_every_kind_on_a_site_that_can_bind_it():
    spec = load_spec(EXAMPLE)

    kinds = {(s.compute.backend, d.kind) for s in spec.sites for d in s.data}
    assert kinds == {("local", "path"), ("azureml", "uri"), ("azureml", "pvc")}
    modes = {d.mode for s in spec.sites for d in s.data if d.kind == "uri"}
    assert modes == {"ro_mount", "download"}
