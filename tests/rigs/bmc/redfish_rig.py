"""sushy-tools' Redfish emulator (fake driver) as ironledger's tests run it.

The emulator itself is unchanged; this launcher wraps its WSGI app in two
layers the tests need and the emulator lacks:

* an access log (``access.jsonl`` in the rig directory): one JSON line per
  request with method, path, the JSON body sent and the status answered, so a
  test can read back what a client really asked for (the fake driver keeps
  ``BootSourceOverrideEnabled`` as ``Continuous`` whatever it is sent, so a
  "once" override is only visible here). Credentials (``Authorization``,
  ``X-Auth-Token``, a session's ``Password``) are never written.
* a ``SessionService`` (when ``IRONLEDGER_RIG_SESSIONS=1``): ``POST
  /redfish/v1/SessionService/Sessions`` with the htpasswd user's name and
  password answers 201 with ``X-Auth-Token`` and ``Location``; a request with
  a known token is let through as that user; ``DELETE`` of the session ends
  it. Real BMCs offer this and Ironic prefers it (``redfish_auth_type=auto``).
* faults (``faults.json`` in the rig directory, read on every request, so a
  test can change them while a client runs): a list of rules, each
  ``{"method": "PATCH", "path_contains": "Systems", "body_contains":
  "ForceOff", "status": 500, "swallow": false}``; the first rule whose given
  fields all match answers instead of the emulator: ``status`` with a Redfish
  error body, or, with ``"swallow": true``, 204 without passing the request
  on — a BMC that accepts a reset and never applies it. Faulted requests are
  in the access log too, with the status they got.

With ``IRONLEDGER_RIG_MAX_DELAY=N`` the fake driver applies a power change
after 1 to N seconds instead of 1 to 11 (still asynchronously), for tests that
power machines many times.

Usage: python redfish_rig.py CONFIG_FILE (the emulator's own config format).
"""

import json
import os
import secrets
import ssl
import sys
import threading

from sushy_tools import error
from sushy_tools.emulator import auth_basic
from sushy_tools.emulator import main as emu

RIG = os.environ["IRONLEDGER_RIG_DIR"]
LOG_LOCK = threading.Lock()
SESSIONS = {}  # token -> (session id, user name)
SESSIONS_PATH = "/redfish/v1/SessionService/Sessions"


def _json(start_response, status, body, headers=()):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))] + list(headers))
    return [data]


