"""Real keys and certificates in tmp_path: a trust root, identities issued from it, a verifier."""
from __future__ import annotations

import pytest
from arcflare.trust.authority import TrustRoot
from arcflare.trust.identity import Identity
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier


@pytest.fixture
def root(tmp_path) -> TrustRoot:
    return TrustRoot.create(tmp_path / "trust")


@pytest.fixture
def issue(root, tmp_path):
    """Issue `principal` from `authority` (the root by default) into a fresh directory."""
    counter = iter(range(1000))

    def issue(principal: Principal, authority=None, **kwargs) -> Identity:
        out_dir = tmp_path / "identities" / str(next(counter))
        return (authority or root).issue(principal, out_dir=out_dir, **kwargs).load()

    return issue


@pytest.fixture
def verifier(root) -> Verifier:
    return Verifier([root.certificate])
