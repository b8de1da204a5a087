#!/usr/bin/env python3
"""A stand-in for GitHub's REST API, for the integration tests of GitHub deployments.

    python3 github_standin.py --port PORT --description api.github.com.json --token TOKEN

No GitHub server runs in the tests, and the real one cannot be called from them. This server answers as GitHub
does (201 with a deployment or a deployment status shaped like the published examples, GitHub's error bodies
otherwise) and records every request, so that a test can read back what ecr-promote sent. Its value is that it
is not written from ecr-promote's own idea of the API: every request is checked against GitHub's published
REST description (npm @octokit/openapi, installed by scripts/setup.sh world and loaded here at start), so a
path, field, type or enum value GitHub does not define is refused (422) and recorded as a problem that fails
the test. It is stricter than GitHub in one way, on purpose: a body field the description does not list is a
problem too (GitHub ignores it silently, which would hide a misspelt field). Headers GitHub asks of API
clients are checked as well: its media type, the API version, a User-Agent, and the Bearer token.

Control (never GitHub paths, under /_standin/):
    GET  /_standin/requests       every request so far: method, path, body, problems
    POST /_standin/answer         {"status": 503} answers every GitHub request with that status from now on;
                                  {"status": null} answers normally again
"""

import argparse
import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    """The POST operations of the description, matched by path template."""

    def __init__(self, document):
        self.document = document
        self.routes = []
        for template, item in document["paths"].items():
            if "post" not in item:
                continue
            pattern = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            self.routes.append((re.compile(pattern), template, item["post"]))

    def find(self, path):
        for pattern, template, operation in self.routes:
            match = pattern.match(path)
            if match:
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


class State:
    def __init__(self, document, token):
        self.operations = Operations(document)
        self.examples = document["components"]["examples"]
        self.token = token
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
            if self.path == "/_standin/requests":
                with state.lock:
                    return self.reply(200, state.requests)
            self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

        def do_POST(self):
            raw = self.read_body()
            if self.path == "/_standin/answer":
                with state.lock:
                    state.answer = json.loads(raw)["status"]
                return self.reply(200, {})
            with state.lock:
                self.github(raw)

        def github(self, raw):
            problems = []
            try:
                body = json.loads(raw) if raw else None
            except ValueError as error:
                body, problems = raw.decode(errors="replace"), [f"the body is not JSON: {error}"]
            record = {"method": "POST", "path": self.path, "body": body, "problems": problems,
                      "authorized": self.headers.get("Authorization") == f"Bearer {state.token}"}
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
            found = state.operations.find(self.path.split("?")[0])
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
    args = parser.parse_args()
    with open(args.description) as f:
        document = json.load(f)
    ThreadingHTTPServer(("127.0.0.1", args.port), handler(State(document, args.token))).serve_forever()


if __name__ == "__main__":
    main()
