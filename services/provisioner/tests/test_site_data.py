"""A site's data inputs through the provisioner: kept with the site, passed on to the deployer."""
from __future__ import annotations

from arcflare.contracts.commands import AddSite, CreateFederation

from .conftest import federation_spec
from .test_commands import send_raw

ADMISSIONS = {"kind": "path", "name": "admissions", "path": "/srv/fl/admissions"}


def sites_data(events) -> dict[str, list]:
    return {e.payload["site"]: e.payload["data"] for e in events if e.type == "SiteProvisioned"}


def test_each_site_provisioned_names_its_own_inputs_also_when_announced_again(harness):
    spec = federation_spec(sites=2).model_dump(mode="json")
    spec["sites"][0]["data"] = [ADMISSIONS]
    command = CreateFederation.model_validate(spec)

    first = harness.caused_by(harness.run(command))
    again = harness.caused_by(harness.run(command))

    assert sites_data(first) == {"site-1": [ADMISSIONS], "site-2": []}
    assert sites_data(again) == sites_data(first)


def test_an_added_site_brings_its_inputs(harness):
    harness.run(federation_spec(sites=1))

    added = harness.run(AddSite(federation="demo", site="site-9", org="hospital9",
                                data=[{"name": "labs", "path": "/data/labs"}]))

    assert added.type == "SiteProvisioned"
    assert added.payload["data"] == [{"kind": "path", "name": "labs", "path": "/data/labs"}]


def test_a_uri_input_on_a_local_site_is_rejected_naming_the_site_and_input(harness):
    spec = federation_spec(sites=1).model_dump(mode="json")
    spec["sites"][0]["data"] = [{"name": "imaging", "uri": "azureml:imaging:2"}]

    outcome = send_raw(harness, spec)

    assert outcome.type == "CommandRejected" and outcome.payload["reason"] == "invalid"
    [error] = outcome.payload["errors"]
    assert error["field"] == "sites.0"
    assert "input 'imaging' is a uri, which only an Azure ML job can mount" in error["problem"]
