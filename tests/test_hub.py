"""``manifest --hub``: headers read through huggingface_hub's safetensors-metadata API, from a local server standing in for the hub."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_models.checkpoints import raw_shard, saved_checkpoint

from pytest_dummyweights._checkpoints.manifest import load_manifest, read_manifest
from pytest_dummyweights._checkpoints.sparse import write_sparse_shard

pytest.importorskip("huggingface_hub")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubStandIn(http.server.BaseHTTPRequestHandler):
    """Serves ``/OWNER/NAME/resolve/REVISION/FILE`` from ``root/OWNER/NAME/FILE`` with the headers the hub sends, ranges included."""

    root: Path
    served: list[int]

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def do_GET(self) -> None:
        self.answer(body=True)

    def answer(self, body: bool) -> None:
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
        path = self.root / match[1] / match[3] if match else None
        if path is None or not path.is_file():
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound" if match and (self.root / match[1]).is_dir() else "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = path.stat().st_size
        first, last = 0, size - 1
        requested = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if requested:
            first, last = int(requested[1]), min(int(requested[2] or last), last)
        self.send_response(206 if requested else 200)
        self.send_header("ETag", f'"{hashlib.sha1(str(path).encode()).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            with open(path, "rb") as file:
                file.seek(first)
                data = file.read(last - first + 1)
            self.served.append(len(data))
            self.wfile.write(data)


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[tuple[str, Path, list[int]]]:
    root = tmp_path / "hub"
    served: list[int] = []
    handler = type("Handler", (HubStandIn,), {"root": root, "served": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, served
    server.shutdown()
    server.server_close()


def run_cli(endpoint: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "0",
    }
    env.pop("HF_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest_dummyweights", "manifest", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.paddleformers
def test_sharded_repo_on_the_hub_gives_the_local_manifest(hub, tmp_path: Path) -> None:
    endpoint, root, _ = hub
    local = saved_checkpoint(tmp_path, "qwen3", "hf")
    (root / "org").mkdir(parents=True)
    local.rename(root / "org" / "qwen3-tiny")
    done = run_cli(endpoint, tmp_path, "--hub", "org/qwen3-tiny@main", "-o", str(tmp_path / "m.json"))
    assert done.returncode == 0, done.stderr
    from_hub, from_disk = load_manifest(tmp_path / "m.json"), read_manifest(root / "org" / "qwen3-tiny")
    assert from_hub.source == "hub:org/qwen3-tiny@main"
    assert (from_hub.tensors, from_hub.formats, from_hub.total_bytes) == (from_disk.tensors, from_disk.formats, from_disk.total_bytes)
    assert from_hub.config == json.loads((root / "org" / "qwen3-tiny" / "config.json").read_text())  # what --dummy-weights builds from


def test_hub_reads_headers_only(hub, tmp_path: Path) -> None:
    endpoint, root, served = hub
    repo = root / "org" / "big"
    repo.mkdir(parents=True)
    size = write_sparse_shard(repo / "model.safetensors", {f"w{i}": ("BF16", (8192, 8192)) for i in range(16)}, {"format": "pt"})
    done = run_cli(endpoint, tmp_path, "--hub", "org/big")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["tensors"]) == 16
    assert size > 2_000_000_000 and sum(served) < 200_000


def test_a_repo_the_hub_lacks_is_a_one_line_error(hub, tmp_path: Path) -> None:
    endpoint, _, _ = hub
    done = run_cli(endpoint, tmp_path, "--hub", "org/nothing")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --hub org/nothing: reading its safetensors headers failed") and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "says"), [(("CHECKPOINT", "--hub", "org/x"), "one of them"), (("--hub", "no-owner"), "expected OWNER/NAME[@REVISION]")]
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    done = run_cli("http://127.0.0.1:9", tmp_path, *(str(tmp_path) if arg == "CHECKPOINT" else arg for arg in args))
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1


def test_a_header_safetensors_refuses_is_refused_from_the_hub_too(hub, tmp_path: Path) -> None:
    """huggingface_hub parses headers without checking them: offsets that disagree with the shape are one line, as on disk."""
    endpoint, root, _ = hub
    raw_shard(root / "org" / "bad" / "model.safetensors", '{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', 4)
    done = run_cli(endpoint, tmp_path, "--hub", "org/bad")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    says = "tensor 'w': data_offsets [0, 4] span 4 bytes, shape [2] of F32 is 8 bytes"
    assert done.stderr.startswith(f"error: --hub org/bad: model.safetensors: {says}")
