"""/healthz and /readyz over HTTP for Kubernetes probes and the local supervisor, and /metrics
for Prometheus."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from arcflare.observability.metrics import exposition


def answer_metrics(request: BaseHTTPRequestHandler) -> None:
    """Write this process's metrics page as the answer to a GET /metrics."""
    data, content_type = exposition()
    request.send_response(200)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


class HealthServer:
    def __init__(self, host: str, port: int, ready: Callable[[], dict], port_file: Path) -> None:
        probe = ready

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._answer(200, {"status": "ok"})
                elif self.path == "/readyz":
                    report = probe()
                    self._answer(200 if report.get("ready") else 503, report)
                elif self.path == "/metrics":
                    answer_metrics(self)
                else:
                    self._answer(404, {"error": f"no such path {self.path}"})

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # probes every few seconds: quiet
                pass

        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.port_file = port_file
        port_file.write_text(str(self.port))
        self._thread = threading.Thread(target=self.server.serve_forever, name="health",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.port_file.unlink(missing_ok=True)
