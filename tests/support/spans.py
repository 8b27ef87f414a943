"""Spans recorded in memory: the real OpenTelemetry SDK, installed as ArcFlare's tracer for the
length of a test (tracing is off again afterwards)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from arcflare.observability import tracing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
