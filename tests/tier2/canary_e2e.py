#!/usr/bin/env python3
"""Tier-2 end-to-end test: the SAM stack in fakecloud, Step Functions driving the real phase
function, two canaries on two target functions at once.

- `healthy`: version 2 behaves like version 1; the canary must be promoted (execution
  SUCCEEDED, alias on version 2 with no split, a `promoted` notification).
- `regressed`: version 2 is slower and fails more often; the canary must be rolled back
  (execution FAILED with CanaryRolledBack, alias back on version 1 with no split, a
  `rollback` notification with its subject and attributes, read through SQS).

The healthy canary is started the way a SAM deployment starts it: the stack's
BeforeAllowTraffic function is invoked with a CodeDeploy hook event for a deployment created
in fakecloud (fakecloud does not invoke hooks itself) and starts the execution from the
deployment's AppSpec; AfterAllowTraffic then checks the alias and the outcome. After the
promotion the generator makes the promoted version regress, and the stack's soak-check
function, fired by fakecloud's EventBridge schedule, must roll the alias back to version 1
and notify (`stage=post_promotion_soak`).

Faults, through tests/faults/proxy.py between a stack's phase function and fakecloud: the
healthy canary's phase process is killed right after its first two UpdateAlias calls landed
(it must be promoted all the same, with no write twice); the regressed canary's CloudWatch
throttles every GetMetricData for 10 minutes and its SNS never answers a Publish (it must
be held, then rolled back by its own steps).

Each canary has its own stack (template parameters TargetFunctionName/TargetAlias), as a
deployment per target would. A traffic generator invokes both aliases; fakecloud splits
traffic by the alias weights and reports the version that ran. fakecloud records no
per-version metrics, so the generator writes what AWS Lambda would: Invocations, Errors and
Duration under FunctionName + Resource (function:alias) + ExecutedVersion, one Duration
value per invocation (fakecloud computes percentiles only from single values).

The stacks are what `sam build` produced (.aws-sam/build, from infra/build-functions.sh),
deployed with the real `sam deploy` pointed at fakecloud, which accepts its upload and change
sets (substituted_build says what is checked and the one substitution: each function's host
build for its arm64 bootstrap, since the stand-in runs bootstraps on this host).

Called by run.sh, which builds the code, starts fakecloud and cleans up. Needs boto3 and
PyYAML.
"""

import argparse
import glob
import io
import json
import os
import platform
import shutil
import subprocess
import random
import sys
import threading
import time
import zipfile
from collections import Counter, defaultdict
from datetime import datetime, timezone

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"


def log(msg):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def clients(endpoint, region):
    cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, read_timeout=180,
                 connect_timeout=5)
    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="test",
              aws_secret_access_key="test", config=cfg)
    return {n: boto3.client(n, **kw) for n in (
        "s3", "cloudformation", "lambda", "stepfunctions", "cloudwatch", "sns", "sqs", "iam",
        "codedeploy")}


