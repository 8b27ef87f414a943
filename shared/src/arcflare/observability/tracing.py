"""Traces: OpenTelemetry, switched on by the standard OTEL_* environment variables.

Spans are recorded when one of these is set:
- OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: exported over OTLP/HTTP
  (protobuf) in batches (OTEL_BSP_* tune the batching);
- APPLICATIONINSIGHTS_CONNECTION_STRING: exported to Azure Monitor (azure-monitor-opentelemetry),
  and to OTLP too when an endpoint is also set;
- OTEL_TRACES_EXPORTER (otlp, console or none): "none" records spans and keeps trace ids (the
  ledger's audit shows them) without exporting anything.
Otherwise, and with OTEL_SDK_DISABLED=true, no span is made at all. A traceparent that arrives is
still passed on then, so a process that does not trace keeps the trace of one that does whole.
Whenever spans are recorded, the Azure SDK's own calls (azure-core) make spans too.

A traceparent travels unsigned beside the signed envelope: it correlates, it never decides.
"""
from __future__ import annotations

import atexit
import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import structlog
from opentelemetry import context, trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

log = structlog.get_logger("arcflare.observability")
F = TypeVar("F", bound=Callable[..., Any])
Attributes = Mapping[str, str | int | float | bool]
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
EXPORTERS = ("otlp", "console", "none")


class _State:
    configured = False
    tracer: trace.Tracer | None = None
    provider: Any = None


_state = _State()


def configure(service: str) -> bool:
    """Turn tracing on for this process as the environment says; once per process (later calls
    keep the first answer). Returns whether spans are recorded."""
    if _state.configured:
        return _state.tracer is not None
    _state.configured = True
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    host = trace.get_tracer_provider()
    if not isinstance(host, trace.ProxyTracerProvider):  # the program around us traces already
        return _use(host)
    otlp = bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    azure = bool(env.get("APPLICATIONINSIGHTS_CONNECTION_STRING"))
    named = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not (otlp or azure or named):
        return False
    _check(env, named)
    provider = _azure_monitor(service, otlp) if azure else _sdk(service, otlp, named)
    return _use(provider)


def _check(env: Mapping[str, str], named: str) -> None:
    if named and named not in EXPORTERS:
        raise ValueError(f"OTEL_TRACES_EXPORTER={named!r}: ArcFlare exports traces with one of "
                         f"{', '.join(EXPORTERS)}")
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        protocol = env.get(name, "http/protobuf").strip()
        if protocol != "http/protobuf":
            raise ValueError(f"{name}={protocol!r}: ArcFlare exports OTLP over HTTP only; "
                             "set http/protobuf (the collector's port 4318)")


def _resource(service: str) -> Any:
    from opentelemetry.sdk.resources import Resource

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    return Resource.create({"service.name": name, "service.namespace": "arcflare"})


def _otlp_processor() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())  # endpoint, headers, timeout: OTEL_* vars


def _sdk(service: str, otlp: bool, named: str) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=_resource(service))  # sampler: OTEL_TRACES_SAMPLER
    if otlp or named == "otlp":
        provider.add_span_processor(_otlp_processor())
    elif named == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)  # azure-core's spans go through the global one
    return provider


def _azure_monitor(service: str, otlp: bool) -> Any:
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(resource=_resource(service), enable_live_metrics=False,
                            span_processors=[_otlp_processor()] if otlp else [])
    return trace.get_tracer_provider()


def _use(provider: Any) -> bool:
    _state.provider = provider
    _state.tracer = provider.get_tracer("arcflare")
    try:
        from azure.core.settings import settings

        settings.tracing_implementation = "opentelemetry"
    except (ImportError, ValueError) as exc:  # the plugin is a dependency; say so if it is gone
        log.warning("azure SDK calls are not traced", error=repr(exc))
    atexit.register(flush)
    return True


def install(provider: Any) -> None:
    """Record spans with this provider (tests, or a program that sets up its own)."""
    _state.configured = True
    _state.provider = provider
    _state.tracer = provider.get_tracer("arcflare")


