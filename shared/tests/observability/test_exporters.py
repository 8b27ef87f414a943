"""Which exporter the standard environment variables choose, each in a fresh process (the
tracer provider is once per process), exporting to real receivers on loopback."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[3]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ONE_SPAN = """
from arcflare.observability import tracing
print(tracing.configure("job-controller"))
with tracing.span("submit the job", root=True):
    print(tracing.current_trace_id())
"""


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run code in a process whose OTEL_* and Application Insights settings are only `env`."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_", "AZURE_SDK_TRACING"))}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_an_otlp_endpoint_exports_the_spans_over_http() -> None:
    with OtlpReceiver() as receiver:
        done = python(ONE_SPAN, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        assert done.returncode == 0, done.stderr
        (span,) = receiver.wait_for(lambda spans: len(spans) == 1, timeout=10)
    enabled, trace_id = done.stdout.split()
    assert enabled == "True"
    assert (span.service, span.name, span.trace_id) == ("job-controller", "submit the job",
                                                        trace_id)


def test_otel_service_name_names_the_process_instead() -> None:
    with OtlpReceiver() as receiver:
        done = python(ONE_SPAN, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.endpoint}/v1/traces",
                      OTEL_SERVICE_NAME="jc-west")
        assert done.returncode == 0, done.stderr
        (span,) = receiver.wait_for(lambda spans: len(spans) == 1, timeout=10)
    assert span.service == "jc-west"


def test_nothing_set_means_no_spans_and_no_provider() -> None:
    done = python(ONE_SPAN + "from opentelemetry import trace\n"
                  "print(type(trace.get_tracer_provider()).__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "None", "ProxyTracerProvider"]


def test_exporter_none_records_trace_ids_without_exporting() -> None:
    done = python(ONE_SPAN, OTEL_TRACES_EXPORTER="none")
    enabled, trace_id = done.stdout.split()
    assert enabled == "True" and len(trace_id) == 32


def test_otel_sdk_disabled_wins_over_an_endpoint() -> None:
    done = python(ONE_SPAN, OTEL_SDK_DISABLED="true",
                  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert done.stdout.split() == ["False", "None"]


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'"),
    ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER='zipkin'"),
])
def test_an_exporter_we_cannot_honour_is_one_clear_error(variable, value, named) -> None:
    done = python(ONE_SPAN, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
                  **{variable: value})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: ") and named in last


def test_azure_sdk_calls_are_traced_and_keep_the_trace_the_message_carries() -> None:
    code = f"""
import json
from arcflare.observability import messaging, tracing
from arcflare.bus.azure.mapping import to_service_bus
from arcflare.bus.port import OutgoingMessage
from azure.core.settings import settings
from azure.servicebus import ServiceBusMessage
from azure.servicebus._common.tracing import trace_message
from azure.servicebus._common.utils import transform_outbound_messages
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport
tracing.configure("deployer")
print(settings.tracing_implementation().__name__)
message = messaging.stamp(OutgoingMessage(body=b"{{}}", message_id="m-1"), "{TRACEPARENT}")
outgoing = transform_outbound_messages(to_service_bus(message), ServiceBusMessage,
                                       PyamqpTransport.to_outgoing_amqp_message)
with tracing.span("relay", root=True):  # what the sender does with each message it sends
    sent = trace_message(outgoing._message, PyamqpTransport)
props = sent.application_properties
print(json.dumps({{(k.decode() if isinstance(k, bytes) else k): v for k, v in props.items()}}))
print(len(props))
"""
    done = python(code, OTEL_TRACES_EXPORTER="none")
    assert done.returncode == 0, done.stderr
    implementation, props, count = done.stdout.strip().splitlines()
    assert implementation == "OpenTelemetrySpan"
    # the SDK's own message span did not replace the handler's context, nor add a second key
    assert json.loads(props) == {"traceparent": TRACEPARENT, "Diagnostic-Id": TRACEPARENT}
    assert count == "2"


class _Ingestion:
    """Application Insights' ingestion endpoint, on loopback: what the exporter posts."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        ingestion = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ingestion.posts.append((self.path, body))
                answer = json.dumps({"itemsReceived": 1, "itemsAccepted": 1,
                                     "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_application_insights_connection_string_exports_to_azure_monitor(tmp_path) -> None:
    ingestion = _Ingestion()
    try:
        done = python(ONE_SPAN, APPLICATIONINSIGHTS_CONNECTION_STRING=(
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint={ingestion.url}"),
            APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true", TMPDIR=str(tmp_path))
    finally:
        ingestion.close()
    assert done.returncode == 0, done.stderr
    tracked = b"".join(body for path, body in ingestion.posts if path.endswith("/track"))
    assert b"submit the job" in tracked, [path for path, _ in ingestion.posts]
    assert done.stdout.split()[1].encode() in tracked  # the same operation (trace) id


def test_the_cli_names_an_otel_setting_it_cannot_honour_in_one_line(tmp_path) -> None:
    code = ("import sys; from arcflare.cli.main import app; "
            "sys.argv = ['arcflare', 'bus', 'stats', '--data-dir', sys.argv[1]]; app()")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, timeout=60,
                          env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'" in done.stderr and "http/protobuf" in done.stderr