class AccessLog:
    def __init__(self, app):
        self.app = app

    def __call__(self, env, start_response):
        length = int(env.get("CONTENT_LENGTH") or 0)
        raw = env["wsgi.input"].read(length) if length else b""
        env["wsgi.input"] = __import__("io").BytesIO(raw)
        seen = {"auth": ("basic" if env.get("HTTP_AUTHORIZATION")
                         else "token" if env.get("HTTP_X_AUTH_TOKEN") else None)}

        def recording_start(status, headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        result = self.app(env, recording_start)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<not json>"
        if isinstance(body, dict) and "Password" in body:
            body = dict(body, Password="<redacted>")
        entry = {"method": env["REQUEST_METHOD"], "path": env.get("PATH_INFO", ""),
                 "body": body, "status": seen.get("status"), "auth": seen["auth"]}
        with LOG_LOCK, open(os.path.join(RIG, "access.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")
        return result


class Faults:
    """Answers what ``faults.json`` says to fail, instead of the emulator."""

    def __init__(self, app):
        self.app = app

    def __call__(self, env, start_response):
        try:
            with open(os.path.join(RIG, "faults.json")) as f:
                rules = json.load(f)
        except (OSError, ValueError):
            rules = []
        if rules:
            length = int(env.get("CONTENT_LENGTH") or 0)
            raw = env["wsgi.input"].read(length) if length else b""
            env["wsgi.input"] = __import__("io").BytesIO(raw)
            text = raw.decode(errors="replace")
            for rule in rules:
                if (rule.get("method", env["REQUEST_METHOD"]) == env["REQUEST_METHOD"]
                        and rule.get("path_contains", "") in env.get("PATH_INFO", "")
                        and rule.get("body_contains", "") in text):
                    if rule.get("swallow"):
                        start_response("204 No Content", [])
                        return [b""]
                    status = int(rule.get("status", 500))
                    return _json(start_response, f"{status} Injected", {"error": {
                        "code": "Base.1.0.GeneralError",
                        "message": rule.get("message", "injected fault"),
                        "@Message.ExtendedInfo": []}})
        return self.app(env, start_response)


class Sessions:
    """A minimal Redfish SessionService in front of the emulator's basic auth."""

    def __init__(self, app, auth_file):
        self.app = app
        self.auth_file = auth_file

    def __call__(self, env, start_response):
        path = env.get("PATH_INFO", "").rstrip("/")
        method = env["REQUEST_METHOD"]
        if path in ("/redfish/v1", ""):
            return self._root(env, start_response)
        if path == "/redfish/v1/SessionService" and method == "GET":
            return _json(start_response, "200 OK", {
                "@odata.id": "/redfish/v1/SessionService", "Id": "SessionService",
                "ServiceEnabled": True,
                "Sessions": {"@odata.id": SESSIONS_PATH}})
        if path == SESSIONS_PATH and method == "POST":
            length = int(env.get("CONTENT_LENGTH") or 0)
            try:
                body = json.loads(env["wsgi.input"].read(length) or b"{}")
                user, password = body["UserName"], body["Password"]
                auth_basic.authenticate(self.auth_file, user, password.encode())
            except (ValueError, KeyError, TypeError, error.FishyError):
                return _json(start_response, "401 Unauthorized", {"error": {
                    "code": "Base.1.0.GeneralError", "message": "Invalid credentials"}})
            token = secrets.token_hex(16)
            sid = secrets.token_hex(4)
            SESSIONS[token] = (sid, user)
            return _json(start_response, "201 Created",
                         {"@odata.id": f"{SESSIONS_PATH}/{sid}", "Id": sid, "UserName": user},
                         [("X-Auth-Token", token), ("Location", f"{SESSIONS_PATH}/{sid}")])
        token = env.get("HTTP_X_AUTH_TOKEN")
        if token is not None:
            if token not in SESSIONS:
                return _json(start_response, "401 Unauthorized", {"error": {
                    "code": "Base.1.0.GeneralError", "message": "Invalid session token"}})
            sid, user = SESSIONS[token]
            if path == f"{SESSIONS_PATH}/{sid}" and method == "DELETE":
                del SESSIONS[token]
                start_response("204 No Content", [])
                return [b""]
            # Let the emulator's basic-auth layer see the session's user.
            env["HTTP_X_USER"] = user
            env["ironledger.session_user"] = user
        return self.app(env, start_response)

    def _root(self, env, start_response):
        captured = {}

        def keep(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.app(env, keep))
        try:
            doc = json.loads(body)
            doc["SessionService"] = {"@odata.id": "/redfish/v1/SessionService"}
            doc.setdefault("Links", {})["Sessions"] = {"@odata.id": SESSIONS_PATH}
            return _json(start_response, captured["status"], doc)
        except ValueError:
            start_response(captured["status"], captured["headers"])
            return [body]


class SessionAwareBasicAuth(emu.RedfishAuthMiddleware):
    """The emulator's basic auth, skipped for a request a session let through."""

    def __call__(self, env, start_response):
        if env.get("ironledger.session_user"):
            return self.app(env, start_response)
        return super().__call__(env, start_response)


class _BoundedDelay:
    """The fake driver's ``random``, with its power delay capped."""

    def __init__(self, cap):
        import random
        self._random, self._cap = random, cap

    def randint(self, low, high):
        return self._random.randint(low, max(low, min(high, self._cap)))


def run(config_file):
    cap = os.environ.get("IRONLEDGER_RIG_MAX_DELAY")
    if cap:
        from sushy_tools.emulator.resources.systems import fakedriver
        fakedriver.random = _BoundedDelay(int(cap))
    app = emu.app
    # Configure without the emulator's own auth layer; ours wraps it below.
    app.config.from_pyfile(os.path.abspath(config_file))
    app.config["SUSHY_EMULATOR_FAKE_DRIVER"] = True
    auth_file = app.config.get("SUSHY_EMULATOR_AUTH_FILE")
    inner = app.wsgi_app
    if isinstance(inner, emu.RedfishAuthMiddleware):
        inner = inner.app
    if auth_file:
        inner = SessionAwareBasicAuth(inner, auth_file)
        if os.environ.get("IRONLEDGER_RIG_SESSIONS") == "1":
            inner = Sessions(inner, auth_file)
    app.wsgi_app = AccessLog(Faults(inner))
    ssl_context = None
    cert, key = app.config.get("SUSHY_EMULATOR_SSL_CERT"), app.config.get("SUSHY_EMULATOR_SSL_KEY")
    if cert and key:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(cert, key)
    app.run(host=app.config["SUSHY_EMULATOR_LISTEN_IP"],
            port=app.config["SUSHY_EMULATOR_LISTEN_PORT"], ssl_context=ssl_context,
            threaded=True)


if __name__ == "__main__":
    run(sys.argv[1])
