"""A W&B server on a local port that answers just enough of the API for a run to start
online, to resume, and to run a sweep (create it, register agents, hand each trial its values,
hand a preempted trial out again), and that can go down in the middle of a run: the port then
refuses connections, as a server that fails would. No W&B server runs here, and this one is
only for tests."""

from __future__ import annotations

import json
import math
import os
import re
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
        self.sweep: str | None = None  # the sweep this run is a trial of
        self.preempting = False  # the run said it was preempted (wandb's mark_preempting)
        self.exitcode: int | None = None

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


class Sweep:
    """A sweep of ``trials`` trials. Trial i takes, for each parameter, the i-th of its
    ``values`` (cyclically), its ``value``, or a point spread over its [min, max] range, so
    that no two trials have the same values where the sweep lets them differ."""

    def __init__(self, name: str, config: str, trials: int) -> None:
        import yaml

        self.name, self.yaml = name, config
        self.config = yaml.safe_load(config)
        self.trials = [self.values(i, trials) for i in range(trials)]
        self.handed: dict[str, tuple[str, dict]] = {}  # run id: (agent, values)
        self.resumed: set[tuple[str, str]] = set()  # (run id, agent) handed out again

    def values(self, i: int, trials: int) -> dict[str, dict[str, Any]]:
        out = {}
        for key, spec in self.config.get("parameters", {}).items():
            if "values" in spec:
                value = spec["values"][i % len(spec["values"])]
            elif "value" in spec:
                value = spec["value"]
            else:  # a range: evenly spaced, on a log scale for log distributions
                lo, hi, t = spec["min"], spec["max"], (i + 1) / (trials + 1)
                log = "log" in spec.get("distribution", "")
                value = (
                    math.exp(math.log(lo) + t * math.log(hi / lo)) if log else lo + t * (hi - lo)
                )
                value = round(value) if spec.get("distribution", "").startswith("int") else value
            out[key] = {"value": value}
        return out

    def described(self) -> dict[str, Any]:
        return {"id": self.name, "name": self.name, "method": self.config.get("method"),
                "state": "RUNNING", "description": None, "config": self.yaml,
                "createdAt": None, "heartbeatAt": None, "updatedAt": None,
                "earlyStopJobRunning": False, "bestLoss": None, "controller": None,
                "scheduler": None, "runs": {"edges": []}}  # fmt: skip

    def next_commands(self, agent: str, running: set[str], runs: dict[str, Run]) -> list[dict]:
        if running:
            return []  # the agent's trial trains: nothing new
        program = self.config.get("program")
        for rid, (owner, args) in self.handed.items():  # a trial preempted: to a new agent
            run = runs.get(rid)
            if run and run.preempting and owner != agent and (rid, agent) not in self.resumed:
                self.resumed.add((rid, agent))
                run.preempting = False
                return [{"type": "resume", "run_id": rid, "args": args, "program": program}]
        if len(self.handed) < len(self.trials):
            rid = f"{self.name}-trial{len(self.handed) + 1}"
            self.handed[rid] = (agent, self.trials[len(self.handed)])
            return [{"type": "run", "run_id": rid, "args": self.handed[rid][1],
                     "program": program}]  # fmt: skip
        return [{"type": "exit"}]


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
        run.sweep = variables.get("sweep") or run.sweep
        if variables.get("config"):
            run.config.update(json.loads(variables["config"]))
        return {"upsertBucket": {"bucket": run.bucket(name, project), "inserted": inserted}}
    if operation in ("UpsertSweep", "SweepWithRuns", "CreateAgent", "Heartbeat"):
        return server.sweep_answer(operation, variables, project)
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

    def __init__(self, fail_after: int | None = None, status: int = 200, trials: int = 2) -> None:
        self.fail_after = fail_after
        self.trials = trials  # each sweep hands out this many trials, then tells agents to exit
        self.status = status  # 500: a server that is up but fails every request
        self.history = 0
        self.pushes = 0
        self.runs: dict[str, Run] = {}
        self.sweeps: dict[str, Sweep] = {}
        self.agents: dict[str, Sweep] = {}
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
                    named = re.search(r"(?:query|mutation)\s+(\w+)", query.get("query", ""))
                    operation = query.get("operationName") or (named and named[1]) or ""
                    reply = {"data": answer(server, operation, variables)}
                elif self.path.endswith("/file_stream") and body:
                    server.receive(self.path.split("/")[-2], json.loads(body))
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

    def receive(self, run_id: str, push: dict[str, Any]) -> None:
        """One push of a run's file stream: its new history rows and its summary, and whether
        it was preempted or ended."""
        run = self.runs.setdefault(run_id, Run())
        run.preempting = push.get("preempting", run.preempting)
        run.exitcode = push.get("exitcode", run.exitcode)
        files = push.get("files", {})
        history = files.get("wandb-history.jsonl", {}).get("content", [])
        rows = [json.loads(line) for line in history]
        run.rows += rows
        for line in files.get("wandb-summary.json", {}).get("content", []):
            run.summary = json.loads(line)
        self.history += len(rows)
        self.pushes += 1

    def sweep_answer(self, operation: str, variables: dict, project: dict) -> dict[str, Any]:
        """The sweep protocol: create a sweep, describe it, register an agent, and at each
        heartbeat hand the agent a command (a trial to run or resume, or exit)."""
        if operation == "UpsertSweep":
            name = f"sweep{len(self.sweeps) + 1}"
            self.sweeps[name] = Sweep(name, variables["config"], self.trials)
            return {"upsertSweep": {"sweep": {"name": name, "project": project},
                                    "configValidationWarnings": []}}  # fmt: skip
        if operation == "SweepWithRuns":
            sweep = self.sweeps.get(variables["sweep"])
            return {"project": {**project, "sweep": sweep and sweep.described()}}
        if operation == "CreateAgent":
            agent = f"agent{len(self.agents) + 1}"
            self.agents[agent] = self.sweeps[variables["sweep"]]
            return {"createAgent": {"agent": {"id": agent}}}
        sweep = self.agents[variables["id"]]
        running = {rid for rid, up in json.loads(variables.get("runState") or "{}").items() if up}
        commands = sweep.next_commands(variables["id"], running, self.runs)
        return {"agentHeartbeat": {"agent": {"id": variables["id"]},
                                   "commands": json.dumps(commands)}}  # fmt: skip

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
