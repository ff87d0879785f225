"""Fuzzes the REST API with schemathesis against its own OpenAPI document.

A real `tributary serve` (SQLite in a temp data directory, no worker) is connected to
`tributary emulate` and its directory read, so that members, links and mailboxes
exist; then schemathesis generates requests for every operation (a bounded number of
examples each, from a fixed seed) and checks that none answers 5xx and that every
answer has a documented status, content type and schema.

The operations that can take the run's own credentials away (revoking an API token,
disabling or removing an account) run last, in a second pass, so the first pass is
not cut short by a token it revoked itself.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest
import requests

from conftest import start_emulator, tributary_bin

# Examples per operation and the seed: together they make the run reproducible and keep
# it to a couple of minutes on a 2-core machine.
MAX_EXAMPLES = int(os.environ.get("TRIBUTARY_SCHEMATHESIS_EXAMPLES", "25"))
SEED = 20261206
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
# A 502 is the API's documented answer when Google refuses (`provider_error` with
# Google's words, on the operations that call Google: status_code_conformance checks it
# is documented there); every other 5xx, 500 above all, is a failure.
CONFIG = """
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "502"]
"""
# Operations that may revoke the run's token or disable its account.
LAST = ["revokeToken", "updateAccount", "removeAccount"]
ADMIN = "fuzz-admin@acme.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin(data_dir: pathlib.Path, *args: str) -> str:
    done = subprocess.run(
        [str(tributary_bin()), "admin", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"admin {args}: {done.stderr}"
    return done.stdout.strip()


class Served:
    def __init__(self, process: subprocess.Popen, base: str, token: str, log: pathlib.Path):
        self.process, self.base, self.token, self.log = process, base, token, log

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, self.base + path, headers=headers, timeout=60, **kwargs)


@pytest.fixture
def served(tmp_path):
    emulator = start_emulator(tmp_path)
    data_dir = tmp_path / "data"
    admin(data_dir, "create-tenant", "acme")
    admin(data_dir, "create-user", "acme", ADMIN, "--role", "admin")
    token = admin(data_dir, "create-api-token", "acme", "--user", ADMIN, "--name", "schemathesis")
    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [
            str(tributary_bin()), "serve",
            "--data-dir", str(data_dir),
            "--listen", f"127.0.0.1:{port}",
            "--google-api-url", emulator.base_url,
            "--no-worker",
        ],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    served = Served(process, f"http://127.0.0.1:{port}/api/v1", token, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(served.base + "/openapi.json", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"tributary serve did not come up: {log.read_text()}")
        time.sleep(0.1)
    connected = served.call(
        "POST", "/connection",
        json={"key_file": emulator.key, "admin_email": emulator.admin_email},
    )
    assert connected.status_code == 200, connected.text
    rebuilt = served.call("POST", "/delegation/rebuild")
    assert rebuilt.status_code == 200, rebuilt.text
    yield served
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    emulator.stop()


def schemathesis(served: Served, tmp_path: pathlib.Path, name: str, *filters: str):
    executable = pathlib.Path(sys.executable).parent / "schemathesis"
    if not executable.exists():
        pytest.skip("schemathesis is not installed (scripts/test.sh installs requirements.txt)")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(executable), "--config-file", str(config), "run", served.base + "/openapi.json",
        "--url", served.base,
        "--header", f"Authorization: Bearer {served.token}",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit",
        "--report-dir", str(tmp_path / f"report-{name}"),
        *filters,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = done.stdout + done.stderr
    print(output)
    return done.returncode, output


def test_the_api_survives_schemathesis(served, tmp_path):
    excluded = [arg for op in LAST for arg in ("--exclude-operation-id", op)]
    code, output = schemathesis(served, tmp_path, "main", *excluded)
    assert code == 0, f"schemathesis found problems:\n{output}\n--- server log ---\n{served.log.read_text()[-20000:]}"
    assert served.call("GET", "/members").status_code == 200, "the run kept its token"

    included = [arg for op in LAST for arg in ("--include-operation-id", op)]
    code, output = schemathesis(served, tmp_path, "last", *included)
    assert code == 0, f"schemathesis found problems:\n{output}\n--- server log ---\n{served.log.read_text()[-20000:]}"
    # Every operation of the document was exercised by one pass or the other.
    document = requests.get(served.base + "/openapi.json", timeout=30).json()
    ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert set(LAST) <= ids