def zip_bytes(files):
    """A Lambda deployment zip: {name: (bytes, mode)}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


BINARIES = ("phase", "codedeploy-hook", "soak-check", "approver")
ELF_MACHINES = {62: "x86_64", 183: "arm64"}  # e_machine: EM_X86_64, EM_AARCH64


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (`!Ref X` -> {"Ref": X}, `!Sub` ->
    {"Fn::Sub": ...}, `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]})."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path):
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)


def elf_machine(path):
    """The architecture an ELF executable is built for (None if it is not one)."""
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    order = "little" if head[5] == 1 else "big"
    return ELF_MACHINES.get(int.from_bytes(head[18:20], order), f"e_machine {head[18:20].hex()}")


def substituted_build(repo, build, functions, out):
    """What `sam build` produced, copied to `out` with the one substitution tier 2 needs, and
    the path of the copy's template, for `sam deploy`.

    `build` is `sam build`'s output (.aws-sam/build): its template.yaml is infra/template.yaml
    with each function's CodeUri pointing at the function's build directory (holding the arm64
    `bootstrap` cargo-lambda built) and the state machine's DefinitionUri at the source
    definition. The stand-in container CLI runs every bootstrap as a process on this x86_64
    host, which cannot execute the arm64 build, so in the copy each build directory's
    `bootstrap` is the host build of the same binary (BuildProperties.Binary) from
    `functions`, and the DefinitionUri is the definition as fakecloud understands it
    (fakecloud_definition); nothing else changes. Before that it checks that the built
    template has the functions infra/template.yaml has, each a custom-runtime function
    (Handler `bootstrap`, Runtime provided.al2023) for arm64 whose build directory holds an
    arm64 `bootstrap`, and that each substitute is a host executable."""
    built_path = os.path.join(build, "template.yaml")
    if not os.path.isfile(built_path):
        sys.exit(f"{built_path} is missing: tier 2 deploys what `sam build` produced; run "
                 "infra/build-functions.sh (sam build) first")
    built = load_template(built_path)
    source = load_template(os.path.join(repo, "infra", "template.yaml"))

    def serverless_functions(t):
        return {k: r for k, r in t["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}

    fns, source_fns = serverless_functions(built), serverless_functions(source)
    if set(fns) != set(source_fns):
        sys.exit(f"{built_path}: functions {sorted(fns)}, but infra/template.yaml has "
                 f"{sorted(source_fns)}; run infra/build-functions.sh again")
    globals_fn = (built.get("Globals") or {}).get("Function") or {}
    host = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    os.makedirs(out)
    used = set()
    for name, r in sorted(fns.items()):
        props = r["Properties"]
        binary = (((source_fns[name].get("Metadata") or {}).get("BuildProperties") or {})
                  .get("Binary"))
        effective = {k: props.get(k, globals_fn.get(k)) for k in ("Handler", "Runtime", "Architectures")}
        if binary not in BINARIES:
            sys.exit(f"{name}: BuildProperties.Binary {binary!r}, expected one of {BINARIES}")
        if effective != {"Handler": "bootstrap", "Runtime": "provided.al2023", "Architectures": ["arm64"]}:
            sys.exit(f"{name}: built as {effective}; the substitute below is a custom-runtime "
                     "`bootstrap` (Handler bootstrap, Runtime provided.al2023) of an arm64 build")
        code_uri = props["CodeUri"]
        if os.path.isabs(code_uri) or os.sep in os.path.normpath(code_uri):
            sys.exit(f"{name}: CodeUri {code_uri!r} is not a directory of {build}")
        code_dir = os.path.join(build, code_uri)
        built_bootstrap = os.path.join(code_dir, "bootstrap")
        if not os.path.isfile(built_bootstrap):
            sys.exit(f"{name}: no {built_bootstrap}; run infra/build-functions.sh (sam build) first")
        arch = elf_machine(built_bootstrap)
        if arch != "arm64":
            sys.exit(f"{name}: {built_bootstrap} is built for {arch}, the template says arm64")
        substitute = os.path.join(functions, binary)
        sub_arch = elf_machine(substitute)
        if sub_arch != host:
            sys.exit(f"{name}: the host build {substitute} is built for {sub_arch}, not {host}")
        copy = os.path.join(out, code_uri)
        if not os.path.isdir(copy):  # the two hooks share one build directory
            shutil.copytree(code_dir, copy)
            shutil.copy2(substitute, os.path.join(copy, "bootstrap"))
        used.add(binary)
        log(f"{name}: {code_dir} ({binary}; arm64 bootstrap {os.path.getsize(built_bootstrap)} "
            f"bytes, deployed with the {host} build, {os.path.getsize(substitute)} bytes)")
    if used != set(BINARIES):
        sys.exit(f"template: expected functions built from {BINARIES}, found {sorted(used)}")

    machines = [r for r in built["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine"]
    if len(machines) != 1:
        sys.exit(f"{built_path}: expected one state machine, found {len(machines)}")
    definition = os.path.normpath(os.path.join(build, machines[0]["Properties"]["DefinitionUri"]))
    expected = os.path.join(repo, "infra", "statemachine", "canary.asl.json")
    if not os.path.samefile(definition, expected):
        sys.exit(f"{built_path}: DefinitionUri is {definition}, expected {expected}")
    with open(os.path.join(out, "canary.asl.json"), "wb") as f:
        f.write(fakecloud_definition(open(definition).read()))
    machines[0]["Properties"]["DefinitionUri"] = "canary.asl.json"
    # sam build writes the template with every intrinsic in its long form (`Ref:`,
    # `Fn::Sub:`), so it dumps back as the same template.
    template = os.path.join(out, "template.yaml")
    with open(template, "w") as f:
        yaml.safe_dump(built, f, sort_keys=False, width=1000)
    return template


def fakecloud_definition(text):
    """The state machine definition as fakecloud 0.51.0 understands it. The one change:
    fakecloud applies a Task's `"ResultPath": null` (JSON null: discard the result, the
    state's output is its input) as if it were absent (`$`: the result replaces the input),
    and discards the result only for the string "null". On AWS the `Promoted` state's
    output, and so the execution's output, is its input with the canary's `execution` state,
    which the soak-check function reads; under fakecloud it would be the phase function's
    `finish` answer instead. So JSON nulls become the string fakecloud understands."""
    definition = json.loads(text)
    changed = []

    def walk(states):
        for name, st in states.items():
            if "ResultPath" in st and st["ResultPath"] is None:
                st["ResultPath"] = "null"
                changed.append(name)
            for branch in st.get("Branches", []):
                walk(branch.get("States", {}))
            for key in ("Iterator", "ItemProcessor"):
                if key in st:
                    walk(st[key].get("States", {}))

    walk(definition["States"])
    log(f"state machine definition: `ResultPath: null` written as \"null\" for fakecloud in {changed}")
    return json.dumps(definition, indent=2).encode()


def sam_deploy(c, sam, endpoint, region, name, template, bucket, params):
    """`sam deploy` of the built template into fakecloud (AWS_ENDPOINT_URL): SAM zips each
    function's directory and uploads it and the definition to the bucket, creates and executes
    the change set and waits for the stack. Run outside the repository, so that its
    samconfig.toml (the README's deploy settings) does not apply."""
    log(f"sam deploy {name} ({', '.join(f'{k}={v}' for k, v in params.items() if k != 'HookCanaryConfig')})")
    # Every value quoted, with its double quotes escaped: how --parameter-overrides takes a
    # value with spaces, commas or quotes (the JSON config).
    overrides = [f'{k}="{str(v).replace(chr(34), chr(92) + chr(34))}"' for k, v in params.items()]
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION=region, AWS_DEFAULT_REGION=region,
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", SAM_CLI_TELEMETRY="0")
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(k, None)
    cmd = [sam, "deploy", "--template-file", template, "--stack-name", name,
           "--s3-bucket", bucket, "--s3-prefix", name, "--region", region,
           "--capabilities", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND",
           "--no-confirm-changeset", "--no-fail-on-empty-changeset", "--no-progressbar",
           "--parameter-overrides", *overrides]
    started = time.time()
    logfile = os.path.join(os.path.dirname(template), f"sam-deploy-{name}.log")
    with open(logfile, "w") as out:
        rc = subprocess.run(cmd, cwd=os.path.dirname(template), env=env, stdout=out,
                            stderr=subprocess.STDOUT, timeout=600).returncode
    lines = open(logfile, errors="replace").read().splitlines()
    stacks = []
    try:
        stacks = c["cloudformation"].describe_stacks(StackName=name)["Stacks"]
    except ClientError:
        pass
    status = stacks[0]["StackStatus"] if stacks else "missing"
    if rc != 0 or status != "CREATE_COMPLETE":
        for line in lines[-40:]:
            log(f"  sam: {line}")
        if stacks:
            for e in c["cloudformation"].describe_stack_events(StackName=name)["StackEvents"]:
                if "FAILED" in e.get("ResourceStatus", ""):
                    log(f"  {e['LogicalResourceId']}: {e.get('ResourceStatusReason')}")
        sys.exit(f"stack {name}: sam deploy exited {rc}, stack {status} (log: {logfile})")
    got = {p["ParameterKey"]: p["ParameterValue"] for p in stacks[0].get("Parameters", [])}
    wrong = [k for k, v in params.items() if got.get(k) != str(v)]
    if wrong:
        sys.exit(f"stack {name}: sam deploy passed other values for {wrong} than given")
    log(f"  stack {name} {status} in {time.time() - started:.0f} s")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def create_target(c, name, alias, role_arn, code, v1_env, v2_env):
    """The function canary-gate shifts: version 1 (baseline) and 2 (canary), alias on 1."""
    lam = c["lambda"]
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Handler="bootstrap",
                        Role=role_arn, Code={"ZipFile": code}, Timeout=10,
                        Environment={"Variables": v1_env})
    wait_updated(lam, name)
    v1 = lam.publish_version(FunctionName=name, Description="baseline")["Version"]
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": v2_env})
    wait_updated(lam, name)
    v2 = lam.publish_version(FunctionName=name, Description="canary")["Version"]
    lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=v1)
    log(f"target {name}: version {v1} {v1_env}, version {v2} {v2_env}, alias {alias} -> {v1}")
    return v1, v2


