#!/usr/bin/env python3
"""A stand-in for GitHub's REST API, for the integration tests of GitHub deployments.

    python3 github_standin.py --port PORT --description api.github.com.json --token TOKEN \
        [--app-id ID --app-key KEY.pem]

No GitHub server runs in the tests, and the real one cannot be called from them. This server answers as GitHub
does (201 with a deployment or a deployment status shaped like the published examples, GitHub's error bodies
otherwise) and records every request, so that a test can read back what ecr-promote sent. Its value is that it
is not written from ecr-promote's own idea of the API: every request is checked against GitHub's published
REST description (npm @octokit/openapi, installed by scripts/setup.sh world and loaded here at start), so a
path, field, type or enum value GitHub does not define is refused (422) and recorded as a problem that fails
the test. It is stricter than GitHub in one way, on purpose: a body field the description does not list is a
problem too (GitHub ignores it silently, which would hide a misspelt field). Headers GitHub asks of API
clients are checked as well: its media type, the API version, a User-Agent, and the Bearer token.

With --app-id and --app-key it is also the GitHub App's side: the App's own calls (finding its installation,
taking an installation token) must carry a JWT signed (RS256) with that key, issued by that App, living at most
ten minutes, as GitHub requires; the installation token it hands out is TOKEN.

Control (never GitHub paths, under /_standin/):
    GET  /_standin/requests       every request so far: method, path, body, problems
    POST /_standin/answer         {"status": 503} answers every GitHub request with that status from now on;
                                  {"status": null} answers normally again
"""

import argparse
import base64
import copy
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from openapi_schema_validator import OAS30Validator

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"


