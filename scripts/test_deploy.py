#!/usr/bin/env python3
"""scripts/deploy.sh against moto's CloudFormation (scripts/moto_standins.py), as a user runs it: two
profiles resolving to two accounts, a GitHub connection in each, an ECS service in each.

- It refuses, naming what is missing and creating nothing, when the two profiles are one account, when the
  production service does not exist, and when the production connection is still PENDING.
- It deploys both stacks, and the production stack's parts line up with what the binaries read: the webhook
  function's variables and the promote project's are the queue, table, secret and pipeline the stack made
  (read from the stack's outputs, which must not be empty), the pipeline exists with its stages, the table
  is protected from deletion.
- Through what the deployment made, a release is promoted: a signed GitHub delivery to the built
  ecr-promote-webhook (under cargo-lambda's Lambda Runtime API emulator) with the deployed function's
  variables and the secret they name queues it and starts the stack's pipeline; the built `ecr-promote run`
  with the promote project's variables copies the staging image (a CNCF Distribution registry standing for
  each account's ECR) to production under the release tag, records it in the stack's table and writes
  imagedefinitions.json. A variable, output or parameter that does not line up with the binaries fails here.
- A property the AWS API would refuse, in a resource a stand-in creates, fails the stack and is named.
- Re-running it with a rebuilt ecr-promote updates in place: same outputs, the project on the new binary.
- A staging repository that exists already (mutable tags, a count-based lifecycle, a policy of its own) is
  adopted, not created: the stack leaves it alone, its policy gains the pull statement beside its own (once,
  however often the command runs), the command warns about the settings that weaken a commit tag, and
  production promotes from it.

scripts/test.sh runs it after `cargo test` (which builds the binaries, target/debug) with moto and
cargo-lambda (.local/venv) and the AWS CLI (.local/awscli) that scripts/setup.sh installs; a missing tool fails
the test, saying how to install it.
"""

import base64
import hashlib
import hmac
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STAGING, PRODUCTION, UNCONNECTED = "111111111111", "222222222222", "333333333333"
GITHUB_REPO = "example/barracuda"
DOC = REPO / "docs/one-command-deploy.md"
INSTALL = ("run scripts/setup.sh and put .local/awscli/bin and .local/venv/bin on PATH (scripts/test.sh does both), "
           "or pip install awscli==1.46.3 'moto[server]==5.2.5' cargo-lambda==1.9.2 and apt-get install "
           "docker-registry apache2-utils")
# The binaries the promotion runs: what `cargo test` (scripts/test.sh, before this) built.
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"


def require(program: str) -> str:
    """The path of `program`, or the test fails saying how to install it."""
    found = shutil.which(program)
    if found is None:
        sys.exit(f"test_deploy: {program} is not on PATH: {INSTALL}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(command: list, log: Path, port: int, **popen) -> subprocess.Popen:
    """Starts a server and waits until it accepts connections on `port`."""
    process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT, **popen)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    sys.exit(f"test_deploy: {Path(command[0]).name} did not listen on port {port}; see {log}")