def wait_updated(lam, name):
    for _ in range(100):
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg.get("State", "Active") == "Active" and cfg.get("LastUpdateStatus", "Successful") != "InProgress":
            return
        time.sleep(0.2)


class Traffic:
    """Invokes each alias at a steady rate and writes the per-version metrics AWS would."""

    def __init__(self, c, targets, alias, rps, flush_seconds):
        self.c, self.targets, self.alias, self.rps = c, targets, alias, rps
        self.flush_seconds = flush_seconds
        self.records = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seen = defaultdict(Counter)  # function -> executed version -> count
        self.failures = Counter()
        self.threads = []
        # function -> (version, latency factor, error rate): what a regression of that version
        # would make Lambda record, written instead of what the bootstrap reported.
        self.regress = {}

    def start(self):
        for fn in self.targets:
            t = threading.Thread(target=self.invoke_loop, args=(fn,), daemon=True)
            t.start()
            self.threads.append(t)
        t = threading.Thread(target=self.flush_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def invoke_loop(self, fn):
        lam = self.c["lambda"]
        interval = 1.0 / self.rps
        next_at = time.time()
        while not self.stop.is_set():
            now = time.time()
            try:
                r = lam.invoke(FunctionName=fn, Qualifier=self.alias, Payload=b'{"path":"/orders"}')
                body = json.loads(r["Payload"].read() or b"{}")
                error = "FunctionError" in r
                if error:
                    body = json.loads(body.get("errorMessage", "{}"))
                version = r.get("ExecutedVersion", "?")
                ms = float(body.get("simulated_ms", 0))
                with self.lock:
                    bad = self.regress.get(fn)
                    if bad and bad[0] == version:
                        ms *= bad[1]
                        error = random.random() < bad[2]
                    self.records.append((fn, version, now, error, ms))
                    self.seen[fn][version] += 1
            except Exception as e:  # noqa: BLE001 - counted and reported, traffic goes on
                with self.lock:
                    self.failures[f"{fn}: {type(e).__name__}: {e}"[:200]] += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.time()))
            if time.time() - next_at > 5:  # fell far behind: do not burst to catch up
                next_at = time.time()

    def flush_loop(self):
        while not self.stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

    def flush(self):
        with self.lock:
            records, self.records = self.records, []
        if not records:
            return
        data = []
        per_second = defaultdict(lambda: [0, 0])
        for fn, version, ts, error, ms in records:
            dims = self.dims(fn, version)
            data.append({"MetricName": "Duration", "Dimensions": dims, "Value": ms,
                         "Unit": "Milliseconds", "Timestamp": self.at(ts)})
            cell = per_second[(fn, version, int(ts))]
            cell[0] += 1
            cell[1] += int(error)
        for (fn, version, sec), (n, k) in per_second.items():
            dims = self.dims(fn, version)
            data.append({"MetricName": "Invocations", "Dimensions": dims, "Value": n,
                         "Unit": "Count", "Timestamp": self.at(sec)})
            data.append({"MetricName": "Errors", "Dimensions": dims, "Value": k,
                         "Unit": "Count", "Timestamp": self.at(sec)})
        cw = self.c["cloudwatch"]
        for i in range(0, len(data), 500):
            try:
                cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data[i:i + 500])
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.failures[f"PutMetricData: {e}"[:200]] += 1

    def dims(self, fn, version):
        return [{"Name": "FunctionName", "Value": fn},
                {"Name": "Resource", "Value": f"{fn}:{self.alias}"},
                {"Name": "ExecutedVersion", "Value": version}]

    @staticmethod
    def at(ts):
        return datetime.fromtimestamp(ts, tz=timezone.utc)

    def shutdown(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def canary_config(repo, fn, alias, v1, v2, a):
    config = json.load(open(os.path.join(repo, "examples", "demo-config.json")))
    config["target"] = {"function_name": fn, "alias": alias, "baseline_version": v1,
                        "canary_version": v2}
    config["timeout_seconds"] = a.canary_timeout
    config["canary_phases"] = [
        {"traffic_percentage": a.first_weight, "duration_seconds": a.phase_seconds,
         "min_samples": a.min_samples, "purpose": "first exposure"},
        {"traffic_percentage": 100, "duration_seconds": a.phase_seconds,
         "min_samples": a.min_samples, "purpose": "full validation"},
    ]
    config["analysis"] = {"look_interval_seconds": a.look_seconds}
    # At least one look interval (the config's rule); the soak's looks are judged once they
    # settled (soak::SETTLE_SECONDS, 180 s after their end).
    config["post_promotion_soak_seconds"] = max(a.soak_seconds, a.look_seconds)
    return config


def codedeploy_deployment(c, fn, alias, role_arn, v1, v2):
    """The CodeDeploy deployment whose BeforeAllowTraffic hook would have started the canary.
    fakecloud neither invokes hooks nor records their status; it checks that the deployment
    exists, so the phase function's report at the end of the canary must name a real one."""
    cd = c["codedeploy"]
    app = f"{fn}-app"
    cd.create_application(applicationName=app, computePlatform="Lambda")
    cd.create_deployment_group(
        applicationName=app, deploymentGroupName=f"{fn}-dg", serviceRoleArn=role_arn,
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"})
    appspec = {"version": 0.0, "Resources": [{"target": {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": fn, "Alias": alias, "CurrentVersion": v1, "TargetVersion": v2}}}]}
    d = cd.create_deployment(applicationName=app, deploymentGroupName=f"{fn}-dg", revision={
        "revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}})
    return {"deploymentId": d["deploymentId"],
            "lifecycleEventHookExecutionId": f"{fn}-before-allow-traffic-{int(time.time())}"}


def invoke_json(c, name, payload):
    """Invokes a function synchronously: (function error or None, decoded payload)."""
    r = c["lambda"].invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    body = r["Payload"].read()
    try:
        out = json.loads(body or b"null")
    except ValueError:
        out = body.decode(errors="replace")
    return r.get("FunctionError"), out


def forged_proof(endpoint, region, command_text, key_id):
    """A proof as the CLI makes it (a signed GetCallerIdentity carrying the command's hash),
    but signed with a secret that is not the key's: what someone who knows only a key id
    could hand the approver."""
    import hashlib
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
        "content-type": "application/x-www-form-urlencoded",
        "x-canary-gate-command": hashlib.sha256(command_text.encode()).hexdigest()})
    SigV4Auth(Credentials(key_id, "not-the-secret"), "sts", region).add_auth(req)
    headers = [[k.lower(), v] for k, v in req.headers.items()]
    headers.append(["host", endpoint.split("://", 1)[1]])
    return {"command": command_text, "proof": {"headers": headers, "body": body}}


def approver_scenario(c, a, k, cli, log):
    """Operators act through the stack's approver function with the `canary-gate` CLI, as IAM
    users of the emulator (which checks every signature, `FAKECLOUD_VERIFY_SIGV4`): alice
    starts a canary that asks for four eyes, may not promote it herself, cannot pass a forged
    proof, and bob aborts it. Returns [(ok, what)]."""
    results = []
    fn_arn = k["outputs"]["ApproverFunctionArn"]
    keys = {}
    for user in ("alice", "bob"):
        c["iam"].create_user(UserName=user)
        key = c["iam"].create_access_key(UserName=user)["AccessKey"]
        keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])

    def run(user, *args):
        env = dict(os.environ, AWS_ENDPOINT_URL=a.endpoint, AWS_REGION=a.region,
                   AWS_ACCESS_KEY_ID=keys[user][0], AWS_SECRET_ACCESS_KEY=keys[user][1],
                   CANARY_GATE_APPROVER_FUNCTION=fn_arn,
                   CANARY_GATE_STATE_MACHINE_ARN=k["outputs"]["StateMachineArn"])
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        p = subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=120)
        log(f"approver: {user}$ canary-gate {' '.join(args[:2])} ... -> exit {p.returncode}: "
            f"{(p.stdout or p.stderr).strip()[:400]}")
        return p

    config = canary_config(a.repo, k["fn"], a.alias, k["v1"], k["v2"], a)
    config["approvals"] = {"forbid_self_approval": True}
    path = os.path.join(a.artifacts or a.functions, "approver-config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    p = run("alice", "start", "--config", path, "--actor", "Alice A.", "--json")
    out = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip().startswith("{") else {}
    execution = out.get("execution")
    results.append((bool(execution) and out.get("verified_identity", "").endswith(":user/alice"),
                    f"approver: alice started a canary through the approver as {out.get('verified_identity')}"))
    if not execution:
        return results
    d = c["stepfunctions"].describe_execution(executionArn=execution)
    started_by = json.loads(d["input"]).get("started_by") or {}
    results.append((started_by.get("verified_identity", "").endswith(":user/alice")
                    and started_by.get("claimed_actor") == "Alice A.",
                    f"approver: the execution input records the verified starter {started_by}"))
    deadline = time.time() + 120
    weights = {}
    while time.time() < deadline:
        alias = c["lambda"].get_alias(FunctionName=k["fn"], Name=a.alias)
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if weights:
            break
        time.sleep(2)
    results.append((bool(weights), f"approver: the canary's start shifted traffic {weights}"))

    p = run("alice", "promote", execution, "--reason", "my own canary")
    alias = c["lambda"].get_alias(FunctionName=k["fn"], Name=a.alias)
    results.append((p.returncode != 0 and "another identity must promote" in p.stderr
                    and ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}) == weights,
                    "approver: alice may not promote the canary she started (four eyes); the alias is untouched"))

    command = json.dumps({"command": "abort", "execution": execution, "reason": "forged"})
    err, out = invoke_json(c, fn_arn, forged_proof(a.endpoint, a.region, command, keys["bob"][0]))
    results.append((err is not None and isinstance(out, dict) and out.get("errorType") == "Unverified"
                    and "SignatureDoesNotMatch" in out.get("errorMessage", ""),
                    f"approver: a proof with bob's key id and a wrong secret is refused by STS ({out})"))
    status = c["stepfunctions"].describe_execution(executionArn=execution)["status"]
    results.append((status == "RUNNING", f"approver: after the refusals the canary still runs ({status})"))

    p = run("bob", "abort", execution, "--reason", "tier 2", "--actor", "Bob B.", "--json")
    out = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip().startswith("{") else {}
    d = c["stepfunctions"].describe_execution(executionArn=execution)
    alias = c["lambda"].get_alias(FunctionName=k["fn"], Name=a.alias)
    results.append((d["status"] == "ABORTED" and ":user/bob (verified; claims to be Bob B.)" in (d.get("cause") or "")
                    and alias["FunctionVersion"] == k["v1"]
                    and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"),
                    f"approver: bob aborted it; execution {d['status']} with cause {d.get('cause')!r}, "
                    f"alias on version {alias['FunctionVersion']} with no split"))
    return results


def function_logs(name_part, needle):
    """Lines of the stand-in's function logs (FAKE_CONTAINER_STATE) containing `needle`, from
    the containers whose config mentions `name_part`."""
    root = os.environ.get("FAKE_CONTAINER_STATE")
    if not root:
        return []
    lines = []
    for cfg in glob.glob(os.path.join(root, "*", "config.json")):
        d = os.path.dirname(cfg)
        try:
            if name_part not in open(cfg).read():
                continue
            lines += [l for l in open(os.path.join(d, "bootstrap.log"), errors="replace") if needle in l]
        except OSError:
            continue
    return lines


def sqs_subscription(c, topic_arn, name):
    url = c["sqs"].create_queue(QueueName=name)["QueueUrl"]
    arn = c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    c["sns"].subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def notification_id(envelope):
    return envelope.get("MessageAttributes", {}).get("notification_id", {}).get("Value")


def drain(c, url):
    """The messages on a subscriber's queue as a subscriber sees them: SNS delivers at least
    once (and a publish whose answer was late is sent again), so a second delivery of one
    `notification_id` is dropped and counted. Returns (messages, duplicates, without id)."""
    out, seen, duplicates, without_id = [], set(), 0, 0
    while True:
        msgs = c["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        MessageAttributeNames=["All"]).get("Messages", [])
        if not msgs:
            return out, duplicates, without_id
        for m in msgs:
            envelope = json.loads(m["Body"])
            nid = notification_id(envelope)
            if nid is None:
                without_id += 1
            elif nid in seen:
                duplicates += 1
                c["sqs"].delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                continue
            else:
                seen.add(nid)
            out.append(envelope)
            c["sqs"].delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def history_summary(c, arn):
    """The states an execution went through, with the phase function's summaries, and the
    last execution state the phase function returned."""
    lines, token, last = [], None, None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        h = c["stepfunctions"].get_execution_history(**kw)
        for e in h["events"]:
            if e["type"] == "TaskStateEntered" or e["type"].endswith("StateEntered"):
                lines.append(e["stateEnteredEventDetails"]["name"])
            if e["type"] == "TaskSucceeded":
                try:
                    payload = json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]
                    if payload.get("execution"):
                        last = payload["execution"]
                    if payload.get("summary"):
                        lines[-1] += f" ({payload.get('action')}: {payload['summary']})"
                except (KeyError, ValueError, TypeError, AttributeError):
                    pass
            if e["type"] == "TaskFailed":
                d = e["taskFailedEventDetails"]
                lines[-1] += f" [failed: {d.get('error')}: {d.get('cause', '')[:200]}]"
        token = h.get("nextToken")
        if not token:
            return lines, last


def dump_history(c, arn, path):
    events, token = [], None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        h = c["stepfunctions"].get_execution_history(**kw)
        events += h["events"]
        token = h.get("nextToken")
        if not token:
            break
    with open(path, "w") as f:
        json.dump(events, f, indent=1, default=str)


def null_paths(value, path="$"):
    """Where a JSON document holds null: serde_json writes a non-finite f64 as null, which the
    next step then cannot read back."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in null_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in null_paths(v, f"{path}[{i}]")]
    return []


def evidence(execution):
    """Per metric, the sequential e-processes' state: looks and the largest log e-value."""
    seq = ((execution or {}).get("run") or {}).get("sequential") or {}
    return {"looks": seq.get("looks"),
            "max_log_e": {k: round(v.get("max_log_e", 0.0), 3)
                          for k, v in (seq.get("metrics") or {}).items()}}


class FaultProxy:
    """`tests/faults/proxy.py` between one stack's phase function and fakecloud, with `rules`
    (e.g. kill the function's process, SIGKILL through /proc, right after chosen `UpdateAlias`
    calls reached fakecloud: a phase function that dies after its write landed)."""

    def __init__(self, repo, upstream, rules):
        import signal
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

        def die_with_parent():
            try:
                import ctypes
                ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
            except Exception:
                pass

        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(repo, "tests", "faults", "proxy.py"), "--port", str(self.port),
             "--upstream", upstream, "--rules", json.dumps(rules)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.proc.stdout.readline()  # "fault proxy on ...": listening

    def calls(self):
        import urllib.request
        with urllib.request.urlopen(self.url + "/__faults/calls", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


DEATHS = ("Runtime.ExitError", "Lambda.Unknown", "Sandbox.Timedout")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--repo", required=True)
    p.add_argument("--functions", required=True,
                   help="directory with host builds of " + ", ".join(BINARIES))
    p.add_argument("--build", help="`sam build` output to deploy (default: REPO/.aws-sam/build)")
    p.add_argument("--sam", default="sam", help="the SAM CLI (infra/tools.sh installs the pinned one)")
    p.add_argument("--alias", default="live")
    p.add_argument("--rps", type=float, default=8.0, help="invocations per second per target")
    p.add_argument("--first-weight", type=float, default=20.0)
    p.add_argument("--phase-seconds", type=int, default=150)
    p.add_argument("--min-samples", type=int, default=40)
    p.add_argument("--look-seconds", type=int, default=60,
                   help="analysis.look_interval_seconds (60 is the product's default)")
    p.add_argument("--canary-timeout", type=int, default=900)
    p.add_argument("--deadline", type=int, default=1200,
                   help="seconds to wait for both canaries and the soak")
    p.add_argument("--cases", default="healthy,regressed", help="which canaries to run")
    p.add_argument("--hook-case", default="healthy",
                   help="the canary started through the BeforeAllowTraffic function ('' for none)")
    p.add_argument("--soak-seconds", type=int, default=60,
                   help="post_promotion_soak_seconds of the hook case (at least --look-seconds; 0: no soak test)")
    p.add_argument("--soak-minutes", type=int, default=2,
                   help="template SoakCheckMinutes (its minimum is 2; `rate(1 minutes)` is not a valid schedule)")
    p.add_argument("--soak-latency-factor", type=float, default=1.75)
    p.add_argument("--soak-error-rate", type=float, default=0.15)
    p.add_argument("--soak-slack", type=int, default=60,
                   help="seconds to wait for the scheduled rollback beyond the expected time")
    p.add_argument("--artifacts", help="directory for the executions' histories")
    p.add_argument("--endpoints-file",
                   help="the file fake-container-cli.py reads ($FAKE_CONTAINER_ENDPOINTS) to send a "
                        "function's AWS calls elsewhere; needed for --kill-after-writes")
    p.add_argument("--kill-after-writes", default="1,2",
                   help="the hook case's phase function is killed right after these UpdateAlias calls "
                        "(1: the start's, 2: the first advance; '' for none)")
    p.add_argument("--cli", help="the canary-gate CLI binary, for the approver scenario on the "
                                  "regressed stack (none: skipped)")
    p.add_argument("--regressed-outage-seconds", type=int, default=600,
                   help="the regressed case's phase function: every GetMetricData throttled for this "
                        "long from its first call, and every SNS Publish delivered without an answer "
                        "(0: no faults)")
    a = p.parse_args()

    c = clients(a.endpoint, a.region)
    t0 = time.time()
    bucket = "canary-gate-tier2-artifacts"
    c["s3"].create_bucket(Bucket=bucket)
    template = substituted_build(a.repo, a.build or os.path.join(a.repo, ".aws-sam", "build"),
                                 a.functions, os.path.join(a.artifacts or a.functions, "sam-build"))

    role = c["iam"].create_role(RoleName="orders-api-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    target_code = zip_bytes({"bootstrap": (open(os.path.join(a.repo, "tests", "tier2", "target", "bootstrap"), "rb").read(), 0o755)})
    baseline = {"SIM_LATENCY_MS": "40", "SIM_ERROR_RATE": "0.01"}
    scenarios = {
        "healthy": dict(baseline),
        "regressed": {"SIM_LATENCY_MS": "70", "SIM_ERROR_RATE": "0.15"},
    }
    scenarios = {k: v for k, v in scenarios.items() if k in a.cases.split(",")}
    hook_case = a.hook_case if a.hook_case in scenarios else None
    cases = {}
    for case, v2_env in scenarios.items():
        fn = f"orders-{case}"
        # Each stack names its hook functions after its own prefix (they are named resources).
        params = {"TargetFunctionName": fn, "TargetAlias": a.alias,
                  "HookFunctionPrefix": f"CodeDeployHook_{case}", "SoakCheckMinutes": a.soak_minutes}
        if case == hook_case:
            # The hooks' config has no target: BeforeAllowTraffic takes it from the AppSpec.
            hook_config = canary_config(a.repo, fn, a.alias, None, None, a)
            del hook_config["target"]
            params["HookCanaryConfig"] = json.dumps(hook_config, separators=(",", ":"))
        outputs = sam_deploy(c, a.sam, a.endpoint, a.region, f"canary-gate-{case}", template, bucket, params)
        v1, v2 = create_target(c, fn, a.alias, role, target_code, baseline, v2_env)
        queue = sqs_subscription(c, outputs["NotificationTopicArn"], f"canary-gate-{case}-notifications")
        hook = codedeploy_deployment(c, fn, a.alias, role, v1, v2)
        cases[case] = dict(fn=fn, outputs=outputs, v1=v1, v2=v2, queue=queue, hook=hook)
    killer, outage, routes = None, None, {}
    kills = [int(n) for n in a.kill_after_writes.split(",") if n.strip()]
    if hook_case and kills and a.endpoints_file:
        killer = FaultProxy(a.repo, a.endpoint, [{"op": "UpdateAlias", "fault": "kill", "calls": kills}])
        phase = cases[hook_case]["outputs"]["PhaseFunctionArn"].split(":")[6]
        routes[phase] = killer.url
        log(f"{hook_case}: {phase} calls AWS through the fault proxy {killer.url}, which kills it "
            f"right after UpdateAlias calls {kills}")
    if "regressed" in cases and a.regressed_outage_seconds > 0 and a.endpoints_file:
        outage = FaultProxy(a.repo, a.endpoint, [
            {"op": "GetMetricData", "fault": "throttle", "for_seconds": a.regressed_outage_seconds},
            {"op": "Publish", "fault": "hang", "after": True, "seconds": 60, "rate": 1.0},
        ])
        phase = cases["regressed"]["outputs"]["PhaseFunctionArn"].split(":")[6]
        routes[phase] = outage.url
        log(f"regressed: {phase} calls AWS through the fault proxy {outage.url}: CloudWatch throttles "
            f"every GetMetricData for {a.regressed_outage_seconds} s, SNS delivers every Publish and never answers")
    if routes:
        with open(a.endpoints_file, "w") as f:
            json.dump(routes, f)
    log(f"set-up took {time.time() - t0:.0f} s")

    traffic = Traffic(c, [cases[k]["fn"] for k in cases], a.alias, a.rps, flush_seconds=2)
    traffic.start()
    time.sleep(3)
    for case, k in cases.items():
        if case == hook_case:
            # What CodeDeploy sends BeforeAllowTraffic (fakecloud does not invoke hooks).
            event = {"DeploymentId": k["hook"]["deploymentId"],
                     "LifecycleEventHookExecutionId": k["hook"]["lifecycleEventHookExecutionId"]}
            err, out = invoke_json(c, k["outputs"]["PreTrafficHook"], event)
            log(f"{case}: BeforeAllowTraffic {k['outputs']['PreTrafficHook']} answered "
                f"{'error ' + str(err) + ': ' if err else ''}{out}")
            k["before"] = (err, out)
            if err or not isinstance(out, dict) or not out.get("execution"):
                k["execution"] = None
                continue
            k["execution"] = out["execution"]
        else:
            config = canary_config(a.repo, k["fn"], a.alias, k["v1"], k["v2"], a)
            r = c["stepfunctions"].start_execution(
                stateMachineArn=k["outputs"]["StateMachineArn"], name=f"{k['fn']}-{k['v2']}-{int(time.time())}",
                input=json.dumps({"config": config, "hook": k["hook"]}))
            k["execution"] = r["executionArn"]
        log(f"{case}: started {k['execution']}")

    t1 = time.time()
    pending = {case for case, k in cases.items() if k["execution"]}
    last_status = {}
    soaking = None  # the hook case after its promotion, until the soak rolls it back
    while (pending or soaking) and time.time() - t1 < a.deadline:
        for case in sorted(pending | ({soaking} if soaking else set())):
            k = cases[case]
            d = c["stepfunctions"].describe_execution(executionArn=k["execution"])
            alias = c["lambda"].get_alias(FunctionName=k["fn"], Name=a.alias)
            weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            status = (d["status"], alias["FunctionVersion"], json.dumps(weights, sort_keys=True))
            if status != last_status.get(case):
                log(f"{case}: execution {d['status']}, alias -> {alias['FunctionVersion']} + {weights}, "
                    f"executed so far {dict(traffic.seen[k['fn']])}")
                last_status[case] = status
            if case in pending and d["status"] != "RUNNING":
                k["describe"] = d
                k["finished_after"] = time.time() - t1
                k["alias_at_end"] = alias
                pending.discard(case)
                if case == hook_case and d["status"] == "SUCCEEDED":
                    if a.soak_seconds > 0:
                        # The promoted version now regresses: slower and failing more often.
                        with traffic.lock:
                            traffic.regress[k["fn"]] = (k["v2"], a.soak_latency_factor, a.soak_error_rate)
                        k["soak_from"] = time.time()
                        # The first look settles SETTLE_SECONDS after its end; then the next
                        # scheduled run rolls back.
                        soak = max(a.soak_seconds, a.look_seconds)
                        k["soak_deadline"] = time.time() + soak + 180 + 60 * a.soak_minutes + a.soak_slack
                        soaking = case
                        log(f"{case}: version {k['v2']} now regresses (latency x{a.soak_latency_factor}, "
                            f"errors {a.soak_error_rate:.0%}); waiting up to "
                            f"{k['soak_deadline'] - time.time():.0f} s for the scheduled soak check")
                    after_event = {"DeploymentId": k["hook"]["deploymentId"],
                                   "LifecycleEventHookExecutionId": f"{k['fn']}-after-allow-traffic-{int(time.time())}"}
                    k["after"] = invoke_json(c, k["outputs"]["PostTrafficHook"], after_event)
                    log(f"{case}: AfterAllowTraffic answered {k['after']}")
            if case == soaking:
                if alias["FunctionVersion"] == k["v1"]:
                    k["soak_rolled_back_after"] = time.time() - k["soak_from"]
                    soaking = None
                elif time.time() > k["soak_deadline"]:
                    if k.get("soak_invoked"):
                        soaking = None
                    else:
                        # The schedule did not roll back in time: run the check directly.
                        event = json.load(open(os.path.join(a.repo, "events", "soak-check", "schedule.json")))
                        k["soak_invoked"] = invoke_json(c, k["outputs"]["SoakCheckFunctionArn"], event)
                        log(f"{case}: no scheduled rollback within the wait; invoked soak-check directly: "
                            f"{k['soak_invoked']}")
                        k["soak_deadline"] = time.time() + 30
        time.sleep(2)
    traffic.shutdown()

    failures = []

    def check(cond, what):
        log(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    for case, k in cases.items():
        if not k["execution"]:
            failures.append(f"{case}: no execution was started")
            continue
        if a.artifacts:
            dump_history(c, k["execution"], os.path.join(a.artifacts, f"history-{case}.json"))
        log(f"--- {case}: state machine path")
        k["lines"], k["last_state"] = history_summary(c, k["execution"])
        lines = k["lines"]
        for line in lines:
            log(f"    {line}")
        log(f"    sequential evidence at the end: {evidence(k['last_state'])}")
        if k.get("describe", {}).get("error") == "CanaryFailed":
            log(f"    nulls in the last state the phase function returned: {null_paths(k['last_state'])}")
    if traffic.failures:
        log(f"traffic errors: {dict(traffic.failures)}")
    if pending:
        failures.append(f"still running after {a.deadline} s: {sorted(pending)}")
    if soaking:
        failures.append(f"{soaking}: still soaking after {a.deadline} s")

    h = cases.get("healthy")
    if h and h.get("before"):
        err, out = h["before"]
        out = out if isinstance(out, dict) else {}
        check(not err and out.get("hook") == "BeforeAllowTraffic" and out.get("execution")
              and out.get("reported") is None,
              f"BeforeAllowTraffic started a canary execution and left the report to it ({err or out.get('summary')})")
        check((out.get("function"), out.get("alias"), out.get("baselineVersion"), out.get("canaryVersion"))
              == (h["fn"], a.alias, h["v1"], h["v2"]),
              "BeforeAllowTraffic read function, alias and versions from the deployment's AppSpec")
        if h.get("execution"):
            d = c["stepfunctions"].describe_execution(executionArn=h["execution"])
            started = json.loads(d["input"])
            check(started.get("hook") == h["hook"],
                  f"the execution's input carries the hook {started.get('hook')}")
            check(d["stateMachineArn"] == h["outputs"]["StateMachineArn"]
                  and (started.get("config") or {}).get("target", {}).get("canary_version") == h["v2"],
                  "the execution runs on the stack's state machine with the AppSpec's target")
    if h and h.get("after"):
        err, out = h["after"]
        out = out if isinstance(out, dict) else {}
        check(not err and out.get("reported") is True and out.get("execution") == h["execution"],
              f"AfterAllowTraffic reported Succeeded for the promoted canary ({err or out.get('summary')})")
    if h:
        if "describe" in h:
            check(h["describe"]["status"] == "SUCCEEDED",
                  f"healthy canary: execution SUCCEEDED (is {h['describe']['status']}, {h['finished_after']:.0f} s)")
        alias = h.get("alias_at_end") or c["lambda"].get_alias(FunctionName=h["fn"], Name=a.alias)
        check(alias["FunctionVersion"] == h["v2"] and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"),
              f"healthy canary: alias {a.alias} on version {h['v2']} with no split when the execution ended "
              f"(was {alias['FunctionVersion']} {alias.get('RoutingConfig')})")
        check(traffic.seen[h["fn"]][h["v2"]] > 0 and traffic.seen[h["fn"]][h["v1"]] > 0,
              f"healthy canary: traffic reached both versions {dict(traffic.seen[h['fn']])}")
        # `finish` reports to CodeDeploy when a hook started the canary and fails the step if the
        # report fails, which would end the execution in `Failed` instead.
        check(any(line.startswith("Promoted (promote:") for line in h.get("lines", [])),
              f"healthy canary: the finish step reported Succeeded to CodeDeploy deployment {h['hook']['deploymentId']}")
        if killer:
            seen = killer.calls()
            killed = seen.get("killed", [])
            check(len(killed) == len(kills) and all(k.get("pid") for k in killed),
                  f"healthy canary: the phase function's process was killed after UpdateAlias calls {kills} "
                  f"(kills: {killed})")
            died = [line for line in h.get("lines", []) if any(f"[failed: {d}" in line for d in DEATHS)]
            check(len(died) == len(kills) and died[0].startswith("Initialise")
                  and all(line.startswith(("Initialise", "Analyse")) for line in died),
                  f"healthy canary: each death was retried in its own state ({[line.split(' [')[0] for line in died]})")
            # start, advance, promotion: each written once, though two of them died after writing.
            check(seen.get("UpdateAlias") == 3,
                  f"healthy canary: 3 alias writes through the proxy, none repeated (saw {seen.get('UpdateAlias')})")
            killer.stop()
        msgs, duplicates, without_id = drain(c, h["queue"])
        check(without_id == 0, f"healthy canary: every notification carries a notification_id ({without_id} without)")
        if duplicates:
            log(f"    {duplicates} second delivery(ies) of one notification_id dropped, as a subscriber would")
        events = [m.get("MessageAttributes", {}).get("event", {}).get("Value") for m in msgs]
        check("promoted" in events, f"healthy canary: `promoted` notification received (events: {events})")
        if h.get("soak_from"):
            alias = c["lambda"].get_alias(FunctionName=h["fn"], Name=a.alias)
            after = h.get("soak_rolled_back_after")
            check(alias["FunctionVersion"] == h["v1"] and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"),
                  f"soak: the regressed promoted version was rolled back, alias {a.alias} on version {h['v1']} "
                  f"(is {alias['FunctionVersion']} {alias.get('RoutingConfig')}"
                  f"{f', {after:.0f} s after the regression began' if after is not None else ''})")
            check(not h.get("soak_invoked"),
                  "soak: the rollback came from the EventBridge schedule (no direct invocation needed)")
            scheduled = [l for l in function_logs(h["outputs"]["SoakCheckFunctionArn"].split(":")[-1], '"rolled_back"')
                         if "Scheduled Event" in l]
            if os.environ.get("FAKE_CONTAINER_STATE"):
                check(bool(scheduled), "soak: the soak-check log shows a `Scheduled Event` run with status rolled_back")
            if scheduled:
                log(f"    {json.loads(scheduled[0])['fields'].get('message')}")
            soak_msgs = [m for m in msgs if m.get("MessageAttributes", {}).get("stage", {}).get("Value") == "post_promotion_soak"]
            attrs = [{k2: v["Value"] for k2, v in m.get("MessageAttributes", {}).items()} for m in soak_msgs]
            check(len(soak_msgs) == 1 and attrs[0].get("event") == "rollback"
                  and attrs[0].get("function") == h["fn"] and attrs[0].get("alias") == a.alias,
                  f"soak: one rollback notification with stage=post_promotion_soak (attributes {attrs})")
            if soak_msgs:
                log(f"    subject: {soak_msgs[0].get('Subject')}")
                check(soak_msgs[0].get("Subject", "").startswith(
                    f"canary-gate: {h['fn']} v{h['v2']} rolled back to v{h['v1']} during post-promotion soak"),
                      "soak: the subject names function, versions and the soak")

    r = cases.get("regressed")
    if r:
        if "describe" in r:
            d = r["describe"]
            check(d["status"] == "FAILED" and d.get("error") == "CanaryRolledBack",
                  f"regressed canary: execution FAILED with CanaryRolledBack (is {d['status']} {d.get('error')}, {r['finished_after']:.0f} s)")
        alias = c["lambda"].get_alias(FunctionName=r["fn"], Name=a.alias)
        check(alias["FunctionVersion"] == r["v1"] and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"),
              f"regressed canary: alias {a.alias} restored to version {r['v1']} with no split (is {alias['FunctionVersion']} {alias.get('RoutingConfig')})")
        check(traffic.seen[r["fn"]][r["v2"]] > 0,
              f"regressed canary: the canary version took traffic {dict(traffic.seen[r['fn']])}")
        check(any(line.startswith("RolledBack (rollback:") for line in r.get("lines", [])),
              f"regressed canary: the finish step reported Failed to CodeDeploy deployment {r['hook']['deploymentId']}")
        if outage:
            lines = r.get("lines", [])
            throttled = [line for line in lines if line.startswith("Analyse") and "[failed: Transient" in line]
            held = [line for line in lines if line.startswith("HoldOnError")]
            log(f"    outage: {len(throttled)} look(s) failed Transient, {len(held)} HoldOnError; "
                f"proxy calls {outage.calls()}; delivery failures in the last state: "
                f"{len((r.get('last_state') or {}).get('delivery_failures') or [])}")
            check(throttled and held and not any("LastResort" in line for line in lines),
                  f"regressed canary: during the {a.regressed_outage_seconds} s CloudWatch outage the looks failed "
                  f"and were held ({len(held)} HoldOnError), then the canary was judged and rolled back by its own steps")
        msgs, duplicates, without_id = drain(c, r["queue"])
        check(without_id == 0, f"regressed canary: every notification carries a notification_id ({without_id} without)")
        if duplicates:
            log(f"    {duplicates} second delivery(ies) of one notification_id dropped, as a subscriber would")
        rollback = [m for m in msgs if m.get("MessageAttributes", {}).get("event", {}).get("Value") == "rollback"]
        check(len(rollback) == 1, f"regressed canary: one `rollback` notification (events: "
              f"{[m.get('MessageAttributes', {}).get('event', {}).get('Value') for m in msgs]})")
        if rollback:
            m = rollback[0]
            attrs = {k2: v["Value"] for k2, v in m.get("MessageAttributes", {}).items()}
            log(f"    subject: {m.get('Subject')}")
            log(f"    attributes: {attrs}")
            subject = m.get("Subject", "")
            check(subject.startswith(f"canary-gate: {r['fn']} v{r['v2']} rolled back at "),
                  "regressed canary: rollback subject names function, version and action")
            nid = attrs.pop("notification_id", "")
            check(attrs == {"event": "rollback", "severity": "critical", "function": r["fn"], "alias": a.alias}
                  and len(nid) == 16 and all(ch in "0123456789abcdef" for ch in nid),
                  "regressed canary: rollback attributes event/severity/function/alias, and a 16-hex-digit notification_id")
            body = m.get("Message", "")
            check(body.startswith("Canary phase") and "VERDICT:" in body,
                  "regressed canary: the message body is the text report")
            # Errors x15 and latency +75 % at 20 % traffic: the canary must not reach 100 %.
            early = f"rolled back at {a.first_weight:g}%" in subject
            check(early, f"regressed canary: rolled back at {a.first_weight:g}%, before full traffic")
            ev = evidence(r.get("last_state"))
            if not early and not any(ev["max_log_e"].values()):
                log(f"    the sequential e-processes never moved ({ev}): each look feeds them the data "
                    "since the previous look, [previous look, now], which the CloudWatch adapter cuts "
                    "to end 120 s before now (ingestion delay); with look_interval_seconds <= 120 "
                    "that window is always empty, and longer intervals lose 120 s of every one")
            if not m.get("Subject", "").isascii():
                log("note: the subject is not ASCII; AWS SNS documents Subject as ASCII text "
                    "(fakecloud accepts it)")

    if r and a.cli and "describe" in r:
        t2 = time.time()
        for ok, what in approver_scenario(c, a, r, a.cli, log):
            check(ok, what)
        log(f"approver scenario took {time.time() - t2:.0f} s")
    if outage:
        # Only now: the regressed stack's phase function reaches AWS through it, also for the
        # approver scenario's canary.
        outage.stop()

    log(f"canaries took {time.time() - t1:.0f} s, whole test {time.time() - t0:.0f} s")
    if failures:
        log(f"{len(failures)} check(s) failed")
        for f in failures:
            log(f"  - {f}")
        return 1
    log("tier 2 passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
