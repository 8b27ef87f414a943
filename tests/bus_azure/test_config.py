"""Misconfiguration fails at start with one sentence naming the setting to fix."""
from __future__ import annotations

import pytest
from arcflare.bus.azure import AzureBusOptions, AzureServiceBus, BusConfigurationError
from arcflare.runtime import Settings
from pydantic import SecretStr

EMULATOR = ("Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;")


def test_neither_connection_string_nor_namespace_names_both_settings(tmp_path):
    with pytest.raises(BusConfigurationError,
                       match="ARCFLARE_SERVICEBUS_CONNECTION_STRING or ARCFLARE_SERVICEBUS_NAMESPACE"):
        AzureServiceBus.from_settings(Settings(data_dir=tmp_path, bus="azure"))


@pytest.mark.parametrize("value, fragment", [
    ("HostName=foo;SharedAccessKey=x", "must start with Endpoint=sb://"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root", "needs SharedAccessKeyName"),
])
def test_a_bad_connection_string_is_named(tmp_path, value, fragment):
    settings = Settings(data_dir=tmp_path, bus="azure", servicebus_connection_string=value)

    with pytest.raises(BusConfigurationError, match=fragment) as failure:
        AzureBusOptions.from_settings(settings)

    assert "ARCFLARE_SERVICEBUS_CONNECTION_STRING" in str(failure.value)


def test_a_namespace_must_be_fully_qualified(tmp_path):
    settings = Settings(data_dir=tmp_path, bus="azure", servicebus_namespace="sb://myns")

    with pytest.raises(BusConfigurationError, match="ARCFLARE_SERVICEBUS_NAMESPACE"):
        AzureBusOptions.from_settings(settings)


def test_secret_connection_string_and_retry_settings_are_read(tmp_path):
    settings = Settings(data_dir=tmp_path, bus="azure",
                        servicebus_connection_string=SecretStr(EMULATOR),
                        servicebus_retry_total=7, servicebus_retry_backoff_s=0.25,
                        servicebus_retry_backoff_max_s=4.0)

    options = AzureBusOptions.from_settings(settings)

    assert options.connection_string == EMULATOR
    assert options.uses_emulator
    assert options.client_kwargs() == {"retry_total": 7, "retry_backoff_factor": 0.25,
                                       "retry_backoff_max": 4.0, "retry_mode": "exponential"}


def test_an_unknown_retry_mode_is_named():
    with pytest.raises(BusConfigurationError, match="ARCFLARE_SERVICEBUS_RETRY_MODE"):
        AzureBusOptions(connection_string=EMULATOR, retry_mode="sometimes").validate()


def test_a_namespace_uses_the_given_credential_without_connecting():
    class Credential:  # DefaultAzureCredential's protocol; never asked for a token here
        def get_token(self, *scopes, **kwargs):
            raise AssertionError("no token is needed before the first operation")

    bus = AzureServiceBus(AzureBusOptions(namespace="myns.servicebus.windows.net"),
                          credential=Credential())
    try:
        assert bus._client.fully_qualified_namespace == "myns.servicebus.windows.net"
    finally:
        bus.close()
