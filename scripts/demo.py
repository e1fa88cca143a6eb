#!/usr/bin/env python3
"""`make demo`: the whole product on one machine, nothing from the internet.

Starts the Okta simulator and moto (DynamoDB, Kinesis, Secrets Manager), creates the cursor
table, the stream and the connector secret (OAuth 2.0 private_key_jwt with DPoP, the
recommended setup), runs the Lambda handler under `cargo lambda watch`, invokes it with the
payloads in events/, reads the records back from Kinesis and prints a summary. Then it adds a
second connector (a second simulated org, SSWS) through `okta-ingest connectors add`, polls it and
shows `okta-ingest connectors list`. Everything it started is stopped on exit.
"""
import base64
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
CONNECTOR = "demo"
TABLE = "okta-ingest-cursors"
STREAM = "okta-ingest-events"
CLIENT_ID = "0oademoclient"
REGION = "us-east-1"
GROUP = "okta-ingest-demo"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:okta-ingest"
SCHEDULER_ROLE_ARN = "arn:aws:iam::123456789012:role/okta-ingest-scheduler"
SECOND = "globex"
SECOND_TOKEN = "00demo-globex-ssws-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(n, size):
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def demo_key():
    """A fresh EC P-256 key pair as JWKs: the private one goes into the secret, the public
    one is registered with the simulator's service app."""
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_numbers()
    public = {"kty": "EC", "crv": "P-256", "kid": "demo-key-1", "use": "sig",
              "x": b64url(pub.x, 32), "y": b64url(pub.y, 32)}
    private = dict(public, d=b64url(key.private_numbers().private_value, 32))
    return private, public


class Processes:
    def __init__(self):
        self.procs = []

    def start(self, name, args, **kw):
        proc = subprocess.Popen(args, start_new_session=True, **kw)
        self.procs.append((name, proc))
        return proc

    def stop_all(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_http(url, seconds=120):
    end = time.time() + seconds
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"demo: {url} did not come up within {seconds}s")


def step(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def main():
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="okta-ingest-demo-"))
    try:
        run(procs, work)
    finally:
        procs.stop_all()


