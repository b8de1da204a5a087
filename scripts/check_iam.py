#!/usr/bin/env python3
"""Every role grants exactly the AWS actions its code calls: none missing, none unused.

What the code calls is read from the Rust sources, not listed here:
  - AWS SDK operations: `<client>.<operation>()…send()` where the file declares `<client>` as an
    `aws_sdk_<service>::Client`, e.g. `self.client.receive_message()` with `client: aws_sdk_sqs::Client` →
    sqs:ReceiveMessage;
  - sts:AssumeRole when the code builds an `AssumeRoleProvider` (the staging source role);
  - ECR through the registry API: each `request(Method::…, url)` in src/registry with the URL it is sent to
    (`manifests/`, `blobs/`, `blobs/uploads/`, an upload session, `tags/list`, `referrers/`), mapped to the
    IAM action ECR checks for it (REGISTRY_ACTIONS), and attributed to the staging (source) or the
    production (target) registry by the variable it is called on (`source.`, `target.`, a `self.` call
    inheriting its caller's side, or a `Side::Source/Target` in the same function).

Each role is then checked under each value of the conditions that change it, against the template as
CloudFormation would create it; statements that serve CodeBuild rather than the code (its image, its log,
the pipeline artifacts) are named in PLATFORM with the reason. The build role's ```json block in
docs/permissions.md (under "## The build role") must equal the build role's.

`status` is an operator's command, run from a laptop or a console shell to see what production runs; the
build never runs it. Its ECS reads (OPERATOR_SOURCES) are therefore not granted to the build role, which
would then hold actions its work does not use, but to the read-only operator policy in docs/permissions.md
(the ```json block under "## A read-only operator policy"): its statement ReadService must equal the ECS calls in
OPERATOR_SOURCES, and every action of that policy must be a read (OPERATOR_READS: the ledger and registry
reads `status`, `audit`, `history` and `show` make through the modules they share with the build).

The settle project's role (SettleRole, with RecordDeployOutcomes) is checked the same way: the calls in
SETTLE_SOURCES, what `ecr-promote settle` reaches, against its statements less SETTLE_PLATFORM.
The soak gate's reads of the staging service (STAGING_READ_SOURCES) are made as the staging read role, so they
are checked against StagingReadRole in deploy/staging-pipeline.yml, and the build role only assumes it.
A call that IAM checks with a second action (CreateSchedule passes the wake role: iam:PassRole) needs both
(ALSO_NEEDS).

The webhook function's role (WebhookRole in deploy/production.yml) is checked the same way: the calls in
WEBHOOK_SOURCES and in the shared modules the function uses (WEBHOOK_SHARED), against its statements less
WEBHOOK_PLATFORM. The build role leaves WEBHOOK_SOURCES out; a call in a shared module counts for both roles.
"""

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfn_template import REPO, CheckFailed, load, resource, run  # noqa: E402

# The webhook Lambda's code, which runs under its own role (WebhookRole in deploy/production.yml), never the
# build role.
WEBHOOK_SOURCES = ["src/webhook", "src/bin"]
# `status`, which only an operator runs: its SDK calls go to the documented operator policy, not the build role.
# src/ecs.rs holds the ECS reads it shares with `settle` and the soak gate (each checked against its own role).
OPERATOR_SOURCES = ["src/status", "src/commands/status.rs", "src/ecs.rs"]
# SDK calls made with the source (staging) configuration (Aws::for_source): granted where staging lets
# production pull, with the source registry's actions. The vulnerability gate reads staging's scan findings.
SOURCE_SDK_SOURCES = ["src/gates/vulnerabilities.rs"]
# SDK calls the soak gate makes as the staging read role (PROMOTE_STAGING_READ_ROLE_ARN): granted to that role,
# StagingReadRole in deploy/staging-pipeline.yml, not to the build role, which only assumes it.
STAGING_READ_SOURCES = ["src/gates/staging.rs", "src/ecs.rs"]
BUILD_EXCLUDES = WEBHOOK_SOURCES + OPERATOR_SOURCES + SOURCE_SDK_SOURCES + STAGING_READ_SOURCES
# Calls that need a second action IAM checks with them: a schedule's target role is passed to the scheduler.
ALSO_NEEDS = {"scheduler:CreateSchedule": {"iam:PassRole"}}
# Calls IAM lets every caller make, whatever its policies.
NEEDS_NO_GRANT = {"sts:GetCallerIdentity": "AWS lets every caller ask who it is (who overrides a gate)"}
# Where the build role's and the operator's policies are shown to people, each as a ```json block.
PERMISSIONS = "docs/permissions.md"
# What `ecr-promote settle` reaches: its command and module, the ledger, the outcomes queue, the service's
# description (shared with `status`) and the events bus.
SETTLE_SOURCES = ["src/commands/outcome.rs", "src/outcome", "src/ledger", "src/intake/queue.rs",
                  "src/status/ecs.rs", "src/ecs.rs", "src/events.rs", "src/github", "src/intake/secrets.rs"]
