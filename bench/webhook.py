"""Figures for bench/webhook.sh: the webhook function's cold start and its per-delivery latency.

  webhook.py ready BOOTSTRAP ROUNDS
      Starts BOOTSTRAP ROUNDS times against a stand-in Lambda Runtime API (a small HTTP server here) and
      times each from process start to its first GET /runtime/invocation/next: the moment Lambda counts
      the instance ready for its first invocation. Init makes no AWS call, so no other server is needed.
  webhook.py latency URL SECRET COUNT COMMIT
      POSTs COUNT signed deliveries to URL one after another, as GitHub does: published releases (each its
      own delivery and tag: queued, claimed, pipeline started) and as many pings (answered at the edge).
      Times each from request to full answer, and fails on any unexpected status.
"""
import hashlib
import hmac
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ready(bootstrap, rounds):
    polled = threading.Event()
    polled_at = [0.0]

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.endswith("/runtime/invocation/next") and not polled.is_set():
                polled_at[0] = time.perf_counter()
                polled.set()
            # Hold the poll: no invocation is coming, and the process is killed next.
            time.sleep(2)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="webhook", AWS_LAMBDA_FUNCTION_VERSION="1",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", PROMOTE_QUEUE_URL="http://127.0.0.1:1/queue",
               PROMOTE_PIPELINE_NAME="pipeline", PROMOTE_WEBHOOK_SECRET_ARN="arn:aws:secretsmanager:x",
               AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_EC2_METADATA_DISABLED="true")
    times = []
    for _ in range(rounds):
        polled.clear()
        started = time.perf_counter()
        process = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not polled.wait(10):
            process.kill()
            sys.exit("the function did not poll for an invocation within 10 s")
        times.append((polled_at[0] - started) * 1000)
        process.kill()
        process.wait()
    server.shutdown()
    print(f"ready: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms, "
          f"max {max(times):.1f} ms over {rounds} starts")


def post(url, secret, event, body, delivery):
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench", "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return (time.perf_counter() - started) * 1000, status, text


def latency(url, secret, count, commit):
    figures = {"published release (queued + started)": [], "ping (answered at the edge)": []}
    for n in range(count):
        tag = f"v0.{n // 100}.{n % 100}"
        release = json.dumps({"action": "published", "release": {
            "tag_name": tag, "target_commitish": commit, "draft": False, "prerelease": False,
            "published_at": "2026-11-27T10:00:00Z", "author": {"login": "octocat"}},
            "repository": {"full_name": "example/barracuda"}}).encode()
        ms, status, text = post(url, secret, "release", release, str(uuid.uuid4()))
        if status != 202:
            sys.exit(f"delivery {n}: {status} {text!r}")
        figures["published release (queued + started)"].append(ms)
        ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
        ms, status, text = post(url, secret, "ping", ping, str(uuid.uuid4()))
        if status != 200:
            sys.exit(f"ping {n}: {status} {text!r}")
        figures["ping (answered at the edge)"].append(ms)
    for what, times in figures.items():
        print(f"{what}: p50 {percentile(times, 50):.1f} ms, p99 {percentile(times, 99):.1f} ms, "
              f"max {max(times):.1f} ms over {len(times)}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "ready":
        ready(args[0], int(args[1]))
    elif command == "latency":
        latency(args[0], args[1], int(args[2]), args[3])
    else:
        sys.exit(__doc__)
