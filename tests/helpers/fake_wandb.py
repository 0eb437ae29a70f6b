"""A W&B server on a local port that answers just enough of the API for a run to start
online, and that can go down in the middle of the run: the port then refuses connections,
as a server that fails would. No W&B server runs here, and this one is only for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Run:
    """What the server holds of one run: its history rows, summary and config."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.config: dict[str, Any] = {}

    def steps(self, key: str = "trainer/global_step") -> list[Any]:
        """The value of ``key`` in each history row received, in order (``None``: absent)."""
        return [row.get(key) for row in self.rows]

    def bucket(self, name: str, project: dict[str, Any]) -> dict[str, Any]:
        return {"id": name, "name": name, "displayName": name, "description": "",
                "summaryMetrics": json.dumps(self.summary), "logLineCount": 0,
                "historyLineCount": len(self.rows), "eventsLineCount": 0,
                "historyTail": json.dumps([json.dumps(r) for r in self.rows[-10:]]),
                "eventsTail": "[]", "config": json.dumps(self.config), "tags": [],
                "notes": None, "sweepName": None,
                # wandb's client resumes only a run whose wandbConfig has "t" (it started)
                "wandbConfig": json.dumps({"t": 1} if self.rows else {}),
                "project": project}  # fmt: skip


def answer(server: FakeWandbServer, operation: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The data of a GraphQL reply: the fields the W&B client reads, with plain values."""
    entity = {"id": "e", "name": "tester"}
    project = {"id": "p", "name": variables.get("project") or "p", "entity": entity}
    if operation == "Viewer":
        return {"viewer": {"id": "u", "entity": "tester", "username": "tester", "email": "",
                           "flags": "{}", "teams": {"edges": []}}}  # fmt: skip
    if operation == "RunResumeStatus":
        run = server.runs.get(variables.get("name") or "")
        return {"model": {**project, "bucket": run and run.bucket(variables["name"], project)}}
    if operation == "UpsertBucket":
        name = variables.get("name") or "run"
        inserted = name not in server.runs
        run = server.runs.setdefault(name, Run())
        if variables.get("config"):
            run.config.update(json.loads(variables["config"]))
        return {"upsertBucket": {"bucket": run.bucket(name, project), "inserted": inserted}}
    if operation == "CreateRunFiles":
        base = server.url
        files = [{"name": f, "uploadUrl": f"{base}/upload/{f}"} for f in variables.get("files", [])]
        return {"createRunFiles": {"runID": "r", "uploadHeaders": [], "files": files}}
    return {}


class FakeWandbServer:
    """``with FakeWandbServer(fail_after=n) as server``: ``server.url`` answers until it has
    received ``n`` pushes of the run's file stream, then closes its port. ``history`` counts
    the history lines it received, ``runs`` holds each run's rows by run id. ``status=500``:
    every API request fails."""

    def __init__(self, fail_after: int | None = None, status: int = 200) -> None:
        self.fail_after = fail_after
        self.status = status  # 500: a server that is up but fails every request
        self.history = 0
        self.pushes = 0
        self.runs: dict[str, Run] = {}
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
                    variables = query.get("variables") or {}
                    reply = {"data": answer(server, query.get("operationName", ""), variables)}
                elif self.path.endswith("/file_stream") and body:
                    server.receive(self.path.split("/")[-2], json.loads(body).get("files", {}))
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

    def receive(self, run_id: str, files: dict[str, Any]) -> None:
        """One push of a run's file stream: its new history rows and its summary."""
        run = self.runs.setdefault(run_id, Run())
        history = files.get("wandb-history.jsonl", {}).get("content", [])
        rows = [json.loads(line) for line in history]
        run.rows += rows
        for line in files.get("wandb-summary.json", {}).get("content", []):
            run.summary = json.loads(line)
        self.history += len(rows)
        self.pushes += 1

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


def figure_steps(run: Run) -> list[int]:
    """The step of each history row holding the run's figures (not a sample picture's), in the
    order received: one per row of the run's metrics.csv when every row arrived once."""
    rows = [row for row in run.rows if any(k.startswith(("train/", "val/")) for k in row)]
    return [int(row["trainer/global_step"]) for row in rows]


def sync(paths: list[Path], server: FakeWandbServer) -> subprocess.CompletedProcess:
    """``wandb sync`` of offline run directories to ``server``, as a user uploads them."""
    wandb = Path(sys.executable).parent / "wandb"
    env = {**os.environ, "WANDB_BASE_URL": server.url, "WANDB_API_KEY": "x" * 40}
    env.pop("WANDB_MODE", None)
    return subprocess.run([str(wandb), "sync", *map(str, paths)], env=env, capture_output=True,
                          text=True, timeout=180)  # fmt: skip
