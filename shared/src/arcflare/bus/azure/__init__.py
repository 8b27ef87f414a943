"""The Bus port on Azure Service Bus: `AzureServiceBus.from_settings(settings)`."""
from arcflare.bus.azure.adapter import AzureServiceBus
from arcflare.bus.azure.config import AzureBusOptions, BusConfigurationError

__all__ = ["AzureBusOptions", "AzureServiceBus", "BusConfigurationError"]
