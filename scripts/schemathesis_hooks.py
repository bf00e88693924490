"""How schemathesis authenticates against the origin (loaded by scripts/test-openapi.sh through
SCHEMATHESIS_HOOKS). The script registers the users and the introspection client and passes them
in the environment; nothing here is a secret outside that throwaway run."""

import base64
import os

import requests
import schemathesis

BASE = os.environ["TOLLGATE_URL"]
PASSWORD = os.environ["TOLLGATE_PASSWORD"]
LOGOUT_PATHS = r"^/api/users/logout(-all)?$"


def login(email):
    r = requests.post(
        f"{BASE}/api/users/login",
        json={"email": email, "password": PASSWORD, "device_name": "schemathesis"},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["data"]["access_token"]


def with_header(case, name, value):
    case.headers = {**(case.headers or {}), name: value}


# logout kills the token it is called with, logout-all every token of its user: each of their
# cases logs a user of its own in afresh, so they never log the other operations' user out.
@schemathesis.auth(refresh_interval=None).apply_to(path_regex=LOGOUT_PATHS)
class FreshLogin:
    def get(self, case, context):
        return login(os.environ["TOLLGATE_LOGOUT_EMAIL"])

    def set(self, case, data, context):
        with_header(case, "Authorization", f"Bearer {data}")


# A resource server's HTTP Basic credentials from INTROSPECTION_CLIENTS.
@schemathesis.auth(retry_on=[]).apply_to(path="/oauth/introspect")
class IntrospectionClient:
    def get(self, case, context):
        pair = f"{os.environ['TOLLGATE_CLIENT_ID']}:{os.environ['TOLLGATE_CLIENT_SECRET']}"
        return base64.b64encode(pair.encode()).decode()

    def set(self, case, data, context):
        with_header(case, "Authorization", f"Basic {data}")


# Every other operation: one admin's token (so token-stats answers 200, not only 403), kept
# until a 401: the stateful phase may feed the admin's own jti (from the sessions list) to
# logout-device-jti, and then the admin logs in again.
@schemathesis.auth().skip_for(path_regex=LOGOUT_PATHS).skip_for(
    path="/oauth/introspect"
)
class Admin:
    def get(self, case, context):
        return login(os.environ["TOLLGATE_ADMIN_EMAIL"])

    def set(self, case, data, context):
        with_header(case, "Authorization", f"Bearer {data}")
