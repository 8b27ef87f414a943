"""A loopback stub of exactly the Kubernetes API endpoints the observer calls:
list pods by label selector, read a pod's log, delete a pod."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

TOKEN = "stub-token-0123456789"
_LIST = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")
_LOG = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$")
_POD = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)$")


def pod(name: str, *, state: dict, phase: str = "Running", restarts: int = 0,
        last_state: dict | None = None, uid: str = "uid-1", site: str = "site-1") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "hospital", "uid": uid,
                     "creationTimestamp": "2026-11-29T08:00:00Z",
                     "labels": {"arcflare.io/site": site}},
        "status": {
            "phase": phase, "startTime": "2026-11-29T08:00:00Z",
            "containerStatuses": [{
                "name": "nvflare-client", "image": "arcflare/nvflare:2.9", "imageID": "",
                "ready": "running" in state, "restartCount": restarts, "state": state,
                "lastState": last_state or {},
            }],
        },
    }


RUNNING = {"running": {"startedAt": "2026-11-29T08:00:05Z"}}
CRASH_LOOP = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}
LAST_ERROR = {"terminated": {"exitCode": 1, "reason": "Error",
                             "startedAt": "2026-11-29T08:01:00Z",
                             "finishedAt": "2026-11-29T08:01:09Z"}}


class KubeStub:
    def __init__(self) -> None:
        self.pods: list[dict] = []
        self.logs: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.deleted: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                stub._serve(self, "GET")

            def do_DELETE(self) -> None:
                stub._serve(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def kubeconfig(self, path: Path, namespace: str = "hospital") -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stub",
            "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
            "users": [{"name": "agent", "user": {"token": TOKEN}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "agent",
                                                     "namespace": namespace}}],
        }))
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append((method, url.path, query))
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(handler, 401, {"kind": "Status", "code": 401})
        if method == "GET" and (m := _LIST.match(url.path)):
            selector = query.get("labelSelector", "")
            key, _, value = selector.partition("=")
            items = [p for p in self.pods if p["metadata"]["namespace"] == m.group(1)
                     and p["metadata"]["labels"].get(key) == value]
            return self._reply(handler, 200, {"apiVersion": "v1", "kind": "PodList",
                                              "metadata": {}, "items": items})
        if method == "GET" and (m := _LOG.match(url.path)):
            text = self.logs.get(m.group(2))
            if text is None:
                return self._reply(handler, 404, {"kind": "Status", "code": 404})
            lines = text.splitlines()
            if query.get("timestamps") == "true":  # one fixed, increasing stamp per line
                lines = [f"2026-11-29T08:{i // 60:02d}:{i % 60:02d}.000000Z {line}"
                         for i, line in enumerate(lines)]
            if "tailLines" in query:
                lines = lines[-int(query["tailLines"]):]
            body = "\n".join(lines).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return None
        if method == "DELETE" and (m := _POD.match(url.path)):
            found = [p for p in self.pods if p["metadata"]["name"] == m.group(2)]
            if not found:
                return self._reply(handler, 404, {"kind": "Status", "code": 404})
            self.pods.remove(found[0])
            self.deleted.append(m.group(2))
            return self._reply(handler, 200, found[0])
        return self._reply(handler, 404, {"kind": "Status", "code": 404,
                                          "message": f"the stub does not serve {url.path}"})

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
