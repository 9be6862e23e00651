"""The canary state machine executed by moto, one execution per recorded path.

`tests/statemachine/paths/*.json` hold, per path, what the `phase` function answers to each
event the machine sends (recorded from the real handler over the simulated fleet by
`cargo test -p phase --test statemachine_paths`). Each test here starts a moto server on 127.0.0.1,
queues those answers as the Lambda function's responses in order, creates the state machine
from `infra/statemachine/canary.asl.json`, runs one execution and checks:

- the states entered, in order, and how the execution ended (`CanaryPromoted` succeeds,
  `CanaryRolledBack` and `CanaryFailed` fail with that error);
- that every queued answer was asked for by the state the recording expects, with the event
  the recording was made with (op and fields), and with the execution state the previous
  answer carried — so what the function returns is what the machine passes on;
- that function errors come out of the task as the error named by `errorType`.

Approval waits are answered through the task token found in the history (SendTaskSuccess,
SendTaskFailure with error `Rejected`, or no answer until `TimeoutSecondsPath` runs out).

Waits: the recorded answers carry the real `waitSeconds` (60 s looks); the queued copies have
`waitSeconds` 0, since the `Soak` wait only delays the next look and the order of states does
not depend on it. The approval timeout is not rewritten: the `approval-timeout` path is
recorded with a config whose `rollback_timeout_seconds` is 2.

What moto cannot do, and how this test copes:
- moto's docker-less Lambda never reports a function error (no `X-Amz-Function-Error`), so
  the server is started through `moto_server_with_lambda_errors.py`, which adds that header
  for a queued `{"errorType", "errorMessage"}` object, as Lambda does for a runtime error.
- SendTaskFailure drops the `cause` (the caught error's `Cause` is null), so for
  `ApplyRejection` only the caught `Error` is compared.
- A path missing from a state's input is caught by `States.ALL` in moto; in Step Functions it
  is a `States.Runtime` error that fails the execution. moto cannot show that difference.
- A state machine can run only one execution in moto 5.2.1 (a second StartExecution fails
  deep-copying the first one's thread lock), so every test creates its own machine after a
  reset.

Run: `python3 -m unittest discover -s tests/statemachine -v` (needs `moto[server]`).
"""

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request
import uuid
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PATHS = HERE / "paths"
ASL = ROOT / "infra" / "statemachine" / "canary.asl.json"
FUNCTION_ZIP = ROOT / "crates" / "aws" / "tests" / "fixtures" / "function.zip"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# An execution's whole run, answers and approval timeouts included, takes a few seconds.
EXECUTION_DEADLINE = 90

START = ["DefaultInput", "MergeInput", "Initialise"]
LOOK = ["Soak", "Analyse", "Decide"]
HOLD_ON_ERROR = ["Soak", "Analyse", "HoldOnError", "Decide"]
ASK = ["AwaitApproval"]
PROMOTED = ["Promoted", "CanaryPromoted"]
ROLLED_BACK = ["RolledBack", "CanaryRolledBack"]


class Moto:
    """moto server on 127.0.0.1 and a free port, stopped by `stop`."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # The state machine's tasks call Lambda on localhost:$MOTO_PORT.
        env = dict(os.environ, MOTO_PORT=str(self.port))
        self.log = open(os.devnull, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "moto_server_with_lambda_errors.py"),
             "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=self.log, env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto server did not start; install it with: "
                                       "pip install 'moto[server]==5.2.1'")
                time.sleep(0.1)

    def post(self, path, body):
        req = urllib.request.Request(
            self.endpoint + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def client(self, service):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


MOTO = None


def setUpModule():
    global MOTO
    MOTO = Moto()


def tearDownModule():
    if MOTO is not None:
        MOTO.stop()


def load(path):
    return json.loads((PATHS / f"{path}.json").read_text())


def queued(step):
    """What the function returns for this step, as moto's Lambda will return it."""
    if "error" in step:
        return json.dumps(step["error"])
    response = dict(step["response"])
    response["waitSeconds"] = 0
    return json.dumps(response)


