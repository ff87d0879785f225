"""Microsoft's Graph SDK (msgraph-sdk with azure-identity) against the Microsoft 365
emulator, unchanged apart from the endpoint: `disable_instance_discovery`, the emulator's
CA, `allowed_hosts` for the emulator's host (else kiota silently sends no token) and the
adapter's `base_url`. msgraph-sdk and its dependencies are pinned in requirements.txt.
"""

import asyncio

import pytest

from test_microsoft import start_microsoft

import httpx  # noqa: E402
import msgraph  # noqa: E402
from azure.identity.aio import ClientSecretCredential  # noqa: E402
from kiota_authentication_azure.azure_identity_authentication_provider import (  # noqa: E402
    AzureIdentityAuthenticationProvider,
)
from msgraph_core import GraphClientFactory  # noqa: E402


async def users_and_inbox_delta(info, app):
    credential = ClientSecretCredential(
        app["tenant_id"], app["client_id"], app["client_secret"],
        authority=info["base_url"], disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=info["ca_cert"], trust_env=False)
    )
    adapter = msgraph.GraphRequestAdapter(auth, client=http)
    adapter.base_url = info["graph_url"]
    client = msgraph.GraphServiceClient(request_adapter=adapter)
    try:
        users = (await client.users.get()).value
        user = next(u for u in users if u.mail)
        inbox = await client.users.by_user_id(user.id).mail_folders.by_mail_folder_id("inbox").get()
        builder = client.users.by_user_id(user.id).mail_folders.by_mail_folder_id("inbox").messages.delta
        page = await builder.get()
        items = list(page.value)
        while page.odata_next_link:
            page = await builder.with_url(page.odata_next_link).get()
            items += page.value
        return users, inbox, items, page.odata_delta_link
    finally:
        await credential.close()


def test_msgraph_sdk_reads_users_and_a_full_inbox_delta(tmp_path):
    ms = start_microsoft(tmp_path)
    try:
        users, inbox, items, delta_link = asyncio.run(users_and_inbox_delta(ms.info, ms.app))
        assert len(users) == ms.info["users"]
        assert len({m.id for m in items}) == inbox.total_item_count
        assert delta_link.startswith(ms.info["graph_url"])
    finally:
        ms.stop()
