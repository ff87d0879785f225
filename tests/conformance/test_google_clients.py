"""Google's own client libraries against the emulator, unchanged apart from the endpoint.

google-auth mints delegated tokens (JWT bearer with `sub`) from the emulator's key file;
google-api-python-client reads the Directory and Gmail through `api_endpoint`.
"""

import base64
import email
import email.policy
import time

import pytest
from google.auth import crypt, jwt
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest
import requests

from conftest import DIRECTORY_READONLY, GMAIL_READONLY

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def credentials(emu, subject, scopes, key_info=None):
    info = key_info if key_info is not None else emu.key
    creds = service_account.Credentials.from_service_account_info(info, scopes=scopes)
    return creds.with_subject(subject)


def directory(emu, creds):
    return build(
        "admin", "directory_v1", credentials=creds,
        client_options={"api_endpoint": emu.base_url}, static_discovery=True,
    )


def gmail(emu, creds):
    return build(
        "gmail", "v1", credentials=creds,
        client_options={"api_endpoint": emu.base_url}, static_discovery=True,
    )


def refresh_error(creds):
    """Refreshes `creds`, expecting Google's flat token error; returns its JSON body."""
    with pytest.raises(RefreshError) as raised:
        creds.refresh(Request())
    body = raised.value.args[1]
    assert isinstance(body, dict), f"no JSON error body: {raised.value.args}"
    return body


def member_with_mail(emu, admin=None):
    """A directory user whose mailbox is synced (active, with a mailbox), other than the
    emulator's admin; `admin` False or True also asks for a (non-)admin."""
    users = directory(emu, credentials(emu, emu.admin_email, [DIRECTORY_READONLY])).users()
    listed = users.list(customer="my_customer", maxResults=500).execute()["users"]
    for user in listed:
        if user.get("suspended") or user.get("archived") or not user.get("isMailboxSetup"):
            continue
        if admin is not None and bool(user.get("isAdmin")) != admin:
            continue
        if user["primaryEmail"] != emu.admin_email:
            return user["primaryEmail"]
    pytest.fail("no active user with a mailbox besides the admin")


# --- tokens -------------------------------------------------------------------------

def test_delegated_token_via_with_subject(emulator):
    creds = credentials(emulator, emulator.admin_email, [GMAIL_READONLY, DIRECTORY_READONLY])
    creds.refresh(Request())
    assert creds.token and creds.token.startswith("ya29.")
    lifetime = creds.expiry.timestamp() - time.time()
    assert 300 < lifetime <= 3600 + 60, lifetime


def test_token_response_has_integer_expires_in(emulator):
    signer = crypt.RSASigner.from_service_account_info(emulator.key)
    now = int(time.time())
    claims = {
        "iss": emulator.key["client_email"], "sub": emulator.admin_email,
        "scope": GMAIL_READONLY, "aud": emulator.key["token_uri"],
        "iat": now, "exp": now + 3600,
    }
    body = post_assertion(emulator, jwt.encode(signer, claims, key_id=emulator.key["private_key_id"]))
    assert body.status_code == 200, body.text
    assert isinstance(body.json()["expires_in"], int)
    assert body.json()["token_type"] == "Bearer"


def post_assertion(emu, assertion):
    if isinstance(assertion, bytes):
        assertion = assertion.decode()
    return requests.post(
        emu.key["token_uri"],
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        timeout=30,
    )


def test_unknown_subject_is_invalid_grant(emulator):
    domain = emulator.admin_email.split("@")[1]
    body = refresh_error(credentials(emulator, f"nobody-here@{domain}", [GMAIL_READONLY]))
    assert body == {"error": "invalid_grant", "error_description": "Invalid email or User ID"}


def test_scope_not_delegated_is_unauthorized_client(emulator):
    creds = credentials(emulator, emulator.admin_email, ["https://www.googleapis.com/auth/gmail.send"])
    body = refresh_error(creds)
    assert body["error"] == "unauthorized_client"
    assert body["error_description"] == (
        "Client is unauthorized to retrieve access tokens using this method, "
        "or client not authorized for any of the scopes requested."
    )


def test_bad_scope_is_invalid_scope(emulator):
    body = refresh_error(credentials(emulator, emulator.admin_email, ["not-a-scope"]))
    assert body == {
        "error": "invalid_scope",
        "error_description": "Invalid OAuth scope or ID token audience provided.",
    }


def test_unknown_issuer_has_no_verifier(emulator):
    info = dict(emulator.key, client_email="someone-else@other-project.iam.gserviceaccount.com")
    body = refresh_error(credentials(emulator, emulator.admin_email, [GMAIL_READONLY], key_info=info))
    assert body == {
        "error": "invalid_grant",
        "error_description": "Invalid JWT: No valid verifier found for issuer.",
    }


SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