# What the function calls through modules it shares with `run`: reading the webhook secret.
WEBHOOK_SHARED = ["src/intake/secrets.rs"]
# What the operator policy may grant besides ReadService: reading the ledger (Scan for the list, GetItem for
# `show`) and the registries (the token, manifests, tag lists). No write, so the policy is safe to hand out.
OPERATOR_READS = {"dynamodb:Scan", "dynamodb:GetItem", "ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                  "ecr:ListImages"}

# The IAM action(s) ECR checks for each Distribution API request, as its documentation names them for
# pulling and pushing with a Docker/OCI client. An upload session URL is the Location ECR hands out.
REGISTRY_ACTIONS = {
    ("GET", "manifest"): {"ecr:BatchGetImage"},
    ("HEAD", "manifest"): {"ecr:BatchGetImage"},
    ("PUT", "manifest"): {"ecr:PutImage"},
    ("GET", "blob"): {"ecr:GetDownloadUrlForLayer"},
    ("HEAD", "blob"): {"ecr:BatchCheckLayerAvailability"},
    ("POST", "upload"): {"ecr:InitiateLayerUpload"},
    # One monolithic PUT carries the bytes (a layer part) and completes the upload: ECR's push permissions
    # list both, and a PUT with a body is not documented to need only one.
    ("PUT", "upload session"): {"ecr:UploadLayerPart", "ecr:CompleteLayerUpload"},
    ("PATCH", "upload session"): {"ecr:UploadLayerPart"},
    # Abandoning an upload session: ECR documents no action for it; it is best effort, a refusal changes nothing.
    ("DELETE", "upload session"): set(),
    ("GET", "tags"): {"ecr:ListImages"},
    # ECR's referrers API is authorised as an image read (ListImageReferrers needs ecr:BatchGetImage).
    ("GET", "referrers"): {"ecr:BatchGetImage"},
}
PATH_KINDS = [("blobs/uploads/", "upload"), ("blobs/", "blob"), ("manifests/", "manifest"),
              ("tags/list", "tags"), ("referrers/", "referrers")]
# The IAM prefix of an SDK crate's service where the two names differ.
IAM_PREFIX = {"eventbridge": "events"}
# SQS authorises its batch operations with the single-message action; IAM has no action named after them.
BATCH_AUTHORISED_BY = {
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}

# Build role statements that serve CodeBuild, not ecr-promote's own calls, with why they are there.
PLATFORM = {
    "PromoteBinary": "the buildspec downloads the ecr-promote binary the deploy uploaded",
    "Logs": "CodeBuild writes the build log",
    "PipelineArtifacts": "CodeBuild reads the source and writes the deploy files artifact",
    "PipelineArtifactBucket": "CodeBuild checks the artifact bucket",
    "CloneThroughConnection": "CodeBuild clones the source (CODEBUILD_CLONE_REF) and git fetches through the connection",
    "DecryptThroughServices": "SQS, Secrets Manager and DynamoDB decrypt with KmsKeyArn for the calls above",
    "DecryptGithubToken": "Secrets Manager decrypts the GitHub token's secret with GithubTokenKmsKeyArn",
}
# Where the GitHub deployments read their token: the Secrets Manager reader they share with the webhook secret.
GITHUB_TOKEN_SOURCES = ["src/github", "src/intake/secrets.rs"]

# Settle role statements that serve CodeBuild, not settle's own calls.
SETTLE_PLATFORM = {
    "PromoteBinary": PLATFORM["PromoteBinary"],
    "Logs": "CodeBuild writes the settle build's log",
    "DecryptThroughServices": "DynamoDB decrypts with KmsKeyArn for the calls above",
    # check_github_token_grant holds these to GithubTokenSecretArn and GithubTokenKmsKeyArn.
    "GithubToken": "the GitHub token's secret, checked by check_github_token_grant",
    "DecryptGithubToken": "the GitHub token's key, checked by check_github_token_grant",
}

# Webhook role statements that serve Lambda, not the function's own calls.
WEBHOOK_PLATFORM = {
    "Logs": "Lambda writes the function's log",
    "UseKeyThroughServices": "SQS and Secrets Manager use KmsKeyArn for the calls above",
}


# --- What the code calls ---

def rust_files(roots, excludes=()):
    for root in roots:
        top = REPO / root
        for path in [top] if top.is_file() else sorted(top.rglob("*.rs")):
            relative = path.relative_to(REPO).as_posix()
            if not any(relative == e or relative.startswith(e.rstrip("/") + "/") for e in excludes):
                # Unit tests call the code under test with fixtures, not AWS.
                yield relative, path.read_text().split("#[cfg(test)]")[0]


def camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def declared_clients(text) -> dict:
    """Each SDK client a file declares (a field, parameter or binding typed aws_sdk_<service>::Client)."""
    clients = dict(re.findall(r"\b(\w+)\s*:\s*aws_sdk_(\w+)::Client\b", text))
    clients.update(re.findall(r"\blet\s+(?:mut\s+)?(\w+)\s*=\s*aws_sdk_(\w+)::Client::", text))
    return clients


def sdk_calls(files) -> set:
    calls = set()
    for relative, text in files:
        # A client names its service; an operation is a method called on one whose builder chain is sent.
        # A folder's files also see the fields its mod.rs declares (`self.client` in an `impl` of its type).
        clients = declared_clients(text)
        parent = REPO / Path(relative).parent / "mod.rs"
        if parent.is_file():
            clients = {**declared_clients(parent.read_text()), **clients}
        receiver = r"(?:\b(\w+)|\baws_sdk_(\w+)::Client::\w+\([^)]*\))\s*\.(\w+)\(\)"
        for m in re.finditer(receiver, text):
            name, constructed, operation = m.groups()
            service = constructed or clients.get(name)
            sent = re.search(r"\.(?:send|into_paginator)\(\)", text[m.end():text.find(";", m.end())])
            if service and sent:
                action = f"{IAM_PREFIX.get(service, service)}:{camel(operation)}"
                calls.add(BATCH_AUTHORISED_BY.get(action, action))
                calls |= ALSO_NEEDS.get(action, set())
        if "AssumeRoleProvider" in text:
            calls.add("sts:AssumeRole")
    return calls


def functions(text):
    """(name, body) of each `fn` in a file: from its `fn` to the next one, which is close enough here."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"\bfn\s+(\w+)", text)]
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        yield name, text[start:end]


def registry_calls(files) -> dict:
    """{"source": actions, "target": actions}: what the registry requests need on each side."""
    files = list(files)
    bodies = [(relative, name, body) for relative, text in files for name, body in functions(text)]
    sides = {}  # function name → the sides it is called for: {"source", "target"}

    def side_of_receiver(receiver, relative, body, name, seen):
        if receiver in ("source", "target"):
            return {receiver}
        if receiver == "self":
            return sides_of(name, seen)
        declared = set(m.lower() for m in re.findall(r"Side::(Source|Target)", body))
        if len(declared) == 1:
            return declared
        position = parameter_position(body, receiver)
        if position is not None:
            found = set()
            for _, _, caller in bodies:
                for call in re.finditer(rf"\b{name}\(([^()]*)", caller):
                    args = [a.strip() for a in call.group(1).split(",")]
                    if position < len(args) and args[position] in ("source", "target"):
                        found.add(args[position])
            if found:
                return found
        raise CheckFailed(f"{relative}: fn {name} calls the registry through `{receiver}`: cannot tell whether "
                          "that is the source (staging) or the target (production) registry; call it "
                          "`source`/`target`, or teach scripts/check_iam.py")

    def sides_of(function, seen=frozenset()):
        if function in seen:
            return set()
        if function not in sides:
            found = set()
            for relative, name, body in bodies:
                for m in re.finditer(rf"(\w+)\s*\.\s*{function}\(", body):
                    found |= side_of_receiver(m.group(1), relative, body, name, seen | {function})
            sides[function] = found
        return sides[function]

    needed = {"source": set(), "target": set()}
    for relative, name, body in bodies:
        if not relative.startswith("src/registry/"):
            continue
        for m in re.finditer(r"(\w+)\s*\.request\(\s*(?:reqwest::)?Method::(\w+),\s*(\w+)", body):
            receiver, method, url = m.groups()
            actions = request_actions(relative, name, body, method, url)
            for side in side_of_receiver(receiver, relative, body, name, frozenset()):
                needed[side] |= actions
    return needed


def parameter_position(body, variable):
    signature = re.match(r"fn\s+\w+\s*(?:<[^>]*>)?\(([^)]*)\)", body, re.S)
    if not signature:
        return None
    names = [p.split(":")[0].strip() for p in signature.group(1).split(",") if ":" in p]
    return names.index(variable) if variable in names else None


def request_actions(relative, name, body, method, url):
    path = re.search(r"self\.url\(\s*[^,]+,\s*&?(?:format!\()?\"([^\"]*)\"", body)
    if path:
        kind = next((k for prefix, k in PATH_KINDS if path.group(1).startswith(prefix)), None)
    elif url == "location" or re.search(rf"let\s+(?:mut\s+)?{url}\s*=\s*location\b", body):
        kind = "upload session"
    else:
        kind = None
    if (method, kind) not in REGISTRY_ACTIONS:
        raise CheckFailed(f"{relative}: fn {name} sends {method} to {path.group(1) if path else url}, which "
                          "scripts/check_iam.py cannot map to an ECR action: add it to REGISTRY_ACTIONS")
    return REGISTRY_ACTIONS[(method, kind)]


# --- What the templates grant ---

def statements(role: dict) -> dict:
    """Sid → set of actions of the role's Allow statements (each needs a Sid: the check and the docs name it)."""
    found = {}
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            found[statement["Sid"]] = set([actions] if isinstance(actions, str) else actions)
    return found


def compare(what: str, granted: set, needed: set, fix: str, needed_by: str = "the code"):
    missing, unused = needed - granted, granted - needed
    problems = []
    if missing:
        problems.append(f"{needed_by} needs {sorted(missing)}, which it does not grant")
    if unused:
        problems.append(f"it grants {sorted(unused)}, which {needed_by} does not need")
    if problems:
        raise CheckFailed(f"{what}: {'; '.join(problems)}: {fix}")


def union(sets):
    return set().union(*sets)


def check_build_role(calls: set, registry: dict) -> dict:
    """The build role with and without a staging source role and a staging read role (the soak gate on, which
    is when the code schedules a wake); returns its statements as the docs show them (neither role)."""
    template = load("deploy/production.yml")
    shown = None
    for with_role, with_read_role in ((False, False), (True, False), (False, True)):
        role = resource(template, "deploy/production.yml", "BuildRole",
                        {"HasSourceRole": with_role, "HasStagingReadRole": with_read_role, "SoakGate": True,
                         "HasKmsKey": True, "StagingInThisRegion": True, "HasEventBus": True,
                         "HasGithubToken": True, "HasGithubTokenKey": True})
        code_statements = {sid: a for sid, a in statements(role).items() if sid not in PLATFORM}
        what = (f"deploy/production.yml BuildRole ({'with' if with_role else 'without'} SourceRoleArn, "
                f"{'with' if with_read_role else 'without'} StagingReadRoleArn)")
        fix = f"change the role's statements (and {PERMISSIONS}, \"The build role\") or the code"
        # With a source role the staging pulls happen under that role: the build role only assumes it. A role
        # is assumed only when one is given.
        expected = calls if with_role or with_read_role else calls - {"sts:AssumeRole"}
        expected = expected | (registry["target"] if with_role else union(registry.values()))
        compare(what, union(code_statements.values()), expected, fix)
        compare(f"{what}, statement PushProduction", code_statements.get("PushProduction", set()),
                registry["target"], fix)
        if not with_role:
            compare(f"{what}, statement PullStaging", code_statements.get("PullStaging", set()),
                    registry["source"], fix)
        if not with_role and not with_read_role:
            shown = code_statements
    return shown


def check_github_token_grant():
    """The build role and the settle role (both tell GitHub) may read the GitHub token's secret exactly when
    GithubTokenSecretArn is given, with the actions the token's reader calls, on that secret alone; and decrypt
    it with GithubTokenKmsKeyArn only when that is given too."""
    needed = sdk_calls(rust_files(GITHUB_TOKEN_SOURCES))
    if "secretsmanager:GetSecretValue" not in needed:
        raise CheckFailed(f"{GITHUB_TOKEN_SOURCES} no longer read a secret: drop the GithubToken statement")
    template = load("deploy/production.yml")
    for name, (token, key) in ((n, c) for n in ("BuildRole", "SettleRole")
                                for c in ((False, False), (True, False), (True, True))):
        role = resource(template, "deploy/production.yml", name,
                        {"HasSourceRole": False, "HasStagingReadRole": False, "SoakGate": False,
                         "HasKmsKey": False, "StagingInThisRegion": True, "HasEventBus": False,
                         "HasGithubToken": token, "HasGithubTokenKey": key, "RecordsOutcomes": True})
        what = (f"deploy/production.yml {name} ({'with' if token else 'without'} GithubTokenSecretArn, "
                f"{'with' if key else 'without'} GithubTokenKmsKeyArn)")
        found = {s["Sid"]: s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]}
        grant, decrypt = found.get("GithubToken"), found.get("DecryptGithubToken")
        if not token:
            if grant or decrypt or "GithubTokenSecretArn" in json.dumps(role):
                raise CheckFailed(f"{what}: grants on the token's secret while GitHub deployments are off")
            continue
        if not grant or grant.get("Resource") != {"Ref": "GithubTokenSecretArn"}:
            raise CheckFailed(f"{what}: no statement GithubToken on {{Ref: GithubTokenSecretArn}}")
        actions = grant["Action"]
        compare(f"{what}, statement GithubToken", set([actions] if isinstance(actions, str) else actions),
                {"secretsmanager:GetSecretValue"}, "change the statement or the token's reader",
                needed_by=f"the code in {', '.join(GITHUB_TOKEN_SOURCES)}")
        if key != bool(decrypt):
            raise CheckFailed(f"{what}: DecryptGithubToken must be there exactly when the key is given")
        if decrypt and (decrypt["Resource"] != {"Ref": "GithubTokenKmsKeyArn"} or "Condition" not in decrypt):
            raise CheckFailed(f"{what}: DecryptGithubToken must be on {{Ref: GithubTokenKmsKeyArn}}, through "
                              "Secrets Manager only")
