"""A W&B server on a local port that answers just enough of the API for a run to start
online, and that can go down in the middle of the run: the port then refuses connections,
as a server that fails would. No W&B server runs here, and this one is only for tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def answer(operation: str, variables: dict[str, Any], base: str) -> dict[str, Any]:
    """The data of a GraphQL reply: the fields the W&B client reads, with plain values."""
    entity = {"id": "e", "name": "tester"}
    project = {"id": "p", "name": variables.get("project") or "p", "entity": entity}
    if operation == "Viewer":
        return {"viewer": {"id": "u", "entity": "tester", "username": "tester", "email": "",
                           "flags": "{}", "teams": {"edges": []}}}  # fmt: skip
    if operation == "RunResumeStatus":
        return {"model": {**project, "bucket": None}}
    if operation == "UpsertBucket":
        name = variables.get("name") or "run"
        bucket = {"id": "r", "name": name, "displayName": name, "description": "",
                  "config": "{}", "sweepName": None, "historyLineCount": 0,
                  "project": project}  # fmt: skip
        return {"upsertBucket": {"bucket": bucket, "inserted": True}}
    if operation == "CreateRunFiles":
        files = [{"name": f, "uploadUrl": f"{base}/upload/{f}"} for f in variables.get("files", [])]
        return {"createRunFiles": {"runID": "r", "uploadHeaders": [], "files": files}}
    return {}


class FakeWandbServer:
    """``with FakeWandbServer(fail_after=n) as server``: ``server.url`` answers until it has
    received ``n`` pushes of the run's file stream, then closes its port. ``history`` counts
    the history lines it received. ``status=500``: every API request fails."""

    def __init__(self, fail_after: int | None = None, status: int = 200) -> None:
        self.fail_after = fail_after
        self.status = status  # 500: a server that is up but fails every request
        self.history = 0
        self.pushes = 0
        self.down = threading.Event()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply: dict[str, Any] = {}
                if self.path.startswith("/graphql"):
                    query = json.loads(body)
                    data = answer(query.get("operationName", ""), query.get("variables") or {},
                                  server.url)  # fmt: skip
                    reply = {"data": data}
                elif self.path.endswith("/file_stream") and body:
                    files = json.loads(body).get("files", {})
                    server.history += len(files.get("wandb-history.jsonl", {}).get("content", []))
                    server.pushes += 1
                self._send(reply)
                if server.fail_after is not None and server.pushes >= server.fail_after:
                    server.stop()

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._send({})

            def _send(self, reply: dict[str, Any]) -> None:
                data = json.dumps(reply).encode()
                self.send_response(server.status if self.path.startswith("/graphql") else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def stop(self) -> None:
        """The server fails: from now on its port refuses connections."""
        if not self.down.is_set():
            self.down.set()
            threading.Thread(target=self._close, daemon=True).start()

    def _close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> FakeWandbServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