@pytest.mark.parametrize(
    "iat_offset, lifetime",
    [(0, 2 * 3600), (-3 * 3600, 3600), (0, -60)],
    ids=["too-long", "expired", "exp-before-iat"],
)
def test_bad_lifetime_is_rejected(emulator, iat_offset, lifetime):
    signer = crypt.RSASigner.from_service_account_info(emulator.key)
    iat = int(time.time()) + iat_offset
    claims = {
        "iss": emulator.key["client_email"], "sub": emulator.admin_email,
        "scope": GMAIL_READONLY, "aud": GOOGLE_TOKEN_AUDIENCE,
        "iat": iat, "exp": iat + lifetime,
    }
    response = post_assertion(emulator, jwt.encode(signer, claims, key_id=emulator.key["private_key_id"]))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": SHORT_LIVED}


def test_wrong_audience_fails_audience_check(emulator):
    signer = crypt.RSASigner.from_service_account_info(emulator.key)
    now = int(time.time())
    claims = {
        "iss": emulator.key["client_email"], "sub": emulator.admin_email,
        "scope": GMAIL_READONLY, "aud": "https://example.invalid/token",
        "iat": now, "exp": now + 3600,
    }
    response = post_assertion(emulator, jwt.encode(signer, claims, key_id=emulator.key["private_key_id"]))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "Invalid JWT: Failed audience check."}


def test_deleted_key_is_invalid_signature(fresh_emulator):
    emu = fresh_emulator
    emu.control("DELETE", f"/service-account/keys/{emu.key['private_key_id']}")
    body = refresh_error(credentials(emu, emu.admin_email, [GMAIL_READONLY]))
    assert body == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}


def test_new_key_works_after_old_one_is_deleted(fresh_emulator):
    emu = fresh_emulator
    new_key = emu.control("POST", "/service-account/keys").json()
    emu.control("DELETE", f"/service-account/keys/{emu.key['private_key_id']}")
    creds = credentials(emu, emu.admin_email, [GMAIL_READONLY], key_info=new_key)
    creds.refresh(Request())
    assert creds.token


def test_removed_delegation_is_unauthorized_client(fresh_emulator):
    emu = fresh_emulator
    emu.control("PUT", "/delegation", json={"client_id": emu.key["client_id"], "scopes": []})
    body = refresh_error(credentials(emu, emu.admin_email, [GMAIL_READONLY]))
    assert body["error"] == "unauthorized_client"


def test_restricted_api_access_is_admin_policy_enforced(fresh_emulator):
    emu = fresh_emulator
    emu.control("POST", "/api-access", json={"restricted": True})
    body = refresh_error(credentials(emu, emu.admin_email, [GMAIL_READONLY]))
    assert body["error"] == "admin_policy_enforced"
    assert body["error_description"]


def test_disabled_service_account_is_robot_disabled(fresh_emulator):
    emu = fresh_emulator
    emu.control("POST", "/service-account/disable", json={"disabled": True})
    body = refresh_error(credentials(emu, emu.admin_email, [GMAIL_READONLY]))
    assert body == {"error": "invalid_grant", "error_description": "Robot is disabled."}


def test_deleted_user_says_account_deleted(fresh_emulator):
    emu = fresh_emulator
    user = member_with_mail(emu)
    emu.control("DELETE", f"/users/{user}")
    body = refresh_error(credentials(emu, user, [GMAIL_READONLY]))
    assert body == {"error": "invalid_grant", "error_description": "The account has been deleted"}


# --- Directory ------------------------------------------------------------------------

def test_directory_users_list_across_pages(emulator):
    users = directory(emulator, credentials(emulator, emulator.admin_email, [DIRECTORY_READONLY])).users()
    request = users.list(customer="my_customer", maxResults=2)
    pages, listed = 0, []
    while request is not None:
        response = request.execute()
        pages += 1
        listed.extend(response["users"])
        request = users.list_next(request, response)
    every = users.list(customer="my_customer", maxResults=500).execute()["users"]
    assert pages >= 3
    assert [u["primaryEmail"] for u in listed] == [u["primaryEmail"] for u in every]
    assert len({u["id"] for u in listed}) == len(listed)
    assert any(u.get("aliases") for u in listed)
    assert any(u.get("suspended") for u in listed)
    assert any(u.get("isMailboxSetup") is False for u in listed)
    assert sum(1 for u in listed if u.get("isAdmin")) >= 2


def test_directory_needs_an_admin_subject(emulator):
    user = member_with_mail(emulator, admin=False)
    users = directory(emulator, credentials(emulator, user, [DIRECTORY_READONLY])).users()
    with pytest.raises(HttpError) as raised:
        users.list(customer="my_customer").execute()
    assert raised.value.resp.status == 403
    assert raised.value.reason == "Not Authorized to access this resource/api"


