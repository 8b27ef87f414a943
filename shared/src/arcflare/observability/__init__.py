"""Traces (OpenTelemetry) and metrics (Prometheus) for every ArcFlare process.

`tracing` turns the SDK on from the standard OTEL_* variables and gives the few span helpers the
code uses; `messaging` carries a trace across the bus; `metrics` holds what each service's
/metrics page shows.
"""
