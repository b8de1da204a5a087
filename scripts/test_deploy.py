#!/usr/bin/env python3
"""scripts/deploy.sh against moto's CloudFormation (scripts/moto_standins.py), as a user runs it: two
profiles resolving to two accounts, a GitHub connection in each, an ECS service in each.

- It refuses, naming what is missing and creating nothing, when the two profiles are one account, when the
  production service does not exist, and when the production connection is still PENDING.
- It deploys both stacks, and the production stack's parts line up with what the binaries read: the webhook
  function's variables and the promote project's are the queue, table, secret and pipeline the stack made
  (read from the stack's outputs, which must not be empty), the pipeline exists with its stages, the table
  is protected from deletion. Re-running it updates in place.

scripts/test.sh runs it with moto (.local/venv) and the AWS CLI (.local/awscli) that scripts/setup.sh installs.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STAGING, PRODUCTION, UNCONNECTED = "111111111111", "222222222222", "333333333333"
GITHUB_REPO = "example/barracuda"
INSTALL = "run scripts/setup.sh, or pip install awscli==1.46.3 'moto[server]==5.2.5'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World:
    """moto with the stand-ins, three accounts, and an AWS CLI config with a profile for each."""

    def __init__(self, directory: Path):
        if shutil.which("aws") is None:
            sys.exit(f"test_deploy: the AWS CLI (aws) is not on PATH: {INSTALL}")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(directory / "moto.log", "w")
        self.server = subprocess.Popen([sys.executable, str(REPO / "scripts/moto_standins.py"), "-H", "127.0.0.1",
                                        "-p", str(port)], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f"test_deploy: moto_standins.py did not answer on {self.url}; see {directory / 'moto.log'}")
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
            config.append(f"[profile a{account}]\nregion = {REGION}\n"
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

    def deploy(self, staging: str, production: str, prebuilt: Path, service: str = "api"):
        command = [str(REPO / "scripts/deploy.sh"), "--staging-profile", f"a{staging}", "--production-profile",
                   f"a{production}", "--repo", GITHUB_REPO, "--staging-cluster", "staging", "--cluster",
                   "production", "--service", service, "--container", "api", "--prebuilt", str(prebuilt)]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=600)
        print(f"$ {' '.join(command)}\nexit {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def assert_nothing_created(self):
        for account in (STAGING, PRODUCTION, UNCONNECTED):
            stacks = self.client("cloudformation", account).list_stacks()["StackSummaries"]
            assert not stacks, f"{account} has stacks {[s['StackName'] for s in stacks]}"
            buckets = self.client("s3", account).list_buckets()["Buckets"]
            assert not buckets, f"{account} has buckets {buckets}"


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
    assert project["environment"]["type"] == "LINUX_LAMBDA_CONTAINER", project["environment"]
    pipeline = world.client("codepipeline", PRODUCTION).get_pipeline(name=out["PipelineName"])["pipeline"]
    assert [s["name"] for s in pipeline["stages"]] == ["Source", "Promote", "Deploy"], pipeline["stages"]
    secret = world.client("secretsmanager", PRODUCTION).get_secret_value(SecretId=out["WebhookSecretArn"])
    assert len(secret["SecretString"]) == 48, "the webhook secret is not the generated 48 characters"
    table = world.client("dynamodb", PRODUCTION).describe_table(TableName=out["TableName"])["Table"]
    assert table.get("DeletionProtectionEnabled") is True, "the deploy did not protect the ledger table"
    assert out["WebhookUrl"].startswith("https://") and out["WebhookUrl"].endswith("/webhook"), out["WebhookUrl"]
    return out


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

        first = world.deploy(STAGING, PRODUCTION, prebuilt)
        assert first.returncode == 0, "the deploy failed"
        out = assert_production_lines_up(world)
        assert out["WebhookUrl"] in first.stdout and out["WebhookSecretArn"] in first.stdout, first.stdout
        staging_stack = world.client("cloudformation", STAGING).describe_stacks(StackName="ecr-promote")["Stacks"][0]
        assert staging_stack["StackStatus"].endswith("_COMPLETE"), staging_stack["StackStatus"]
        print("ok: deploys both stacks, lined up")

        # A new build of ecr-promote: the re-run uploads it and points the promote project at it, in place.
        (prebuilt / "ecr-promote").write_bytes(b"#!/bin/sh\n# rebuilt\n")
        again = world.deploy(STAGING, PRODUCTION, prebuilt)
        assert again.returncode == 0, "re-running the deploy failed"
        assert assert_production_lines_up(world) == out, "re-running changed the stack's outputs"
        rebuilt = hashlib.sha256((prebuilt / "ecr-promote").read_bytes()).hexdigest()
        assert promote_binary(world, out).endswith(f"/ecr-promote/{rebuilt}"), "the project kept the old binary"
        print("ok: re-running updates in place")
    finally:
        world.close()


if __name__ == "__main__":
    main()
