"""Adapters of the provisioner's ports."""