def history(sfn, arn):
    events, token = [], None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        page = sfn.get_execution_history(**kw)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def scheduled(events):
    """(state, resource, payload) of every task the machine scheduled, in order."""
    out, state = [], None
    for e in events:
        if e["type"].endswith("StateEntered"):
            state = e["stateEnteredEventDetails"]["name"]
        if e["type"] == "TaskScheduled":
            d = e["taskScheduledEventDetails"]
            out.append((state, d["resource"], json.loads(d["parameters"])["Payload"]))
    return out


def parsed_causes(event):
    """The event with caught function errors' `Cause` (the error object as JSON text) parsed,
    so that the comparison does not depend on how the text was spaced or escaped."""
    event = json.loads(json.dumps(event))
    for holder in (event, event.get("input")):
        error = holder.get("error") if isinstance(holder, dict) else None
        if isinstance(error, dict) and str(error.get("Cause")).startswith("{"):
            error["Cause"] = json.loads(error["Cause"])
    return event


def answers(steps):
    """The operator's answers, read off the state each approval request leads to."""
    out = []
    for ask, then in zip(steps, steps[1:]):
        if ask["state"] == "AwaitApproval":
            out.append((then["state"], then["event"]))
    return out


def fresh_moto():
    """Resets moto to a state machine world: executions run, the phase function exists, and
    so does the stack's topic. Returns the Step Functions client, the role and the
    definition with the function and topic ARNs substituted."""
    MOTO.post("/moto-api/reset", {})
    MOTO.post("/moto-api/config", {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
    })
    role = MOTO.client("iam").create_role(
        RoleName="canary-gate", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function_arn = MOTO.client("lambda").create_function(
        FunctionName="canary-gate-phase", Runtime="provided.al2023", Role=role,
        Handler="bootstrap", Code={"ZipFile": FUNCTION_ZIP.read_bytes()},
    )["FunctionArn"]
    topic_arn = MOTO.client("sns").create_topic(Name="canary-gate-notifications")["TopicArn"]
    definition = (ASL.read_text().replace("${PhaseFunctionArn}", function_arn)
                  .replace("${NotificationTopicArn}", topic_arn))
    return MOTO.client("stepfunctions"), role, definition


class StateMachinePaths(unittest.TestCase):
    maxDiff = 10_000

    def setUp(self):
        self.sfn, role, definition = fresh_moto()
        self.asl = json.loads(definition)
        self.machine = self.sfn.create_state_machine(
            name=f"canary-{uuid.uuid4().hex[:8]}", definition=definition, roleArn=role,
        )["stateMachineArn"]

    def execute(self, path):
        """Runs the recorded path; returns the recording, DescribeExecution and the history."""
        rec = load(path)
        MOTO.post("/moto-api/static/lambda-simple/response",
                  {"results": [queued(s) for s in rec["steps"]]})
        arn = self.sfn.start_execution(
            stateMachineArn=self.machine, name=f"{path}-{uuid.uuid4().hex[:12]}",
            input=json.dumps(rec["input"]))["executionArn"]
        pending = answers(rec["steps"])
        answered = 0
        deadline = time.monotonic() + EXECUTION_DEADLINE
        while True:
            desc = self.sfn.describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING":
                return rec, desc, history(self.sfn, arn)
            self.assertLess(time.monotonic(), deadline, f"{path}: still running")
            time.sleep(0.1)
            if answered == len(pending):
                continue
            events = history(self.sfn, arn)
            waits = [p for _, r, p in scheduled(events) if r.endswith("waitForTaskToken")]
            # Answer once the request has been submitted (the function was invoked).
            submitted = sum(1 for e in events if e["type"] == "TaskSubmitted")
            if answered < len(waits) and submitted > answered:
                self.assertLess(answered, len(pending), f"{path}: unexpected approval request")
                token = waits[answered]["taskToken"]
                state, event = pending[answered]
                if state == "ApplyApproved":
                    self.sfn.send_task_success(taskToken=token, output=json.dumps(event["approval"]))
                elif state == "ApplyRejection":
                    self.sfn.send_task_failure(taskToken=token, error=event["error"]["Error"],
                                               cause=event["error"]["Cause"])
                else:
                    self.assertEqual(state, "ApplySafeDefault")
                answered += 1

    def check(self, path, states):
        rec, desc, events = self.execute(path)
        entered = [e["stateEnteredEventDetails"]["name"]
                   for e in events if e["type"].endswith("StateEntered")]
        self.assertEqual(entered, states, f"{path}: states entered")
        end = rec["end"]
        if end == "CanaryPromoted":
            self.assertEqual(desc["status"], "SUCCEEDED", desc)
        else:
            self.assertEqual((desc["status"], desc.get("error")), ("FAILED", end), desc)
        self.check_exchanges(path, rec, desc, events)
        return rec, events

    def check_exchanges(self, path, rec, desc, events):
        tasks = scheduled(events)
        steps = rec["steps"]
        self.assertEqual([t[0] for t in tasks], [s["state"] for s in steps],
                         f"{path}: every recorded answer is asked for by its state, in order")
        carried = None
        for i, ((state, resource, payload), step) in enumerate(zip(tasks, steps)):
            where = f"{path} step {i} ({state})"
            sent = dict(payload)
            execution = sent.pop("execution", None)
            if state not in ("Initialise", "StartFailed"):
                self.assertEqual(execution, carried, f"{where}: the execution passed on")
            expected = json.loads(json.dumps(step["event"])
                                  .replace('"EXECUTION_ID"', json.dumps(desc["executionArn"])))
            if "taskToken" in expected:
                self.assertTrue(sent["taskToken"], where)
                expected["taskToken"] = sent["taskToken"]
            if state == "ApplyRejection":
                # moto drops SendTaskFailure's cause.
                self.assertEqual(sent["error"]["Error"], expected["error"]["Error"], where)
                sent["error"], expected["error"] = None, None
            self.assertEqual(parsed_causes(sent), parsed_causes(expected), f"{where}: the event sent")
            # A task whose answer replaces the state (ResultSelector) carries its execution on.
            if "response" in step and "ResultSelector" in self.asl["States"][state]:
                carried = step["response"]["execution"]
        failed = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"
                  and e["taskFailedEventDetails"]["resource"] == "invoke"]
        errors = [s["error"] for s in steps if "error" in s]
        self.assertEqual([(f["error"], json.loads(f["cause"])) for f in failed],
                         [(e["errorType"], e) for e in errors],
                         f"{path}: function errors become task errors named by errorType")

    def test_promote(self):
        rec, events = self.check("promote", START + LOOK * 6 + PROMOTED)
        # Started by hand: the input has no hook and Initialise sends null.
        self.assertNotIn("hook", rec["input"])
        self.assertIsNone(scheduled(events)[0][2]["hook"])

    def test_rollback(self):
        self.check("rollback", START + LOOK * 5 + ROLLED_BACK)

    def test_extend(self):
        self.check("extend", START + LOOK * 9 + PROMOTED)

    def test_error_hold(self):
        rec, events = self.check("error-hold", START + LOOK + HOLD_ON_ERROR + LOOK * 5 + PROMOTED)
        # The throttled look was retried inside Analyse.
        analyse = [t for t in scheduled(events) if t[0] == "Analyse"]
        self.assertEqual(analyse[0][2], analyse[1][2], "the retry sends the same look")

    def test_died_after_writing(self):
        rec, events = self.check("died-after-writing", START + LOOK * 6 + PROMOTED)
        # Both deaths were retried inside their state, with the event the first attempt got.
        tasks = scheduled(events)
        self.assertEqual(tasks[0], tasks[1], "Initialise retried with the same start")
        analyse = [t for t in tasks if t[0] == "Analyse"]
        self.assertEqual(analyse[1], analyse[2], "the look that died is retried as it was")
        failed = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
        self.assertEqual(failed, ["Runtime.ExitError", "Sandbox.Timedout"])

    def test_errors_stop_reporting(self):
        rec, events = self.check("errors-stop-reporting", START + LOOK * 10 + ROLLED_BACK)
        actions = [s["response"]["action"] for s in rec["steps"] if s["state"] == "Analyse"]
        self.assertNotIn("advance", actions)
        self.assertNotIn("promote", actions)

    def test_error_rollback(self):
        self.check("error-rollback", START + LOOK + HOLD_ON_ERROR * 6 + ROLLED_BACK)

    def test_approval_apply(self):
        self.check("approval-apply",
                   START + LOOK * 4 + ASK + ["ApplyApproved", "Decide"] + LOOK * 2 + PROMOTED)

    def test_approval_reject(self):
        self.check("approval-reject",
                   START + LOOK * 4 + ASK + ["ApplyRejection", "Decide"] + LOOK + ASK
                   + ["ApplyApproved", "Decide"] + LOOK * 2 + PROMOTED)

    def test_approval_timeout(self):
        rec, events = self.check("approval-timeout",
                                 START + LOOK * 5 + ASK + ["ApplySafeDefault", "Decide"]
                                 + ROLLED_BACK)
        timed_out = [e for e in events if e["type"] == "TaskTimedOut"]
        self.assertEqual(len(timed_out), 1)
        self.assertEqual(timed_out[0]["taskTimedOutEventDetails"]["error"], "States.Timeout")
        waits = [e["taskScheduledEventDetails"] for e in events
                 if e["type"] == "TaskScheduled"
                 and e["taskScheduledEventDetails"]["resource"].endswith("waitForTaskToken")]
        self.assertEqual([w.get("timeoutInSeconds") for w in waits], [2],
                         "TimeoutSecondsPath reads rollback_timeout_seconds")

    def test_conflict(self):
        self.check("conflict", START + LOOK * 2 + ["Soak", "Analyse", "Conflict", "Failed"])

    def test_start_failed(self):
        rec, events = self.check("start-failed", START + ["StartFailed", "Failed"])
        sent = scheduled(events)[1][2]["input"]
        self.assertEqual(sent["hook"], rec["input"]["hook"])
        self.assertEqual(sent["error"]["Error"], "InvalidConfig")

    def test_every_recorded_path_is_executed(self):
        tested = {name[len("test_"):].replace("_", "-") for name in dir(self)
                  if name.startswith("test_") and name != "test_every_recorded_path_is_executed"
                  and not name.startswith("test_unreachable_function")}
        recorded = {p.stem for p in PATHS.glob("*.json")}
        self.assertEqual(recorded, tested)