def uninstall() -> None:
    """Back to not tracing (tests)."""
    _state.configured = True
    _state.provider = None
    _state.tracer = None


def flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered (before a process exits)."""
    flush_all = getattr(_state.provider, "force_flush", None)
    if flush_all is not None:
        flush_all(timeout_ms)


def tracer() -> trace.Tracer | None:
    """The tracer when spans are recorded, else None (every helper is then almost free)."""
    return _state.tracer


def enabled() -> bool:
    return _state.tracer is not None


# --- the W3C traceparent -----------------------------------------------------------------
def traceparent(span_context: SpanContext) -> str | None:
    if not span_context.is_valid:
        return None
    return (f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
            f"{int(span_context.trace_flags):02x}")


def parse(value: object) -> SpanContext | None:
    """The remote span context a traceparent names; None for anything malformed."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value)
    if match is None or match.group(1) == "ff":
        return None
    found = SpanContext(int(match.group(2), 16), int(match.group(3), 16), is_remote=True,
                        trace_flags=TraceFlags(int(match.group(4), 16)))
    return found if found.is_valid else None


def current_traceparent() -> str | None:
    return traceparent(trace.get_current_span().get_span_context())


def current_trace_id() -> str | None:
    found = trace.get_current_span().get_span_context()
    return f"{found.trace_id:032x}" if found.is_valid else None


# --- spans --------------------------------------------------------------------------------
@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes | None = None,
         parent: SpanContext | None = None, root: bool = False,
         links: Sequence[SpanContext] = ()) -> Iterator[Span | None]:
    """A span made current: under `parent` when given, a new trace with `root`, else under the
    current span. Not tracing: the parent is made current (passed on), and None is yielded."""
    if _state.tracer is None:
        if parent is None:
            yield None
            return
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
        try:
            yield None
        finally:
            context.detach(token)
        return
    if parent is not None:
        ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    else:
        ctx = context.Context() if root else None
    # start_span and attach by hand: one layer less than start_as_current_span, on every message
    made = _state.tracer.start_span(name, context=ctx, kind=kind, attributes=attributes,
                                    links=[Link(link) for link in links] if links else None)
    token = context.attach(trace.set_span_in_context(made))
    try:
        yield made
    except BaseException as exc:
        made.record_exception(exc)
        made.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        context.detach(token)
        made.end()


@contextmanager
def child_span(name: str, *, kind: SpanKind = SpanKind.INTERNAL,
               attributes: Attributes | None = None) -> Iterator[Span | None]:
    """A span under the current one, only inside a trace: a call made outside any (a watcher's
    poll every second) starts no trace of its own."""
    if _state.tracer is None or not trace.get_current_span().get_span_context().is_valid:
        yield None
        return
    with span(name, kind=kind, attributes=attributes) as made:
        yield made


def traced(name: str, *, kind: SpanKind = SpanKind.CLIENT,
           attributes: Attributes | None = None) -> Callable[[F], F]:
    """Decorate a call to something outside (MLflow, a kit or artifact store, a webhook) so it is
    a child span of whatever handler runs it. Cheap when not tracing."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _state.tracer is None:
                return fn(*args, **kwargs)
            with child_span(name, kind=kind, attributes=attributes):
                return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


@contextmanager
def resumed(stored: str | None, name: str, attributes: Attributes | None = None, *,
            kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span | None]:
    """Background work that belongs to an earlier flow (a job's later events belong to the
    SubmitJob that started it, an alert's delivery to the event that raised it): a span under
    the stored traceparent. Nothing when there is none."""
    parent = parse(stored)
    if parent is None:
        yield None
        return
    with span(name, kind=kind, parent=parent, attributes=attributes) as made:
        yield made


def failed(made: Span | None, description: str | None) -> None:
    """Mark a span failed when the work reports its failure rather than raising it."""
    if made is not None and description:
        made.set_status(Status(StatusCode.ERROR, description))