def run(procs, work):
    step("building okta-ingest and the Okta simulator")
    subprocess.run(["cargo", "build", "--quiet", "--bin", "okta-ingest", "--bin", "okta-sim"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))

    moto_port, sim_port, invoke_port = free_port(), free_port(), free_port()
    step(f"starting moto on 127.0.0.1:{moto_port}")
    procs.start("moto", ["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{moto_port}/moto-api/")

    private_jwk, public_jwk = demo_key()
    sim_config = {
        "seed": 7,
        "initial_events": 3000,
        "backlog_span_secs": 6 * 3600,
        "clients": [{"client_id": CLIENT_ID, "public_jwks": [public_jwk],
                     "scopes": ["okta.logs.read"], "require_dpop": True, "active": True}],
    }
    (work / "sim.json").write_text(json.dumps(sim_config))
    step(f"starting the Okta simulator on 127.0.0.1:{sim_port} (3000 events over the last 6 h)")
    procs.start("okta-sim", [str(target / "debug" / "okta-sim"), "--port", str(sim_port),
                             "--config", str(work / "sim.json")], stdout=subprocess.DEVNULL)
    sim_url = f"http://127.0.0.1:{sim_port}"
    wait_http(f"{sim_url}/__sim/requests")

    endpoint = f"http://127.0.0.1:{moto_port}"
    aws = dict(endpoint_url=endpoint, region_name=REGION,
               aws_access_key_id="demo", aws_secret_access_key="demo")
    ddb, kinesis, sm, scheduler = (boto3.client(s, **aws)
                                   for s in ("dynamodb", "kinesis", "secretsmanager", "scheduler"))
    step("creating the cursor table, the stream, the schedule group and the first connector in moto")
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "connector_id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "connector_id", "KeyType": "HASH"}])
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM)
    secret = {"org_url": sim_url, "auth": {"type": "oauth2", "client_id": CLIENT_ID,
                                           "private_key": private_jwk, "dpop": True}}
    # The first connector as the stack's ConnectorId parameter creates it: a tagged secret and a schedule.
    sm.create_secret(Name=f"okta-ingest/{CONNECTOR}", SecretString=json.dumps(secret),
                     Tags=[{"Key": "connector_id", "Value": CONNECTOR},
                           {"Key": "okta-ingest:org", "Value": "127.0.0.1"},
                           {"Key": "okta-ingest:auth", "Value": "oauth"}])
    scheduler.create_schedule_group(Name=GROUP)
    scheduler.create_schedule(Name=CONNECTOR, GroupName=GROUP, ScheduleExpression="rate(1 minute)",
                              FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1},
                              Target={"Arn": FUNCTION_ARN, "RoleArn": SCHEDULER_ROLE_ARN,
                                      "Input": json.dumps({"connector_id": CONNECTOR, "action": "poll"})})

    env_file = work / "lambda.env"
    env_file.write_text("\n".join([
        f"AWS_ENDPOINT_URL={endpoint}", f"AWS_REGION={REGION}",
        "AWS_ACCESS_KEY_ID=demo", "AWS_SECRET_ACCESS_KEY=demo",
        f"CURSOR_TABLE={TABLE}", f"EVENT_STREAM={STREAM}",
        f"DEFAULT_CONNECTOR_ID={CONNECTOR}", "LOOKBACK_MINUTES=720",
        "OKTA_ALLOW_INSECURE_LOOPBACK=true", "RUST_LOG=info",
    ]) + "\n")
    step(f"starting the Lambda handler under cargo lambda watch (port {invoke_port})")
    procs.start("cargo-lambda", ["cargo", "lambda", "watch", "--invoke-port", str(invoke_port),
                                 "--env-file", str(env_file), "--bin", "okta-ingest", "--ignore-changes"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / "lambda.log", "w"))
    wait_port(invoke_port)

    def invoke(event_file, note, payload=None):
        step(f"invoke {event_file or json.dumps(payload)}: {note}")
        path = ROOT / "events" / event_file if event_file else work / "payload.json"
        if payload:
            path.write_text(json.dumps(payload))
        out = subprocess.run(["cargo", "lambda", "invoke", "okta-ingest", "--invoke-port", str(invoke_port),
                              "--data-file", str(path)],
                             cwd=ROOT, capture_output=True, text=True)
        text = (out.stdout or out.stderr).strip()
        try:
            print(json.dumps(json.loads(text), indent=2))
        except ValueError:
            print(text)

    invoke("test_connection.json", "auth (private_key_jwt + DPoP) and a count of the last 24 h")
    invoke("poll.json", "first poll: drains the backlog of the look-back window")
    urllib.request.urlopen(urllib.request.Request(f"{sim_url}/__sim/events", method="POST",
                           data=json.dumps({"count": 500}).encode(),
                           headers={"content-type": "application/json"}))
    urllib.request.urlopen(urllib.request.Request(f"{sim_url}/__sim/events", method="POST",
                           data=json.dumps({"late": 20, "age_secs": 1800}).encode(),
                           headers={"content-type": "application/json"}))
    invoke("scheduled-event.json", "EventBridge envelope: 500 new + 20 late-persisted events")
    invoke("disable.json", "operator pause")
    invoke("poll.json", "paused: returns at once, no Okta call")
    invoke("resume.json", "resume from the stored cursor")
    invoke("poll.json", "caught up")

    step("reading the stream back from Kinesis")
    records = read_stream(kinesis)
    by_class = collections.Counter(r["classification"] for r in records)
    ids = [r["event_id"] for r in records]
    print(f"{len(records)} records, {len(set(ids))} distinct Okta events")
    for name, count in by_class.most_common():
        print(f"  {name:<16} {count}")
    if records:
        print("\nsample normalized event:")
        print(json.dumps(records[len(records) // 2], indent=2))
    item = ddb.get_item(TableName=TABLE, Key={"connector_id": {"S": CONNECTOR}}, ConsistentRead=True)["Item"]
    print("\ncursor item:")
    for key in sorted(item):
        value = next(iter(item[key].values()))
        if key == "cursor":
            value = value[:90] + "..."
        print(f"  {key:<22} {value}")

    add_second_connector(procs, work, target, endpoint, invoke)


def add_second_connector(procs, work, target, endpoint, invoke):
    """Fleet mode: a second org added with the command line, polled by the same function, then listed."""
    sim_port = free_port()
    (work / "sim-globex.json").write_text(json.dumps({
        "seed": 8, "initial_events": 400, "backlog_span_secs": 3600, "ssws_tokens": [SECOND_TOKEN]}))
    step(f"starting a second simulated org on 127.0.0.1:{sim_port} (SSWS, 400 events)")
    procs.start("okta-sim-globex", [str(target / "debug" / "okta-sim"), "--port", str(sim_port),
                                    "--config", str(work / "sim-globex.json")], stdout=subprocess.DEVNULL)
    sim_url = f"http://127.0.0.1:{sim_port}"
    wait_http(f"{sim_url}/__sim/requests")
    config = work / f"{SECOND}.json"
    config.write_text(json.dumps({"org_url": sim_url, "auth": {"type": "ssws", "token": SECOND_TOKEN}}))
    # What the stack's ShellExports output prints, pointed at moto.
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "demo",
           "AWS_SECRET_ACCESS_KEY": "demo", "CURSOR_TABLE": TABLE, "EVENT_STREAM": STREAM,
           "SECRET_ID_TEMPLATE": "okta-ingest/{connector_id}", "SCHEDULE_GROUP": GROUP,
           "FUNCTION_ARN": FUNCTION_ARN, "SCHEDULER_ROLE_ARN": SCHEDULER_ROLE_ARN,
           "OKTA_ALLOW_INSECURE_LOOPBACK": "true", "RUST_LOG": "warn"}
    env.pop("AWS_LAMBDA_RUNTIME_API", None)
    cli = [str(target / "debug" / "okta-ingest"), "connectors"]

    def connectors(*args):
        step("okta-ingest connectors " + " ".join(args))
        out = subprocess.run(cli + list(args), env=env, capture_output=True, text=True)
        print((out.stdout + out.stderr).strip())
        if out.returncode != 0:
            raise SystemExit(f"demo: `connectors {' '.join(args)}` failed")

    connectors("add", SECOND, "--config", str(config), "--schedule", "rate(1 minute)")
    invoke(None, "the schedule's input for the new connector", {"connector_id": SECOND, "action": "poll"})
    connectors("list")


def wait_port(port, seconds=600):
    end = time.time() + seconds
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise SystemExit(f"demo: cargo lambda watch did not listen on {port}")


def read_stream(kinesis):
    records = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            out = kinesis.get_records(ShardIterator=it, Limit=10000)
            records += [json.loads(r["Data"]) for r in out["Records"]]
            if not out["Records"] or out.get("MillisBehindLatest", 0) == 0:
                break
            it = out["NextShardIterator"]
    return records


if __name__ == "__main__":
    sys.exit(main())