def test_gmail_without_gmail_scope_is_insufficient_permissions(emulator):
    service = gmail(emulator, credentials(emulator, emulator.admin_email, [DIRECTORY_READONLY]))
    with pytest.raises(HttpError) as raised:
        service.users().getProfile(userId="me").execute()
    assert raised.value.resp.status == 403
    assert raised.value.error_details[0]["reason"] == "insufficientPermissions"


# --- Gmail ----------------------------------------------------------------------------

def test_gmail_list_and_get_across_pages(emulator):
    user = member_with_mail(emulator)
    messages = gmail(emulator, credentials(emulator, user, [GMAIL_READONLY])).users().messages()
    request = messages.list(userId="me", labelIds=["INBOX"], maxResults=7)
    ids, pages = [], 0
    while request is not None:
        response = request.execute()
        pages += 1
        ids.extend(m["id"] for m in response.get("messages", []))
        request = messages.list_next(request, response)
    labels = gmail(emulator, credentials(emulator, user, [GMAIL_READONLY])).users().labels()
    inbox = labels.get(userId="me", id="INBOX").execute()
    assert len(ids) == len(set(ids)) == inbox["messagesTotal"]
    assert pages >= 2

    metadata = messages.get(
        userId="me", id=ids[0], format="metadata", metadataHeaders=["From", "Message-ID", "Subject"]
    ).execute()
    assert "INBOX" in metadata["labelIds"]
    assert isinstance(metadata["internalDate"], str) and isinstance(metadata["historyId"], str)
    names = {h["name"].lower() for h in metadata["payload"]["headers"]}
    assert names <= {"from", "message-id", "subject"} and "from" in names

    raw = messages.get(userId="me", id=ids[0], format="raw").execute()
    parsed = email.message_from_bytes(base64.urlsafe_b64decode(raw["raw"]), policy=email.policy.compat32)
    from_header = next(h["value"] for h in metadata["payload"]["headers"] if h["name"].lower() == "from")
    assert " ".join(parsed["From"].split()) == " ".join(from_header.split())


def test_history_across_pages_after_live_delivery(fresh_emulator):
    emu = fresh_emulator
    user = member_with_mail(emu)
    service = gmail(emu, credentials(emu, user, [GMAIL_READONLY])).users()
    start = service.getProfile(userId="me").execute()["historyId"]
    for n in range(3):
        emu.control("POST", "/messages/deliver", json={
            "from": "buyer@example-customer.co.uk", "to": [user], "subject": f"Order {n}",
        })
    request = service.history().list(userId="me", startHistoryId=start, historyTypes="messageAdded", maxResults=1)
    added, pages = [], 0
    while request is not None:
        response = request.execute()
        pages += 1
        for record in response.get("history", []):
            added.extend(m["message"]["id"] for m in record.get("messagesAdded", []))
        request = service.history().list_next(request, response)
    assert pages >= 3 and len(added) == 3
    subjects = set()
    for message_id in added:
        got = service.messages().get(userId="me", id=message_id, format="metadata", metadataHeaders=["Subject"]).execute()
        subjects.add(got["payload"]["headers"][0]["value"])
        assert "INBOX" in got["labelIds"]
    assert subjects == {"Order 0", "Order 1", "Order 2"}


def test_expired_history_is_not_found(fresh_emulator):
    emu = fresh_emulator
    user = member_with_mail(emu)
    service = gmail(emu, credentials(emu, user, [GMAIL_READONLY])).users()
    start = service.getProfile(userId="me").execute()["historyId"]
    emu.control("POST", "/messages/deliver", json={"from": "a@example-customer.com.au", "to": [user], "subject": "x"})
    emu.control("POST", f"/users/{user}/history/expire")
    with pytest.raises(HttpError) as raised:
        service.history().list(userId="me", startHistoryId=start).execute()
    assert raised.value.resp.status == 404
    assert raised.value.error_details[0]["reason"] == "notFound"


def test_batch_of_gets(emulator):
    user = member_with_mail(emulator)
    service = gmail(emulator, credentials(emulator, user, [GMAIL_READONLY])).users()
    ids = [m["id"] for m in service.messages().list(userId="me", maxResults=12).execute()["messages"]]
    results = {}

    def collect(request_id, response, exception):
        results[request_id] = exception or response

    # The Python client sends batches to the discovery document's rootUrl, not to
    # api_endpoint, so the batch URI is the one thing given explicitly.
    batch = BatchHttpRequest(callback=collect, batch_uri=emulator.base_url + "/batch/gmail/v1")
    for message_id in ids:
        batch.add(service.messages().get(userId="me", id=message_id, format="metadata"), request_id=message_id)
    batch.execute()
    assert set(results) == set(ids)
    for message_id, response in results.items():
        assert not isinstance(response, Exception), response
        assert response["id"] == message_id