def quick_retries(definition):
    """The definition with every retry 1 s apart without backoff: the order of states does not
    depend on the intervals, and the real budgets (minutes) would outlast the test."""
    d = json.loads(json.dumps(definition))
    for state in d["States"].values():
        for r in state.get("Retry", []):
            r.update(IntervalSeconds=1, BackoffRate=1.0)
            r.pop("MaxDelaySeconds", None)
    return d


class UnreachableFunction(unittest.TestCase):
    """Throttling that lasts: the phase function cannot be invoked (every invocation answers
    `Lambda.TooManyRequestsException`) from the first look on. After the look's retries and
    HoldOnError's (about 12 minutes at the real intervals), the state machine rolls the alias
    back itself with the revision it read, notifies, and ends `CanaryRolledBack`; an alias
    someone else has moved to a third version is left alone and the execution ends
    `CanaryFailed`. Not a recorded path: no answer of the function takes part after the
    first."""

    def setUp(self):
        self.sfn, role, definition = fresh_moto()
        self.lam = MOTO.client("lambda")
        zip_bytes = FUNCTION_ZIP.read_bytes()
        # The target: versions 1 (baseline), 2 (canary) and 3, alias `live` at 5 % canary.
        self.lam.create_function(FunctionName="orders-api", Runtime="provided.al2023", Role=role,
                                 Handler="bootstrap", Code={"ZipFile": zip_bytes})
        for i in range(3):
            self.lam.update_function_configuration(FunctionName="orders-api",
                                                   Description=f"build {i + 1}")
            self.lam.publish_version(FunctionName="orders-api", Description=f"build {i + 1}")
        self.lam.create_alias(FunctionName="orders-api", Name="live", FunctionVersion="1",
                              RoutingConfig={"AdditionalVersionWeights": {"2": 0.05}})
        sns, sqs = MOTO.client("sns"), MOTO.client("sqs")
        # The topic fresh_moto made (CreateTopic of an existing name returns it).
        topic = sns.create_topic(Name="canary-gate-notifications")["TopicArn"]
        self.queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        self.machine = self.sfn.create_state_machine(
            name=f"canary-{uuid.uuid4().hex[:8]}",
            definition=json.dumps(quick_retries(json.loads(definition))),
            roleArn=role)["stateMachineArn"]
        # The recorded start of a canary, on this target's versions.
        rec = load("error-hold")
        self.input = rec["input"]
        self.input["config"]["target"].update(baseline_version="1", canary_version="2")
        start = rec["steps"][0]
        self.assertEqual(start["state"], "Initialise")
        self.started = json.loads(json.dumps(start["response"]))
        self.started["execution"]["config"]["target"].update(baseline_version="1",
                                                             canary_version="2")
        self.started["waitSeconds"] = 0

    def run_throttled(self):
        throttled = json.dumps({"errorType": "Lambda.TooManyRequestsException",
                                "errorMessage": "Rate exceeded"})
        MOTO.post("/moto-api/static/lambda-simple/response",
                  {"results": [json.dumps(self.started)] + [throttled] * 40})
        arn = self.sfn.start_execution(stateMachineArn=self.machine,
                                       name=f"throttled-{uuid.uuid4().hex[:12]}",
                                       input=json.dumps(self.input))["executionArn"]
        deadline = time.monotonic() + EXECUTION_DEADLINE
        while (desc := self.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            self.assertLess(time.monotonic(), deadline, "still running")
            time.sleep(0.2)
        events = history(self.sfn, arn)
        entered = [e["stateEnteredEventDetails"]["name"]
                   for e in events if e["type"].endswith("StateEntered")]
        invocations = sum(1 for e in events if e["type"] == "TaskScheduled"
                          and e["taskScheduledEventDetails"]["resource"] == "invoke")
        return desc, entered, invocations

    def messages(self):
        msgs = MOTO.client("sqs").receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"]) for m in msgs]

    def test_unreachable_function_the_state_machine_rolls_back(self):
        desc, entered, invocations = self.run_throttled()
        self.assertEqual(entered, START + ["Soak", "Analyse", "HoldOnError", "LastResortReadAlias",
                                           "LastResortOurs", "LastResortRollback",
                                           "LastResortNotify", "RolledBackByStateMachine"])
        self.assertEqual((desc["status"], desc.get("error")), ("FAILED", "CanaryRolledBack"), desc)
        # Analyse: 1 + 4 retries; HoldOnError: 1 + 15 retries.
        self.assertEqual(invocations, 1 + 5 + 16)
        alias = self.lam.get_alias(FunctionName="orders-api", Name="live")
        self.assertEqual(alias["FunctionVersion"], "1")
        self.assertFalse((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"), alias)
        # The same write releases the alias for the next canary (its description held it).
        self.assertEqual(alias.get("Description"), f"canary-gate released by {desc['executionArn']}")
        msgs = self.messages()
        self.assertEqual(len(msgs), 1, msgs)
        attrs = {k: v["Value"] for k, v in msgs[0]["MessageAttributes"].items()}
        self.assertEqual(attrs["event"], "rollback")
        self.assertEqual(attrs["stage"], "state_machine_rollback")
        self.assertTrue(attrs["notification_id"].endswith("-last-resort"), attrs)
        self.assertEqual(msgs[0]["Subject"], "canary-gate: orders-api v2 rolled back by the state machine")
        self.assertIn("Lambda.TooManyRequestsException", msgs[0]["Message"])

    def test_unreachable_function_someone_elses_alias_is_left_alone(self):
        self.lam.update_alias(FunctionName="orders-api", Name="live", FunctionVersion="3",
                              RoutingConfig={"AdditionalVersionWeights": {}})
        desc, entered, _ = self.run_throttled()
        self.assertEqual(entered[-4:], ["HoldOnError", "LastResortReadAlias", "LastResortOurs",
                                        "Failed"])
        self.assertEqual((desc["status"], desc.get("error")), ("FAILED", "CanaryFailed"), desc)
        alias = self.lam.get_alias(FunctionName="orders-api", Name="live")
        self.assertEqual(alias["FunctionVersion"], "3")
        self.assertEqual(self.messages(), [])


if __name__ == "__main__":
    unittest.main()
