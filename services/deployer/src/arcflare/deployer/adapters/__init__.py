"""Compute adapters: `local` (NVFlare processes here) and `azureml` (Azure ML command jobs)."""
