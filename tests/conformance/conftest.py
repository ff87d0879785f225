"""Starts `tributary emulate` on a free loopback port for the conformance tests.

The binary is `$TRIBUTARY_BIN`, else `target/debug/tributary` of this checkout
(build it first: `cargo build -p tributary`).
"""

import json
import os
import pathlib
import subprocess
import time

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
DIRECTORY_READONLY = "https://www.googleapis.com/auth/admin.directory.user.readonly"


def tributary_bin() -> pathlib.Path:
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = pathlib.Path(os.environ.get("TRIBUTARY_BIN", target / "debug" / "tributary"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `cargo build -p tributary` first")
    return path


class Emulator:
    """A running emulator: its emulator.json, key file and control URL."""

    def __init__(self, out_dir: pathlib.Path, process: subprocess.Popen):
        self.out_dir = out_dir
        self.process = process
        self.info = json.loads((out_dir / "emulator.json").read_text())
        self.base_url = self.info["base_url"].rstrip("/")
        self.control_url = self.info["control_url"].rstrip("/")
        self.admin_email = self.info["admin_email"]
        self.key_file = out_dir / "service-account.json"
        self.key = json.loads(self.key_file.read_text())

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(method, self.control_url + path, timeout=30, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_emulator(tmp_path: pathlib.Path, *extra: str) -> Emulator:
    out_dir = tmp_path / "emulator"
    log = open(tmp_path / "emulator.log", "wb")
    process = subprocess.Popen(
        [
            str(tributary_bin()), "emulate",
            "--listen", "127.0.0.1:0",
            "--seed", "7",
            "--users", "6",
            "--messages-per-user", "40",
            "--out", str(out_dir),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not (out_dir / "emulator.json").exists():
        if process.poll() is not None:
            pytest.fail(f"emulator exited with {process.returncode}: {(tmp_path / 'emulator.log').read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("emulator did not write emulator.json within 120 s")
        time.sleep(0.05)
    return Emulator(out_dir, process)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """One emulator shared by the read-only tests of a module."""
    running = start_emulator(tmp_path_factory.mktemp("shared"))
    yield running
    running.stop()


@pytest.fixture
def fresh_emulator(tmp_path):
    """An emulator of its own, for tests that change keys, grants or users."""
    running = start_emulator(tmp_path)
    yield running
    running.stop()
