"""Reads the history of a W&B run directory back from its files, offline (used by the tests).

wandb 0.31 writes ``run-<id>.wandb``: a LevelDB-style log (32 KiB blocks, 7-byte record headers,
records split FIRST/MIDDLE/LAST across blocks) of ``wandb_internal_pb2.Record`` protobufs. The
history rows are the ``history`` records, one ``{key: value_json}`` per ``wandb.log``. This leans
on wandb internals, which is why pyproject pins wandb to 0.31.x (PITFALLS J). The history
reaches the file only once the run has finished (``wandb.finish()``, which the CLI calls).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7  # checksum (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(data: bytes):
    """The payloads of a LevelDB-log file, reassembled across blocks."""
    i = HEADER  # the file starts with a 7-byte ":W&B" header
    pending = b""
    while i + HEADER <= len(data):
        if BLOCK - i % BLOCK < HEADER:  # too little room left in this block: padding
            i += BLOCK - i % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[i : i + HEADER])
        i += HEADER
        payload, i = data[i : i + length], i + length
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            yield pending + payload
            pending = b""
        else:  # zero padding at the end of a file still being written
            break


def find_run_files(run_dir: str | Path) -> list[Path]:
    """The ``.wandb`` files under a run directory (or a wandb/ folder), oldest first."""
    return sorted(Path(run_dir).rglob("run-*.wandb"), key=lambda p: p.stat().st_mtime)


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every logged row of every W&B run under ``run_dir``, in order."""
    from wandb.proto import wandb_internal_pb2

    rows: list[dict[str, Any]] = []
    for path in find_run_files(run_dir):
        for payload in _records(path.read_bytes()):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {
                        (item.key or "/".join(item.nested_key)): json.loads(item.value_json)
                        for item in record.history.item
                    }
                )
    return rows


def logged_images(run_dir: str | Path) -> list[Path]:
    """The PNG files W&B saved for logged images."""
    return sorted(Path(run_dir).rglob("files/media/images/*.png"))
