"""google-api-python-client drives Calendar v3 against the emulator.

Calendar's service path is `calendar/v3/`, so `api_endpoint` is `<base_url>/calendar/v3/`
(see ../shared/protocols/google-calendar-people-tasks-push-addon.md, section 0). Tokens
are delegated (JWT bearer with `sub`) from the emulator's key file by google-auth.
"""

import pytest
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"


def calendar(emu, subject, scopes=(CALENDAR_READONLY,)):
    creds = service_account.Credentials.from_service_account_info(emu.key, scopes=list(scopes))
    return build(
        "calendar", "v3", credentials=creds.with_subject(subject),
        client_options={"api_endpoint": emu.base_url + "/calendar/v3/"}, static_discovery=True,
    )


def organizer_of_a_series(emu):
    """A member organizing a recurring series with guests, and that series."""
    meetings = emu.control("GET", "/calendar/events").json()
    for meeting in meetings:
        if len(meeting["occurrences"]) > 1 and not meeting["cancelled"] and meeting["organizer"] in meeting["calendars"]:
            return meeting["organizer"], meeting
    pytest.fail("no member organizes a series")


def list_pages(events, **params):
    """Every page of an events.list, following nextPageToken as the client does."""
    pages = []
    request = events.list(calendarId="primary", **params)
    while request is not None:
        response = request.execute()
        pages.append(response)
        request = events.list_next(request, response)
    return pages


def items(pages):
    return [item for page in pages for item in page.get("items", [])]


def test_calendar_list_shows_the_primary_calendar(emulator):
    member, _ = organizer_of_a_series(emulator)
    listed = calendar(emulator, member).calendarList().list().execute()
    assert [entry["id"] for entry in listed["items"]] == [member]
    assert listed["items"][0]["primary"] is True


def test_full_listing_across_pages_with_the_sync_token_on_the_last_page(emulator):
    member, series = organizer_of_a_series(emulator)
    events = calendar(emulator, member).events()
    pages = list_pages(events, singleEvents=True, maxResults=4)
    assert len(pages) > 2
    for page in pages[:-1]:
        assert "nextPageToken" in page and "nextSyncToken" not in page
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]
    listed = items(pages)
    in_one_page = items(list_pages(events, singleEvents=True, maxResults=2500))
    assert [e["id"] for e in listed] == [e["id"] for e in in_one_page]
    instances = [e for e in listed if e.get("recurringEventId") == series["id"]]
    assert instances, "the series' instances are listed"
    assert all(e["iCalUID"] == series["ical_uid"] and "originalStartTime" in e for e in instances)
    assert all(e["status"] != "cancelled" for e in listed)
    # Without singleEvents, the series is one item carrying its rule.
    masters = items(list_pages(events, maxResults=2500))
    master = next(e for e in masters if e["id"] == series["id"])
    assert master["recurrence"][0].startswith("RRULE:")


def test_incremental_sync_sees_a_live_change_and_a_cancellation(fresh_emulator):
    emu = fresh_emulator
    member, series = organizer_of_a_series(emu)
    events = calendar(emu, member).events()
    sync_token = list_pages(events, singleEvents=True)[-1]["nextSyncToken"]

    created = emu.control("POST", "/calendar/events", json={
        "organizer": member,
        "attendees": [{"email": "buyer@example-customer.com", "response": "tentative"}],
        "summary": "Pricing call",
        "start": "2030-01-07T10:00:00Z",
        "end": "2030-01-07T10:30:00Z",
    }).json()
    cancelled_occurrence = series["occurrences"][1]
    emu.control("POST", f"/calendar/events/{series['id']}/cancel", json={"occurrence": cancelled_occurrence})

    changes = list_pages(events, singleEvents=True, syncToken=sync_token)
    assert "nextSyncToken" in changes[-1]
    changed = items(changes)
    new = next(e for e in changed if e["id"] == created["id"])
    assert new["status"] == "confirmed" and new["summary"] == "Pricing call"
    guest = next(a for a in new["attendees"] if a["email"] == "buyer@example-customer.com")
    assert guest["responseStatus"] == "tentative"
    stubs = [e for e in changed if e["status"] == "cancelled"]
    assert len(stubs) == 1
    assert stubs[0]["recurringEventId"] == series["id"]
    assert "originalStartTime" in stubs[0]
    assert len(changed) == 2

    # The next incremental call from the new token sees nothing more.
    again = list_pages(events, singleEvents=True, syncToken=changes[-1]["nextSyncToken"])
    assert items(again) == []


@pytest.mark.parametrize("forbidden", [
    {"timeMin": "2025-01-01T00:00:00Z"},
    {"timeMax": "2025-01-01T00:00:00Z"},
    {"orderBy": "updated"},
    {"q": "pricing"},
    {"iCalUID": "x@example.com"},
    {"updatedMin": "2025-01-01T00:00:00Z"},
])
def test_a_forbidden_parameter_with_a_sync_token_is_400(emulator, forbidden):
    member, _ = organizer_of_a_series(emulator)
    events = calendar(emulator, member).events()
    sync_token = list_pages(events)[-1]["nextSyncToken"]
    with pytest.raises(HttpError) as raised:
        events.list(calendarId="primary", syncToken=sync_token, **forbidden).execute()
    assert raised.value.resp.status == 400


def test_an_expired_sync_token_is_410_full_sync_required(fresh_emulator):
    emu = fresh_emulator
    member, _ = organizer_of_a_series(emu)
    events = calendar(emu, member).events()
    sync_token = list_pages(events)[-1]["nextSyncToken"]
    emu.control("POST", "/calendar/sync-tokens/expire", json={"calendar": member})
    with pytest.raises(HttpError) as raised:
        events.list(calendarId="primary", syncToken=sync_token).execute()
    assert raised.value.resp.status == 410
    assert raised.value.error_details[0]["reason"] == "fullSyncRequired"


def test_a_token_without_the_calendar_scope_is_403(emulator):
    member, _ = organizer_of_a_series(emulator)
    events = calendar(emulator, member, scopes=(GMAIL_READONLY,)).events()
    with pytest.raises(HttpError) as raised:
        events.list(calendarId="primary").execute()
    assert raised.value.resp.status == 403
    assert raised.value.error_details[0]["reason"] == "insufficientPermissions"