def check_staging_read_role() -> set:
    """The soak gate's role in staging grants exactly what the gate reads there."""
    needed = sdk_calls(rust_files(STAGING_READ_SOURCES))
    role = resource(load("deploy/staging-pipeline.yml"), "deploy/staging-pipeline.yml", "StagingReadRole",
                    {"HasKmsKey": False})
    compare("deploy/staging-pipeline.yml StagingReadRole", union(statements(role).values()), needed,
            "change its statements or the code", needed_by=f"the code in {', '.join(STAGING_READ_SOURCES)}")
    return needed


def check_webhook_role() -> set:
    """The webhook function's role, with and without a customer managed key."""
    needed = sdk_calls(rust_files(WEBHOOK_SOURCES + WEBHOOK_SHARED))
    for with_key in (False, True):
        role = resource(load("deploy/production.yml"), "deploy/production.yml", "WebhookRole",
                        {"HasKmsKey": with_key})
        granted = {sid: a for sid, a in statements(role).items() if sid not in WEBHOOK_PLATFORM}
        compare(f"deploy/production.yml WebhookRole ({'with' if with_key else 'without'} KmsKeyArn)",
                union(granted.values()), needed, "change the role's statements or the code",
                needed_by=f"the code in {', '.join(WEBHOOK_SOURCES + WEBHOOK_SHARED)}")
    return needed