class World:
    """moto with the stand-ins, three accounts, and an AWS CLI config with a profile for each."""

    def __init__(self, directory: Path):
        require("aws")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = serve([sys.executable, str(REPO / "scripts/moto_standins.py"), "-H", "127.0.0.1", "-p", str(port)],
                            directory / "moto.log", port)
        sts = boto3.client("sts", endpoint_url=self.url, region_name=REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        self.credentials = {}
        config = []
        for account in (STAGING, PRODUCTION, UNCONNECTED):
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/deployer",
                                RoleSessionName="deploy")["Credentials"]
            self.credentials[account] = dict(aws_access_key_id=c["AccessKeyId"],
                                             aws_secret_access_key=c["SecretAccessKey"],
                                             aws_session_token=c["SessionToken"])
            # Each account's profile by number, and staging's and production's by the names the docs use.
            names = {STAGING: ["staging"], PRODUCTION: ["production"]}.get(account, [])
            for name in [f"a{account}", *names]:
                config.append(f"[profile {name}]\nregion = {REGION}\n"
                              + "".join(f"{key} = {value}\n" for key, value in self.credentials[account].items()))
        (directory / "config").write_text("\n".join(config))
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                    "AWS_CONFIG_FILE": str(directory / "config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(directory / "no-credentials"),
                    "AWS_ENDPOINT_URL": self.url, "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self, service: str, account: str):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **self.credentials[account])

    def close(self):
        self.server.terminate()
        self.server.wait()

    def service(self, account: str, cluster: str):
        """An ECS cluster with the service `api` running container `api`, as the user's app is."""
        ecs = self.client("ecs", account)
        ecs.create_cluster(clusterName=cluster)
        definition = ecs.register_task_definition(
            family="api", taskRoleArn=f"arn:aws:iam::{account}:role/api-task",
            executionRoleArn=f"arn:aws:iam::{account}:role/api-task-execution",
            containerDefinitions=[{"name": "api", "image": "public.ecr.aws/docker/library/busybox:1", "memory": 64}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=definition, desiredCount=1)

    def connection(self, account: str, available: bool):
        """Through the AWS CLI, which speaks the JSON protocol the stand-in answers."""
        tags = ["--tags", "Key=standin:handshake,Value=done"] if available else []
        subprocess.run(["aws", "--profile", f"a{account}", "codeconnections", "create-connection",
                        "--connection-name", "github", "--provider-type", "GitHub", *tags],
                       env=self.env, check=True, capture_output=True)

    def deploy(self, staging: str, production: str, prebuilt: Path, service: str = "api", repository: str = "api",
               stack: str = "ecr-promote"):
        return self.run([str(REPO / "scripts/deploy.sh"), "--staging-profile", f"a{staging}", "--production-profile",
                         f"a{production}", "--repo", GITHUB_REPO, "--staging-cluster", "staging", "--cluster",
                         "production", "--service", service, "--container", "api", "--repository", repository,
                         "--stack-name", stack], prebuilt)

    def run(self, command: list, prebuilt: Path):
        """`command` (scripts/deploy.sh and its arguments) with the binaries in `prebuilt`."""
        command = [*command, "--prebuilt", str(prebuilt)]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=600)
        print(f"$ {' '.join(command)}\nexit {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def assert_nothing_created(self):
        for account in (STAGING, PRODUCTION, UNCONNECTED):
            stacks = self.client("cloudformation", account).list_stacks()["StackSummaries"]
            assert not stacks, f"{account} has stacks {[s['StackName'] for s in stacks]}"
            buckets = self.client("s3", account).list_buckets()["Buckets"]
            assert not buckets, f"{account} has buckets {buckets}"


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Registry:
    """CNCF Distribution standing for `account`'s ECR: basic auth for user AWS with the password moto's
    GetAuthorizationToken hands out for the account, as tests/it/support's registries."""

    def __init__(self, directory: Path, account: str):
        self.host = f"{account}.dkr.ecr.{REGION}.amazonaws.com"
        self.password = f"{account}-auth-token"
        root = directory / f"registry-{account}"
        (root / "storage").mkdir(parents=True)
        hashed = subprocess.run([require("htpasswd"), "-nbBC", "4", "AWS", self.password], check=True,
                                capture_output=True, text=True).stdout
        (root / "htpasswd").write_text(hashed)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        (root / "config.yml").write_text(
            f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: test-deploy\n"
            f"auth:\n  htpasswd:\n    realm: test-deploy\n    path: {root / 'htpasswd'}\n")
        self.process = serve([require("docker-registry"), "serve", str(root / "config.yml")], root / "registry.log",
                             port)

    def request(self, method: str, url: str, body: bytes = b"", content_type: str = "application/octet-stream"):
        token = base64.b64encode(f"AWS:{self.password}".encode()).decode()
        request = urllib.request.Request(url if url.startswith("http") else self.url + url, data=body, method=method,
                                         headers={"Authorization": f"Basic {token}", "Content-Type": content_type,
                                                  "Accept": OCI_MANIFEST})
        with urllib.request.urlopen(request) as answer:
            return answer.headers, answer.read()

    def push(self, repository: str, tag: str) -> str:
        """A one-layer OCI image under `tag`; its manifest's digest."""
        def blob(data: bytes, media_type: str) -> dict:
            digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
            location = self.request("POST", f"/v2/{repository}/blobs/uploads/")[0]["Location"]
            self.request("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", data)
            return {"mediaType": media_type, "digest": digest, "size": len(data)}

        layer = os.urandom(4096)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": blob(config, "application/vnd.oci.image.config.v1+json"),
            "layers": [blob(layer, "application/vnd.oci.image.layer.v1.tar+gzip")]}).encode()
        self.request("PUT", f"/v2/{repository}/manifests/{tag}", manifest, OCI_MANIFEST)
        return f"sha256:{hashlib.sha256(manifest).hexdigest()}"

    def digest(self, repository: str, tag: str):
        """The digest of the manifest under `tag`, or None when there is none."""
        try:
            return f"sha256:{hashlib.sha256(self.request('GET', f'/v2/{repository}/manifests/{tag}')[1]).hexdigest()}"
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def close(self):
        self.process.terminate()
        self.process.wait()


