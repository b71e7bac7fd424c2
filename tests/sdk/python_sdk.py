"""Drives the gateway with DocuSign's official Python SDK (docusign-esign).

Usage: python_sdk.py <gateway>/restapi <gateway token> <account id> [CA file]
With a CA file (an https:// gateway with a private CA), the SDK trusts it
through its Configuration's ssl_ca_cert. The SDK is pointed at the gateway's /restapi with the gateway token as its
bearer, exactly as the README tells users. Prints one JSON line.
"""

import json
import sys

from docusign_esign import AccountsApi, ApiClient, EnvelopeDefinition, EnvelopesApi
from docusign_esign.client.configuration import Configuration


def main() -> None:
    host, token, account_id = sys.argv[1:4]
    if len(sys.argv) > 4:
        # The SDK's Configuration is a process-wide singleton.
        Configuration().ssl_ca_cert = sys.argv[4]
    api = ApiClient(host=host)
    api.set_default_header("Authorization", "Bearer " + token)

    account = AccountsApi(api).get_account_information(account_id)
    assert account.account_id_guid == account_id, account.account_id_guid

    envelopes = EnvelopesApi(api)
    created = envelopes.create_envelope(
        account_id,
        envelope_definition=EnvelopeDefinition(
            email_subject="Sent through docusign-gateway by the Python SDK",
            status="sent",
        ),
    )
    assert created.envelope_id, created

    listed = envelopes.list_status_changes(account_id, from_date="2020-01-01")
    ids = [e.envelope_id for e in (listed.envelopes or [])]
    assert created.envelope_id in ids, ids

    print(json.dumps({
        "account_name": account.account_name,
        "envelope_id": created.envelope_id,
        "listed": len(ids),
    }))


if __name__ == "__main__":
    main()