def check_settle_role() -> set:
    """The settle project's role, with and without a customer managed key and an events bus."""
    needed = sdk_calls(rust_files(SETTLE_SOURCES))
    for with_options in (False, True):
        role = resource(load("deploy/production.yml"), "deploy/production.yml", "SettleRole",
                        {"HasKmsKey": with_options, "HasEventBus": with_options, "RecordsOutcomes": True,
                         "HasGithubToken": with_options, "HasGithubTokenKey": with_options})
        granted = {sid: a for sid, a in statements(role).items() if sid not in SETTLE_PLATFORM}
        # The token's secret is read through the GithubToken statement, which check_github_token_grant checks.
        expected = needed - {"secretsmanager:GetSecretValue"}
        expected = expected if with_options else expected - {"events:PutEvents"}
        compare(f"deploy/production.yml SettleRole ({'with' if with_options else 'without'} KmsKeyArn and "
                f"EventBusName)", union(granted.values()), expected, "change the role's statements or the code",
                needed_by=f"the code in {', '.join(SETTLE_SOURCES)}")
    return needed


def check_staging_side(registry: dict):
    """The ways staging lets production pull: the source role, and the repository policy (as a file, and on
    the repository deploy/staging-pipeline.yml creates)."""
    role = resource(load("deploy/staging.yml"), "deploy/staging.yml", "SourceRole", {})
    compare("deploy/staging.yml SourceRole", union(statements(role).values()),
            {"ecr:GetAuthorizationToken"} | registry["source"], "change its PullStaging statement or the code")
    policy = json.loads((REPO / "deploy/staging-repository-policy.json").read_text())
    compare("deploy/staging-repository-policy.json", union(set(s["Action"]) for s in policy["Statement"]),
            registry["source"], "change its actions or the code")
    repository = resource(load("deploy/staging-pipeline.yml"), "deploy/staging-pipeline.yml", "StagingRepository",
                          {"HasKmsKey": False})
    compare("deploy/staging-pipeline.yml StagingRepository's RepositoryPolicyText",
            union(set(s["Action"]) for s in repository["Properties"]["RepositoryPolicyText"]["Statement"]),
            registry["source"], "change its actions or the code")


