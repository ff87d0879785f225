"""Microsoft's own identity library (msal) and plain `requests` against the Microsoft 365
emulator (`tributary emulate --provider microsoft`), unchanged apart from the endpoint:
msal with `instance_discovery=False` (the emulator is not a Microsoft host) and the
emulator's CA as the trust bundle.
"""

import datetime
import json
import pathlib
import subprocess
import time

import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import tributary_bin

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


class MicrosoftEmulator:
    """A running Microsoft emulator: emulator.json, app.json and an https session."""

    def __init__(self, out_dir: pathlib.Path, process: subprocess.Popen):
        self.process = process
        self.info = json.loads((out_dir / "emulator.json").read_text())
        self.app = json.loads((out_dir / "app.json").read_text())
        self.graph = self.info["graph_url"]
        self.http = session(self.info["ca_cert"])

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.http.request(method, self.info["control_url"] + path, timeout=30, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def msal_app(self, credential=None, authority=None, client_id=None):
        return msal.ConfidentialClientApplication(
            client_id or self.app["client_id"],
            client_credential=credential if credential is not None else self.app["client_secret"],
            authority=authority or self.info["authority"],
            instance_discovery=False,
            http_client=session(self.info["ca_cert"]),
        )

    def token(self, credential=None) -> str:
        result = self.msal_app(credential).acquire_token_for_client(scopes=GRAPH_DEFAULT)
        assert "access_token" in result, result
        return result["access_token"]

    def get(self, url: str, token: str, headers=None, **kwargs) -> requests.Response:
        if not url.startswith("https://"):
            url = self.graph + url
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        return self.http.get(url, headers=all_headers, timeout=30, **kwargs)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def session(ca_cert: str) -> requests.Session:
    """A session that trusts the emulator's CA. `trust_env` is off because
    REQUESTS_CA_BUNDLE in the environment would override `verify`."""
    http = requests.Session()
    http.trust_env = False
    http.verify = ca_cert
    return http


def start_microsoft(tmp_path: pathlib.Path, *extra: str) -> MicrosoftEmulator:
    out_dir = tmp_path / "emulator"
    log_path = tmp_path / "emulator.log"
    process = subprocess.Popen(
        [
            str(tributary_bin()), "emulate", "--provider", "microsoft",
            "--listen", "127.0.0.1:0", "--seed", "7", "--users", "6",
            "--messages-per-user", "40", "--out", str(out_dir), *extra,
        ],
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not (out_dir / "emulator.json").exists():
        if process.poll() is not None:
            pytest.fail(f"emulator exited with {process.returncode}: {log_path.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("emulator did not write emulator.json within 120 s")
        time.sleep(0.05)
    return MicrosoftEmulator(out_dir, process)


@pytest.fixture(scope="module")
def ms(tmp_path_factory):
    """One emulator for the tests that leave it as they found it."""
    running = start_microsoft(tmp_path_factory.mktemp("microsoft"))
    yield running
    running.stop()


@pytest.fixture
def fresh_ms(tmp_path):
    """An emulator of its own, for tests that change secrets, consent or limits."""
    running = start_microsoft(tmp_path)
    yield running
    running.stop()


def all_users(ms, token):
    users, url = [], "/users?$select=id,userPrincipalName,mail,proxyAddresses,accountEnabled&$top=2"
    pages = 0
    while url:
        response = ms.get(url, token)
        assert response.status_code == 200, response.text
        body = response.json()
        users += body["value"]
        pages += 1
        url = body.get("@odata.nextLink")
    return users, pages


def mailbox_user(ms, token):
    users, _ = all_users(ms, token)
    return next(u for u in users if u["mail"] and u["accountEnabled"])


def full_delta(ms, token, url, page_size=3):
    """Follows next links to the delta link: (items, pages, delta link)."""
    items, pages = [], 0
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    while True:
        response = ms.get(url, token, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            return items, pages, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


# --- identity ---------------------------------------------------------------------------


def test_msal_gets_a_token_with_the_client_secret_and_graph_accepts_it(ms):
    token = ms.token()
    response = ms.get("/users?$top=1", token)
    assert response.status_code == 200, response.text
    assert response.headers["request-id"]


def test_msal_gets_tokens_with_the_certificate_rs256_and_ps256(ms):
    key = pathlib.Path(ms.app["private_key_pem"]).read_text()
    certificate = pathlib.Path(ms.app["certificate_pem"]).read_text()
    # A thumbprint alone: RS256 with x5t (SHA-1).
    rs256 = ms.token({"private_key": key, "thumbprint": ms.app["thumbprint_sha1"]})
    # The public certificate: PS256 with x5t#S256.
    ps256 = ms.token({"private_key": key, "public_certificate": certificate})
    for token in (rs256, ps256):
        assert ms.get("/users?$top=1", token).status_code == 200


def test_msal_tolerates_a_trailing_slash_authority(ms):
    app = ms.msal_app(authority=ms.info["authority"] + "/")
    assert "access_token" in app.acquire_token_for_client(scopes=GRAPH_DEFAULT)


def unregistered_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"private_key": pem_key, "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}


def token_error(app, scopes=GRAPH_DEFAULT):
    result = app.acquire_token_for_client(scopes=scopes)
    assert "access_token" not in result, result
    return result["error"], result["error_codes"]


def test_token_errors_in_microsoft_s_shape(fresh_ms):
    ms = fresh_ms
    assert token_error(ms.msal_app("not-the-secret")) == ("invalid_client", [7000215])
    assert token_error(ms.msal_app(unregistered_certificate())) == ("invalid_client", [700027])
    assert token_error(ms.msal_app(client_id="11111111-2222-3333-4444-555555555555")) == (
        "unauthorized_client", [700016])
    assert token_error(ms.msal_app(), scopes=["User.Read"]) == ("invalid_scope", [70011])
    common = ms.info["base_url"] + "/common"
    assert token_error(ms.msal_app(authority=common)) == ("invalid_request", [9001023])

    # An unknown tenant fails OpenID discovery (msal raises) and the token endpoint.
    unknown = ms.info["base_url"] + "/00000000-0000-0000-0000-000000000001"
    with pytest.raises(ValueError):
        ms.msal_app(authority=unknown)
    body = ms.http.post(unknown + "/oauth2/v2.0/token", data={
        "client_id": ms.app["client_id"], "client_secret": ms.app["client_secret"],
        "grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0],
    }).json()
    assert (body["error"], body["error_codes"]) == ("invalid_request", [90002])
    for field in ("error_description", "timestamp", "trace_id", "correlation_id"):
        assert field in body
    assert body["error_description"].startswith("AADSTS90002:")

    ms.control("POST", "/app/disable", json={"disabled": True})
    assert token_error(ms.msal_app()) == ("unauthorized_client", [7000112])
    ms.control("POST", "/app/disable", json={"disabled": False})

    ms.control("POST", "/consent/revoke")
    assert token_error(ms.msal_app()) == ("invalid_client", [7000229])
    ms.control("POST", "/consent/grant")

    ms.control("POST", "/app/secrets/expire")
    assert token_error(ms.msal_app()) == ("invalid_client", [7000222])
    rotated = ms.control("POST", "/app/secrets", json={"replace": True}).json()["client_secret"]
    assert "access_token" in ms.msal_app(rotated).acquire_token_for_client(scopes=GRAPH_DEFAULT)


def test_admin_consent_redirects_and_creates_the_service_principal(tmp_path):
    ms = start_microsoft(tmp_path, "--no-consent")
    try:
        assert token_error(ms.msal_app()) == ("invalid_client", [7000229])
        redirect = "https://tributary.example/consent/callback"
        params = {"client_id": ms.app["client_id"], "redirect_uri": redirect, "state": "s1",
                  "scope": "https://graph.microsoft.com/.default"}
        ms.control("PUT", "/consent/decline", json={"decline": True})
        declined = ms.http.get(ms.info["base_url"] + "/organizations/v2.0/adminconsent",
                               params=params, allow_redirects=False)
        assert declined.status_code in (302, 303)
        assert "error=consent_required" in declined.headers["location"]
        ms.control("PUT", "/consent/decline", json={"decline": False})
        granted = ms.http.get(ms.info["base_url"] + "/organizations/v2.0/adminconsent",
                              params=params, allow_redirects=False)
        location = granted.headers["location"]
        assert location.startswith(redirect + "?admin_consent=True&tenant=" + ms.info["tenant_id"])
        assert "state=s1" in location
        assert ms.token()
    finally:
        ms.stop()


# --- Graph ------------------------------------------------------------------------------


def test_users_across_pages_with_proxy_addresses(ms):
    token = ms.token()
    users, pages = all_users(ms, token)
    assert len(users) == ms.info["users"]
    assert pages == (len(users) + 1) // 2
    with_mail = [u for u in users if u["mail"]]
    for user in with_mail:
        assert f"SMTP:{user['mail']}" in user["proxyAddresses"]
    assert any(a.startswith("smtp:") for u in with_mail for a in u["proxyAddresses"])
    too_many = ms.get("/users?$top=1000", token)
    assert too_many.status_code == 400


def test_folders_and_child_folders(ms):
    token = ms.token()
    user = mailbox_user(ms, token)
    response = ms.get(f"/users/{user['id']}/mailFolders?$top=100", token)
    assert response.status_code == 200, response.text
    names = {f["displayName"] for f in response.json()["value"]}
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk Email"} <= names
    inbox = ms.get(f"/users/{user['id']}/mailFolders/inbox", token).json()
    assert inbox["totalItemCount"] > 0
    children = ms.get(f"/users/{user['id']}/mailFolders/inbox/childFolders", token).json()["value"]
    assert len(children) == inbox["childFolderCount"]


def test_delta_pages_to_its_link_then_sees_delivery_move_and_expiry(fresh_ms):
    ms = fresh_ms
    token = ms.token()
    user = mailbox_user(ms, token)
    base = f"/users/{user['id']}/mailFolders/inbox/messages/delta?$select=subject,from,toRecipients,internetMessageId"
    items, pages, delta_link = full_delta(ms, token, base)
    total = ms.get(f"/users/{user['id']}/mailFolders/inbox", token).json()["totalItemCount"]
    assert len({i["id"] for i in items}) == total
    assert pages > 1
    assert set(items[0]) >= {"id", "subject", "from", "toRecipients"}
    assert "body" not in items[0], "the first request's $select is kept by the links"
    assert delta_link.startswith("https://") and "$deltatoken=" in delta_link

    delivered = ms.control("POST", "/messages/deliver", json={
        "from": "someone@outside.example", "to": [user["mail"]], "subject": "Live hello",
        "body": "hi"}).json()
    new_items, _, delta_link = full_delta(ms, token, delta_link)
    assert [i["subject"] for i in new_items] == ["Live hello"]
    moved_id = new_items[0]["id"]
    assert delivered["delivered"][0]["rest_id"] == moved_id

    ms.control("POST", f"/users/{user['id']}/messages/{moved_id}/move", json={"folder": "archive"})
    removed, _, delta_link = full_delta(ms, token, delta_link)
    assert removed == [{"@odata.type": "#microsoft.graph.message", "id": moved_id,
                        "@removed": {"reason": "deleted"}}]

    ms.control("POST", f"/users/{user['id']}/delta/expire")
    gone = ms.get(delta_link, token)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "SyncStateNotFound"


def test_message_headers_and_immutable_ids(ms):
    token = ms.token()
    user = mailbox_user(ms, token)
    listed = ms.get(f"/users/{user['id']}/mailFolders/inbox/messages?$top=1", token,
                    headers={"Prefer": 'IdType="ImmutableId"'}).json()["value"][0]
    one = ms.get(f"/users/{user['id']}/messages/{listed['id']}?$select=internetMessageHeaders,from", token,
                 headers={"Prefer": 'IdType="ImmutableId"'})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["id"] == listed["id"]
    assert any(h["name"].lower() == "from" for h in body["internetMessageHeaders"])
    assert set(body["from"]["emailAddress"]) == {"name", "address"}
    assert "internetMessageHeaders" not in listed


def test_batch_with_depends_on_and_per_item_status(ms):
    token = ms.token()
    user = mailbox_user(ms, token)
    payload = {"requests": [
        {"id": "1", "method": "GET", "url": f"/users/{user['id']}/mailFolders/inbox"},
        {"id": "2", "method": "GET", "url": "/users/nobody@nowhere.example", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/users/{user['id']}", "dependsOn": ["2"]},
    ]}
    response = ms.http.post(ms.graph + "/$batch", json=payload,
                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    statuses = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert statuses == {"1": 200, "2": 404, "3": 424}
    too_big = {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]}
    assert ms.http.post(ms.graph + "/$batch", json=too_big,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 400


def test_throttling_answers_429_with_retry_after(fresh_ms):
    ms = fresh_ms
    token = ms.token()
    user = mailbox_user(ms, token)
    ms.control("PUT", "/throttling", json={"requests_per_window": 3, "window_seconds": 600})
    answers = [ms.get(f"/users/{user['id']}/mailFolders/inbox", token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].json()["error"]["code"] == "ApplicationThrottled"
    counters = ms.control("GET", "/counters").json()
    assert counters["mailboxes"][user["id"]]["throttled"] == {"window": 1}


def test_access_policy_and_mailbox_without_exchange(fresh_ms):
    ms = fresh_ms
    token = ms.token()
    users, _ = all_users(ms, token)
    allowed, denied = [u for u in users if u["mail"]][:2]
    ms.control("PUT", "/access-policy", json={"members": [allowed["id"]], "access_right": "RestrictAccess"})
    assert ms.get(f"/users/{allowed['id']}/mailFolders/inbox", token).status_code == 200
    refused = ms.get(f"/users/{denied['id']}/mailFolders/inbox", token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ErrorAccessDenied"
    ms.control("DELETE", "/access-policy")

    without = [u for u in users if not u["mail"]]
    assert without, "the generated organization has a user without a mailbox"
    response = ms.get(f"/users/{without[0]['id']}/mailFolders/inbox", token)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"


def test_graph_refuses_bad_tokens_and_missing_roles(fresh_ms):
    ms = fresh_ms
    assert ms.get("/users", "garbage").status_code == 401
    ms.control("POST", "/permissions/remove", json={"permission": "User.Read.All"})
    token = ms.token()
    refused = ms.get("/users", token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    ms.control("POST", "/tokens/expire")
    expired = ms.get("/users", token)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"