def environment_of(world, account: str, variables: dict, registries) -> dict:
    """`variables` (a deployed function's or build project's), with the account's credentials, moto, and the
    registries standing for ECR: nothing of the calling environment that could point elsewhere."""
    credentials = world.credentials[account]
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **variables,
            "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": credentials["aws_session_token"], "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": world.url, "AWS_EC2_METADATA_DISABLED": "true",
            "PROMOTE_REGISTRY_ENDPOINTS": ",".join(f"{r.host}={r.url}" for r in registries)}


def deliver(directory: Path, environment: dict, event: dict) -> dict:
    """Invokes the built ecr-promote-webhook, with `environment`, under cargo-lambda's Lambda Runtime API
    emulator, as API Gateway does for one request; the function's answer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = serve([require("cargo-lambda"), "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P",
                      str(port)], directory / "emulator.log", port, cwd=REPO)
    function = subprocess.Popen([str(TARGET / "ecr-promote-webhook")], stdout=open(directory / "function.log", "w"),
                                stderr=subprocess.STDOUT, env={**environment, "AWS_LAMBDA_RUNTIME_API": f"{url}/.rt",
                                                               "AWS_LAMBDA_FUNCTION_NAME": "_",
                                                               "AWS_LAMBDA_FUNCTION_VERSION": "1",
                                                               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"})
    try:
        request = urllib.request.Request(f"{url}/2015-03-31/functions/_/invocations", data=json.dumps(event).encode(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:  # GitHub waits 10 s
            return json.loads(answer.read())
    finally:
        function.terminate()
        emulator.terminate()
        function.wait()
        emulator.wait()


def release_delivery(tag: str, commit: str, secret: str) -> dict:
    """GitHub's delivery of a published release of `commit`, signed with `secret`, as the HTTP API hands it to
    the function (payload format 2.0)."""
    body = json.dumps({
        "action": "published",
        "release": {"id": 1, "tag_name": tag, "target_commitish": commit, "name": tag, "draft": False,
                    "prerelease": False, "created_at": "2026-03-02T10:00:00Z",
                    "published_at": "2026-03-02T10:15:00Z", "author": {"login": "octocat"},
                    "html_url": f"https://github.com/{GITHUB_REPO}/releases/tag/{tag}"},
        "repository": {"full_name": GITHUB_REPO}, "sender": {"login": "octocat"}})
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"version": "2.0", "routeKey": "POST /webhook", "rawPath": "/webhook", "rawQueryString": "",
            "headers": {"content-type": "application/json", "user-agent": "GitHub-Hookshot/1a2b3c4",
                        "x-github-event": "release", "x-github-delivery": str(uuid.uuid4()),
                        "x-hub-signature-256": f"sha256={signature}"},
            "requestContext": {"http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1"},
                               "routeKey": "POST /webhook", "stage": "$default"},
            "body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True}


def assert_promotes(world, directory: Path, out: dict):
    """A release, through what the deployment made: the webhook function runs with the deployed function's
    variables, `ecr-promote run` with the promote project's; both read the stack's queue, table and secret."""
    for binary in ("ecr-promote", "ecr-promote-webhook"):
        if not (TARGET / binary).is_file():
            sys.exit(f"test_deploy: {TARGET / binary} is missing: cargo build --locked (scripts/test.sh builds it)")
    registries = [Registry(directory, STAGING), Registry(directory, PRODUCTION)]
    try:
        commit = hashlib.sha1(b"the commit staging built").hexdigest()
        staging_digest = registries[0].push("api", commit)
        production = world.client("lambda", PRODUCTION)
        function = production.get_function_configuration(FunctionName=out["WebhookFunctionName"])
        secret = world.client("secretsmanager", PRODUCTION).get_secret_value(
            SecretId=function["Environment"]["Variables"]["PROMOTE_WEBHOOK_SECRET_ARN"])["SecretString"]
        answer = deliver(directory, environment_of(world, PRODUCTION, function["Environment"]["Variables"], registries),
                         release_delivery("v1.0.0", commit, secret))
        assert answer.get("statusCode") == 202, f"the webhook answered {answer}; see {directory / 'function.log'}"
        executions = world.client("codepipeline", PRODUCTION).list_pipeline_executions(
            pipelineName=out["PipelineName"])["pipelineExecutionSummaries"]
        assert len(executions) == 1, f"the delivery started {len(executions)} executions of {out['PipelineName']}"

        project = world.client("codebuild", PRODUCTION).batch_get_projects(names=[out["BuildProjectName"]])["projects"][0]
        variables = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
        # What the buildspec and CodeBuild add (deploy/production.yml, PromoteProject).
        variables.update(PROMOTE_IMAGEDEFINITIONS=str(directory / "imagedefinitions.json"), PROMOTE_WAIT_SECONDS="0",
                         CODEBUILD_BUILD_ARN=f"arn:aws:codebuild:{REGION}:{PRODUCTION}:build/{project['name']}:1")
        run = subprocess.run([str(TARGET / "ecr-promote"), "run"], capture_output=True, text=True, timeout=180,
                             env=environment_of(world, PRODUCTION, variables, registries))
        print(f"$ ecr-promote run\nexit {run.returncode}\n{run.stdout}{run.stderr}")
        assert run.returncode == 0, "ecr-promote run failed"
        promoted = registries[1].digest("api", "v1.0.0")
        assert promoted == staging_digest, f"production's v1.0.0 is {promoted}, not staging's {staging_digest}"
        item = world.client("dynamodb", PRODUCTION).get_item(TableName=out["TableName"],
                                                           Key={"tag_name": {"S": "v1.0.0"}}).get("Item")
        assert item and staging_digest in json.dumps(item), f"the ledger holds {item}"
        definitions = json.loads((directory / "imagedefinitions.json").read_text())
        assert definitions == [{"name": "api", "imageUri": f"{registries[1].host}/api:v1.0.0"}], definitions
        queue = world.client("sqs", PRODUCTION).get_queue_attributes(
            QueueUrl=out["QueueUrl"], AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert queue["ApproximateNumberOfMessages"] == "0", f"the release is still queued: {queue}"

        # The settle project, with its variables, on the stack's outcomes queue, table and the service.
        project = world.client("codebuild", PRODUCTION).batch_get_projects(names=[out["SettleProjectName"]])["projects"][0]
        variables = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
        settle = subprocess.run([str(TARGET / "ecr-promote"), "settle"], capture_output=True, text=True, timeout=60,
                                env=environment_of(world, PRODUCTION, variables, registries))
        print(f"$ ecr-promote settle\nexit {settle.returncode}\n{settle.stdout}{settle.stderr}")
        assert settle.returncode == 0, "ecr-promote settle failed"
    finally:
        for registry in registries:
            registry.close()


def assert_refused_property_fails_the_stack(world, directory: Path):
    """A property the AWS API would refuse, in a resource a stand-in creates: `aws cloudformation deploy` reports
    a failed stack, and its events name the property."""
    template = directory / "misspelt.yml"
    template.write_text("Resources:\n  Alarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n"
                        "      ComparisonOperator: GreaterThanThreshold\n      EvaluationPeriods: 1\n      Threshhold: 1\n")
    done = subprocess.run(["aws", "--profile", f"a{UNCONNECTED}", "cloudformation", "deploy", "--stack-name", "misspelt",
                           "--template-file", str(template)], env=world.env, capture_output=True, text=True)
    assert done.returncode != 0 and "Failed to create/update the stack" in done.stderr, f"{done.returncode} {done.stderr}"
    cloudformation = world.client("cloudformation", UNCONNECTED)
    assert cloudformation.describe_stacks(StackName="misspelt")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason", "") for e in cloudformation.describe_stack_events(StackName="misspelt")["StackEvents"]]
    assert any("Threshhold is not a member" in reason for reason in reasons), reasons


def documented_command() -> list:
    """The command docs/one-command-deploy.md tells the user to run, which the test runs as it is written."""
    commands = [line for line in DOC.read_text().splitlines() if line.startswith("scripts/deploy.sh ")]
    assert len(commands) == 1, f"{DOC} should show the one command once, on one line: {commands}"
    # README's deploy section shows the same command, and no other.
    front = [line.strip() for line in (REPO / "README.md").read_text().splitlines() if "scripts/deploy.sh " in line]
    assert front == commands, f"README.md shows {front}, not the command {DOC.name} shows and the test runs"
    program, *arguments = shlex.split(commands[0])
    return [str(REPO / program), *arguments]


def refuses(world, prebuilt, what, expected, **deploy):
    done = world.deploy(prebuilt=prebuilt, **deploy)
    assert done.returncode == 1, f"{what}: exit {done.returncode}"
    assert "nothing was created" in done.stderr and expected in done.stderr, f"{what}: {done.stderr}"
    world.assert_nothing_created()
    print(f"ok: refuses {what}")


def outputs(world, account):
    stack = world.client("cloudformation", account).describe_stacks(StackName="ecr-promote")["Stacks"][0]
    found = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    assert found and all(found.values()), f"the production stack's outputs are empty: {found}"
    return found


def promote_binary(world, out):
    """Where the promote project downloads ecr-promote from."""
    project = world.client("codebuild", PRODUCTION).batch_get_projects(names=[out["BuildProjectName"]])["projects"][0]
    return {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}["PROMOTE_BINARY_S3_URI"]


def assert_production_lines_up(world):
    out = outputs(world, PRODUCTION)
    function = world.client("lambda", PRODUCTION).get_function_configuration(FunctionName=out["WebhookFunctionName"])
    variables = function["Environment"]["Variables"]
    wanted = {"PROMOTE_QUEUE_URL": out["QueueUrl"], "PROMOTE_TABLE": out["TableName"],
              "PROMOTE_WEBHOOK_SECRET_ARN": out["WebhookSecretArn"], "PROMOTE_PIPELINE_NAME": out["PipelineName"]}
    for name, value in wanted.items():
        assert variables.get(name) == value, f"the webhook's {name} is {variables.get(name)!r}, not {value!r}"
    assert "ReservedConcurrentExecutions" not in json.dumps(function), "the webhook reserves concurrency"
    project = world.client("codebuild", PRODUCTION).batch_get_projects(names=[out["BuildProjectName"]])["projects"][0]
    build = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
    for name in ("PROMOTE_QUEUE_URL", "PROMOTE_TABLE", "PROMOTE_WEBHOOK_SECRET_ARN"):
        assert build.get(name) == wanted[name], f"the build's {name} is {build.get(name)!r}, not {wanted[name]!r}"
    assert build["PROMOTE_SOURCE_REPOSITORY"] == f"{STAGING}.dkr.ecr.{REGION}.amazonaws.com/api", build
    # The documented command's --set EventBusName=default reaches the build's setting.
    assert build["PROMOTE_EVENT_BUS"] == "default", build
    # GitHub deployments stay off without a token's secret; their environment is the template's default.
    assert (build["PROMOTE_GITHUB_TOKEN_SECRET_ARN"], build["PROMOTE_GITHUB_ENVIRONMENT"]) == ("off", "production"), build
    # The soak gate reads staging through the role the staging stack made, on the service it deploys, and
    # starts this stack's pipeline again through its wake role.
    staging = outputs(world, STAGING)
    assert build["PROMOTE_STAGING_READ_ROLE_ARN"] == staging["StagingReadRoleArn"], build
    assert (build["PROMOTE_STAGING_CLUSTER"], build["PROMOTE_STAGING_SERVICE"]) == ("staging", "api"), build
    assert build["PROMOTE_WAKE_PIPELINE"] == out["PipelineName"], build
    assert project["environment"]["type"] == "LINUX_LAMBDA_CONTAINER", project["environment"]
    # The documented command's --set RecordDeployOutcomes=true: settle reads the queue the rule feeds.
    settle = world.client("codebuild", PRODUCTION).batch_get_projects(names=[out["SettleProjectName"]])["projects"][0]
    settling = {v["name"]: v["value"] for v in settle["environment"]["environmentVariables"]}
    for name, value in {"PROMOTE_OUTCOMES_QUEUE_URL": out["OutcomesQueueUrl"], "PROMOTE_TABLE": out["TableName"],
                        "PROMOTE_CLUSTER": "production", "PROMOTE_SERVICE": "api",
                        "PROMOTE_EVENT_BUS": "default"}.items():
        assert settling.get(name) == value, f"the settle project's {name} is {settling.get(name)!r}, not {value!r}"
    events = world.client("events", PRODUCTION)
    rules = [r for r in events.list_rules()["Rules"] if "aws.ecs" in r.get("EventPattern", "")]
    assert len(rules) == 1, f"one rule on ECS's deployment events, not {rules}"
    targets = {t["Arn"] for t in events.list_targets_by_rule(Rule=rules[0]["Name"])["Targets"]}
    queue_arn = world.client("sqs", PRODUCTION).get_queue_attributes(
        QueueUrl=out["OutcomesQueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert targets == {queue_arn, settle["arn"]}, f"the rule's targets are {targets}"
    pipeline = world.client("codepipeline", PRODUCTION).get_pipeline(name=out["PipelineName"])["pipeline"]
    assert [s["name"] for s in pipeline["stages"]] == ["Source", "Promote", "Deploy"], pipeline["stages"]
    secret = world.client("secretsmanager", PRODUCTION).get_secret_value(SecretId=out["WebhookSecretArn"])
    assert len(secret["SecretString"]) == 48, "the webhook secret is not the generated 48 characters"
    table = world.client("dynamodb", PRODUCTION).describe_table(TableName=out["TableName"])["Table"]
    assert table.get("DeletionProtectionEnabled") is True, "the deploy did not protect the ledger table"
    assert out["WebhookUrl"].startswith("https://") and out["WebhookUrl"].endswith("/webhook"), out["WebhookUrl"]
    return out


def assert_adopts_an_existing_staging_repository(world, prebuilt: Path):
    """A staging pipeline pushes to `legacy` already, under a policy and lifecycle of its own: a stack of another
    name adopts it rather than refusing or creating one."""
    ecr = world.client("ecr", STAGING)
    ecr.create_repository(repositoryName="legacy", imageTagMutability="MUTABLE")
    theirs = {"Sid": "TheirCi", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{STAGING}:root"},
              "Action": ["ecr:PutImage"]}
    ecr.set_repository_policy(repositoryName="legacy",
                              policyText=json.dumps({"Version": "2012-10-17", "Statement": [theirs]}))
    ecr.put_lifecycle_policy(repositoryName="legacy", lifecyclePolicyText=json.dumps({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50},
         "action": {"type": "expire"}}]}))
    for attempt in ("first", "again"):
        done = world.deploy(STAGING, PRODUCTION, prebuilt, repository="legacy", stack="adopter")
        assert done.returncode == 0, f"adopting ({attempt}) failed"
        assert "adopted the staging repository legacy" in done.stdout, done.stdout
        assert "legacy's tags are mutable" in done.stdout and "expires images by count" in done.stdout, done.stdout
        statements = json.loads(ecr.get_repository_policy(repositoryName="legacy")["policyText"])["Statement"]
        assert [s["Sid"] for s in statements] == ["TheirCi", "EcrPromotePull"], f"({attempt}) {statements}"
        ours = statements[1]
        assert ours["Condition"]["ArnEquals"]["aws:PrincipalArn"] == f"arn:aws:iam::{PRODUCTION}:role/adopter-build", ours
        assert ours["Principal"]["AWS"] == f"arn:aws:iam::{PRODUCTION}:root", ours
    resources = world.client("cloudformation", STAGING).list_stack_resources(StackName="adopter")
    types = {r["ResourceType"] for r in resources["StackResourceSummaries"]}
    assert "AWS::ECR::Repository" not in types, f"the stack made a repository of its own: {types}"
    repository = ecr.describe_repositories(repositoryNames=["legacy"])["repositories"][0]
    assert repository["imageTagMutability"] == "MUTABLE", "the command changed the adopted repository's settings"
    stack = world.client("cloudformation", PRODUCTION).describe_stacks(StackName="adopter")["Stacks"][0]
    out = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    project = world.client("codebuild", PRODUCTION).batch_get_projects(names=[out["BuildProjectName"]])["projects"][0]
    build = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
    assert build["PROMOTE_SOURCE_REPOSITORY"] == f"{STAGING}.dkr.ecr.{REGION}.amazonaws.com/legacy", build


def main():
    directory = Path(tempfile.mkdtemp(prefix="test-deploy-"))
    prebuilt = directory / "prebuilt"
    prebuilt.mkdir()
    # moto keeps the function's zip without running it: any executable named bootstrap stands for the build.
    (prebuilt / "ecr-promote").write_bytes(b"#!/bin/sh\n")
    with zipfile.ZipFile(prebuilt / "bootstrap.zip", "w") as archive:
        archive.writestr("bootstrap", "#!/bin/sh\n")
    world = World(directory)
    try:
        world.service(STAGING, "staging")
        world.service(PRODUCTION, "production")
        world.service(UNCONNECTED, "production")
        world.connection(STAGING, available=True)
        world.connection(PRODUCTION, available=True)
        world.connection(UNCONNECTED, available=False)

        refuses(world, prebuilt, "one account for both", "are both account", staging=STAGING, production=STAGING)
        refuses(world, prebuilt, "a missing production service", "no ECS service checkout in cluster production",
                staging=STAGING, production=PRODUCTION, service="checkout")
        refuses(world, prebuilt, "a pending connection", "is PENDING", staging=STAGING, production=UNCONNECTED)

        assert_refused_property_fails_the_stack(world, directory)
        print("ok: a property the API would refuse fails the stack, named")

        first = world.run(documented_command(), prebuilt)
        assert first.returncode == 0, "the deploy failed"
        out = assert_production_lines_up(world)
        assert out["WebhookUrl"] in first.stdout and out["WebhookSecretArn"] in first.stdout, first.stdout
        staging_stack = world.client("cloudformation", STAGING).describe_stacks(StackName="ecr-promote")["Stacks"][0]
        assert staging_stack["StackStatus"].endswith("_COMPLETE"), staging_stack["StackStatus"]
        print("ok: deploys both stacks, lined up")
        assert_promotes(world, directory, out)
        print("ok: a signed delivery to the webhook and ecr-promote run promote a release through the stack")

        # A new build of ecr-promote: the re-run uploads it and points the promote project at it, in place.
        (prebuilt / "ecr-promote").write_bytes(b"#!/bin/sh\n# rebuilt\n")
        again = world.run(documented_command(), prebuilt)
        assert again.returncode == 0, "re-running the deploy failed"
        assert assert_production_lines_up(world) == out, "re-running changed the stack's outputs"
        rebuilt = hashlib.sha256((prebuilt / "ecr-promote").read_bytes()).hexdigest()
        assert promote_binary(world, out).endswith(f"/ecr-promote/{rebuilt}"), "the project kept the old binary"
        print("ok: re-running updates in place")
        assert_adopts_an_existing_staging_repository(world, prebuilt)
        print("ok: adopts a staging repository that exists, keeping its policy's statements")
    finally:
        world.close()
    shutil.rmtree(directory)  # kept when a check fails: the logs of moto, the registries and the function


if __name__ == "__main__":
    main()
