"""Setting the scene for scripts/demo.sh: an image in the staging registry, the queue, the table, the
webhook secret and the production pipeline; then GitHub's part, a signed release delivery over HTTP.

Uses boto3 (installed with moto in .local/venv) against moto, and plain HTTP against the registries and
the webhook function.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.request

import boto3


def registry_request(method, url, password, body=b"", headers=None):
    request = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None, method=method)
    token = base64.b64encode(f"AWS:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    return urllib.request.urlopen(request)


def push_blob(base, password, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = registry_request("POST", f"{base}/v2/{repo}/blobs/uploads/", password)
    location = start.headers["Location"]
    if location.startswith("/"):
        location = base + location
    separator = "&" if "?" in location else "?"
    registry_request("PUT", f"{location}{separator}digest={digest}", password, data,
                     {"Content-Type": "application/octet-stream"})
    return {"digest": digest, "size": len(data)}


def push_image(base, password, repo, tag):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Env": [f"NONCE={os.urandom(8).hex()}"]},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_descriptor = push_blob(base, password, repo, config)
    config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json"
    layers = []
    for size in (4 << 20, 1 << 20, 64 << 10):
        layer = push_blob(base, password, repo, os.urandom(size))
        layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        layers.append(layer)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_descriptor, "layers": layers}).encode()
    registry_request("PUT", f"{base}/v2/{repo}/manifests/{tag}", password, manifest,
                     {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    print(f"pushed {repo}:{tag} sha256:{hashlib.sha256(manifest).hexdigest()}")


def setup_aws(queue_name, table_name):
    sqs = boto3.client("sqs")
    dead = sqs.create_queue(QueueName=f"{queue_name}-dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=queue_name, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    boto3.client("dynamodb").create_table(
        TableName=table_name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "tag_name", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "tag_name", "KeyType": "HASH"}])
    print(queue)


def setup_webhook(secret_name, secret, pipeline_name):
    """The production stack's webhook secret and pipeline (with its release_tag variable)."""
    arn = boto3.client("secretsmanager").create_secret(Name=secret_name, SecretString=secret)["ARN"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "codepipeline.amazonaws.com"}}]}
    role = boto3.client("iam").create_role(RoleName="pipeline", AssumeRolePolicyDocument=json.dumps(trust))
    action = lambda category, provider: {"name": provider, "actionTypeId": {
        "category": category, "owner": "AWS", "provider": provider, "version": "1"}}
    boto3.client("codepipeline").create_pipeline(pipeline={
        "name": pipeline_name, "roleArn": role["Role"]["Arn"], "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "variables": [{"name": "release_tag", "defaultValue": "-"}],
        "stages": [{"name": "Source", "actions": [action("Source", "CodeStarSourceConnection")]},
                   {"name": "Promote", "actions": [action("Build", "CodeBuild")]}]})
    print(arn)


def deliver(url, secret, tag, commit, delivery):
    """What GitHub does when release `tag` is published: POST the payload, signed, to the webhook URL."""
    body = json.dumps({
        "action": "published",
        "release": {"tag_name": tag, "target_commitish": commit, "name": f"Release {tag}", "draft": False,
                    "prerelease": False, "created_at": "2026-11-26T09:00:00Z",
                    "published_at": "2026-11-26T09:01:00Z",
                    "html_url": f"https://github.com/example/barracuda/releases/tag/{tag}",
                    "author": {"login": "octocat"}},
        "repository": {"full_name": "example/barracuda"},
    }).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/demo",
        "X-GitHub-Event": "release", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature})
    try:
        answer = urllib.request.urlopen(request)
    except urllib.error.HTTPError as error:
        answer = error
    print(f"POST {url} (X-GitHub-Delivery {delivery}) -> {answer.status} {answer.read().decode()}")


def show_executions(pipeline_name):
    client = boto3.client("codepipeline")
    for summary in client.list_pipeline_executions(pipelineName=pipeline_name)["pipelineExecutionSummaries"]:
        execution = client.get_pipeline_execution(
            pipelineName=pipeline_name, pipelineExecutionId=summary["pipelineExecutionId"])["pipelineExecution"]
        variables = {v["name"]: v["resolvedValue"] for v in execution.get("variables", [])}
        print(f"  execution {summary['pipelineExecutionId']} {summary['status']} variables {variables}")


def plain(value):
    """A DynamoDB attribute value as plain Python, nested lists and maps included."""
    (kind, inner), = value.items()
    if kind == "L":
        return [plain(v) for v in inner]
    if kind == "M":
        return {k: plain(v) for k, v in sorted(inner.items())}
    if kind == "SS":
        return sorted(inner)
    return inner


def show_release(table_name, tag):
    item = boto3.client("dynamodb").get_item(TableName=table_name, Key={"tag_name": {"S": tag}})["Item"]
    for name in sorted(item):
        print(f"  {name:14} {json.dumps(plain(item[name]))}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"push-image": push_image, "setup-aws": setup_aws, "setup-webhook": setup_webhook, "deliver": deliver,
     "show-executions": show_executions, "show-release": show_release}[command](*args)