def resolve(document, node, depth=0):
    """`node` with every local $ref replaced by what it names (request bodies and parameters are not recursive)."""
    if depth > 50:
        raise ValueError("$ref nesting too deep")
    if isinstance(node, dict):
        if "$ref" in node:
            target = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(document, target, depth + 1)
        return {key: resolve(document, value, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(document, item, depth + 1) for item in node]
    return node


class Operations:
    """The GET and POST operations of the description, matched by method and path template."""

    def __init__(self, document):
        self.document = document
        self.routes = []
        for template, item in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            for method in ("get", "post"):
                if method in item:
                    self.routes.append((method.upper(), pattern, template, item[method]))

    def find(self, method, path):
        for known, pattern, template, operation in self.routes:
            match = pattern.match(path)
            if known == method and match:
                return template, operation, match.groupdict()
        return None

    def problems(self, operation, params, body):
        problems = []
        for parameter in resolve(self.document, operation.get("parameters", [])):
            if parameter["in"] != "path":
                continue
            value = params.get(parameter["name"])
            if parameter["schema"].get("type") == "integer":
                if not (value or "").isdigit():
                    problems.append(f"path parameter {parameter['name']} is {value!r}, not an integer")
        content = resolve(self.document, operation.get("requestBody", {})).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return problems
        strict = copy.deepcopy(schema)
        if strict.get("type") == "object":
            unknown = sorted(set(body) - set(strict.get("properties", {}))) if isinstance(body, dict) else []
            problems += [f"body field {name!r} is not in GitHub's description" for name in unknown]
        for error in OAS30Validator(strict).iter_errors(body):
            where = "/".join(str(p) for p in error.absolute_path) or "(body)"
            problems.append(f"{where}: {error.message}")
        return problems


def unpadded(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class App:
    """The GitHub App: its id and public key, to check the JWTs its calls carry."""

    INSTALLATION = 4242

    def __init__(self, app_id, key_path):
        self.id = app_id
        with open(key_path, "rb") as f:
            self.public = serialization.load_pem_private_key(f.read(), password=None).public_key()

    def problems(self, authorization):
        jwt = (authorization or "").removeprefix("Bearer ")
        try:
            header, claims, signature = jwt.split(".")
            self.public.verify(unpadded(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
            header, claims = json.loads(unpadded(header)), json.loads(unpadded(claims))
        except Exception as error:
            return [f"the App's JWT does not verify: {error!r}"]
        problems = []
        if header.get("alg") != "RS256":
            problems.append(f"JWT alg is {header.get('alg')!r}")
        if str(claims.get("iss")) != str(self.id):
            problems.append(f"JWT iss is {claims.get('iss')!r}, not the App's id {self.id}")
        now = time.time()
        if not (claims.get("iat", now + 1) <= now < claims.get("exp", 0)):
            problems.append(f"JWT is not valid now: {claims}")
        if claims.get("exp", 0) - claims.get("iat", 0) > 600:
            problems.append("JWT lives longer than ten minutes")
        return problems


class State:
    def __init__(self, document, token, app):
        self.operations = Operations(document)
        self.examples = document["components"]["examples"]
        self.token = token
        self.app = app
        self.lock = threading.Lock()
        self.requests = []
        self.answer = None
        self.deployments = {}
        self.next_id = 1000


def handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self):
            with state.lock:
                if self.path == "/_standin/requests":
                    return self.reply(200, state.requests)
                self.github("GET", b"")

        def do_POST(self):
            raw = self.read_body()
            if self.path == "/_standin/answer":
                with state.lock:
                    state.answer = json.loads(raw)["status"]
                return self.reply(200, {})
            with state.lock:
                self.github("POST", raw)

        def github(self, method, raw):
            problems = []
            try:
                body = json.loads(raw) if raw else None
            except ValueError as error:
                body, problems = raw.decode(errors="replace"), [f"the body is not JSON: {error}"]
            path = self.path.split("?")[0]
            # The App's own calls carry its JWT; every other call the token.
            as_app = path.startswith("/app/") or path.endswith("/installation")
            authorization = self.headers.get("Authorization")
            if as_app:
                authorized = state.app is not None and not state.app.problems(authorization)
                problems += state.app.problems(authorization) if state.app else ["no App configured"]
            else:
                authorized = authorization == f"Bearer {state.token}"
            record = {"method": method, "path": self.path, "body": body, "problems": problems,
                      "authorized": authorized}
            state.requests.append(record)
            if self.headers.get("Accept") != MEDIA_TYPE:
                problems.append(f"Accept is {self.headers.get('Accept')!r}, not {MEDIA_TYPE}")
            if self.headers.get("X-GitHub-Api-Version") != API_VERSION:
                problems.append(f"X-GitHub-Api-Version is {self.headers.get('X-GitHub-Api-Version')!r}")
            if not self.headers.get("User-Agent"):
                # GitHub refuses requests without one (403).
                problems.append("no User-Agent")
            if state.answer is not None:
                return self.reply(state.answer, {"message": "Server Error" if state.answer >= 500 else "Refused"})
            if not record["authorized"]:
                return self.reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            found = state.operations.find(method, path)
            if found is None:
                problems.append("no such path in GitHub's description")
                return self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
            template, operation, params = found
            record["operation"] = operation.get("operationId")
            if not problems:
                problems += state.operations.problems(operation, params, body)
            if problems:
                return self.reply(422, {"message": "Validation Failed", "errors": problems,
                                        "documentation_url": "https://docs.github.com/rest"})
            if template == "/repos/{owner}/{repo}/installation":
                answer = copy.deepcopy(state.examples["installation"]["value"])
                answer["id"] = App.INSTALLATION
                return self.reply(200, answer)
            if template == "/app/installations/{installation_id}/access_tokens":
                if int(params["installation_id"]) != App.INSTALLATION:
                    return self.reply(404, {"message": "Not Found"})
                answer = copy.deepcopy(state.examples["installation-token"]["value"])
                answer.update({"token": state.token, "permissions": (body or {}).get("permissions", {})})
                return self.reply(201, answer)
            if template == "/repos/{owner}/{repo}/deployments":
                return self.reply(201, self.deployment(params, body))
            if template == "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses":
                deployment = int(params["deployment_id"])
                if deployment not in state.deployments:
                    return self.reply(404, {"message": "Not Found"})
                return self.reply(201, self.status(params, deployment, body))
            problems.append(f"the stand-in does not answer {template}")
            self.reply(501, {"message": "not in the stand-in"})

        def deployment(self, params, body):
            state.next_id += 1
            answer = copy.deepcopy(state.examples["deployment"]["value"])
            repository = f"{params['owner']}/{params['repo']}"
            answer.update({
                "id": state.next_id,
                "url": f"https://api.github.com/repos/{repository}/deployments/{state.next_id}",
                "sha": body["ref"], "ref": body["ref"], "task": body.get("task", "deploy"),
                "payload": body.get("payload", {}), "environment": body.get("environment", "production"),
                "original_environment": body.get("environment", "production"),
                "description": body.get("description"),
                "production_environment": body.get("production_environment", False),
            })
            state.deployments[state.next_id] = answer
            return answer

        def status(self, params, deployment, body):
            state.next_id += 1
            answer = copy.deepcopy(state.examples["deployment-status"]["value"])
            answer.update({
                "id": state.next_id, "state": body["state"],
                "description": body.get("description", ""),
                "environment": state.deployments[deployment]["environment"],
                "log_url": body.get("log_url", ""), "target_url": body.get("log_url", ""),
                "environment_url": body.get("environment_url", ""),
                "deployment_url": state.deployments[deployment]["url"],
            })
            return answer

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--description", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--app-id")
    parser.add_argument("--app-key")
    args = parser.parse_args()
    with open(args.description) as f:
        document = json.load(f)
    app = App(args.app_id, args.app_key) if args.app_id else None
    ThreadingHTTPServer(("127.0.0.1", args.port), handler(State(document, args.token, app))).serve_forever()


if __name__ == "__main__":
    main()