def documented_policy(heading: str) -> dict:
    """Sid → actions of the first ```json block under `heading` in PERMISSIONS (up to the next heading of its
    level or above)."""
    text = (REPO / PERMISSIONS).read_text()
    level = heading.split(" ")[0]
    # Up to the next heading of this level or above (the page's one `# ` title aside, so that a shell comment
    # in a code block does not end the section).
    section = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^#{{2,{len(level)}}} )", text, re.S | re.M)
    block = section and re.search(r"```json\n(.*?)```", section.group(1), re.S)
    if not block:
        raise CheckFailed(f"{PERMISSIONS}: no ```json block under \"{heading}\"")
    documented = {}
    for statement in json.loads(block.group(1))["Statement"]:
        actions = statement["Action"]
        documented[statement["Sid"]] = set([actions] if isinstance(actions, str) else actions)
    return documented


def check_operator_policy(calls: set):
    heading = "## A read-only operator policy"
    documented = documented_policy(heading)
    fix = f"change {PERMISSIONS}'s block under \"{heading}\" or the code"
    compare(f"{PERMISSIONS}, \"{heading}\", statement ReadService", documented.get("ReadService", set()), calls,
            fix, needed_by=f"the code in {', '.join(OPERATOR_SOURCES)}")
    others = union(actions for sid, actions in documented.items() if sid != "ReadService")
    if others - OPERATOR_READS:
        raise CheckFailed(f"{PERMISSIONS}, \"{heading}\": grants {sorted(others - OPERATOR_READS)}, which are not "
                          f"among the reads an operator needs ({sorted(OPERATOR_READS)}): {fix}")


