"""DocuSign's Click and Admin SDKs (docusign-click, docusign-admin) against the
gateway, with their two settings changed: the host and the bearer token.

usage: other_sdks.py <gateway url> <gateway token> <account id> <organization id>
Prints one JSON line with what the SDKs returned.
"""
import json
import sys

from docusign_admin import AccountsApi as AdminAccountsApi
from docusign_admin import ApiClient as AdminApiClient
from docusign_admin import UsersApi
from docusign_click import AccountsApi as ClickAccountsApi
from docusign_click import ApiClient as ClickApiClient
from docusign_click import ClickwrapRequest

gateway, token, account, organization = sys.argv[1:5]

click = ClickApiClient(host=gateway + "/clickapi")
click.set_default_header("Authorization", "Bearer " + token)
clicks = ClickAccountsApi(click)
created = clicks.create_clickwrap(
    account, clickwrap_request=ClickwrapRequest(clickwrap_name="Terms of service")
)
listed = clicks.get_clickwraps(account)

admin = AdminApiClient(host=gateway + "/management")
admin.set_default_header("Authorization", "Bearer " + token)
organizations = AdminAccountsApi(admin).get_organizations()
users = UsersApi(admin).get_users(organization)

print(
    json.dumps(
        {
            "clickwrap_id": created.clickwrap_id,
            "clickwrap_name": created.clickwrap_name,
            "clickwraps": len(listed.clickwraps or []),
            "organizations": [o.id for o in organizations.organizations or []],
            "emails": [u.email for u in users.users or []],
        }
    )
)