def check_documented_build_role(shown: dict):
    heading = "## The build role"
    documented = documented_policy(heading)
    for sid in sorted(set(documented) | set(shown)):
        compare(f"{PERMISSIONS}, \"{heading}\", statement {sid}", documented.get(sid, set()),
                shown.get(sid, set()),
                f"make {PERMISSIONS}'s block equal deploy/production.yml's BuildRole (without SourceRoleArn)",
                needed_by="the template's BuildRole")


def check() -> str:
    files = list(rust_files(["src"], BUILD_EXCLUDES))
    calls = sdk_calls(files) - set(NEEDS_NO_GRANT)
    registry = registry_calls(files)
    registry["source"] |= sdk_calls(rust_files(SOURCE_SDK_SOURCES))
    check_documented_build_role(check_build_role(calls, registry))
    check_github_token_grant()
    check_staging_side(registry)
    operator = sdk_calls(rust_files(OPERATOR_SOURCES))
    check_operator_policy(operator)
    webhook = check_webhook_role()
    settle = check_settle_role()
    staging_read = check_staging_read_role()
    return (f"grants match the code: SDK {sorted(calls)}; registry source {sorted(registry['source'])}, "
            f"target {sorted(registry['target'])}; operator {sorted(operator)}; webhook {sorted(webhook)}; "
            f"settle {sorted(settle)}; staging read {sorted(staging_read)}")


if __name__ == "__main__":
    sys.exit(run("check_iam", check))
