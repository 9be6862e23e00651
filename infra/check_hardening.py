"""Checks what infra/template.yaml promises about its own limits, which neither cfn-lint nor
checkov can judge: the target parameters take plain names only (a `*` or an ARN would widen
every policy that is built from them), the log level cannot be `trace` (raw events with
configs and tokens), the key lets SNS use it only for this account's topic, every function
logs into a log group of the stack with a retention, and the functions that roll a target
back have concurrency of their own. Run with the Python that has cfn-lint (its YAML loader
understands the intrinsic-function tags)."""

import re
import sys

from cfnlint.decode import cfn_yaml

path = sys.argv[1] if len(sys.argv) > 1 else "infra/template.yaml"
template = cfn_yaml.load(path)
params = template["Parameters"]
resources = template["Resources"]
errors = []


def matches(param, value):
    # CloudFormation matches AllowedPattern against the whole value.
    return re.fullmatch(params[param]["AllowedPattern"], value) is not None


cases = {
    "TargetFunctionName": (
        ["orders-api", "orders_api2", "a" * 64],
        ["*", "orders-*", "", "a" * 65, "arn:aws:lambda:eu-west-1:123456789012:function:orders-api",
         "orders-api:live", "orders api"],
    ),
    "TargetAlias": (
        ["live", "prod-2", "blue_green", "a" * 128],
        ["*", "live*", "", "42", "a" * 129, "$LATEST", "live/x"],
    ),
}
for param, (good, bad) in cases.items():
    if "AllowedPattern" not in params[param]:
        errors.append(f"{param}: no AllowedPattern")
        continue
    errors += [f"{param}: {v!r} refused by its AllowedPattern" for v in good if not matches(param, v)]
    errors += [f"{param}: {v!r} accepted by its AllowedPattern" for v in bad if matches(param, v)]

levels = params["LogLevel"]["AllowedValues"]
if "trace" in levels or params["LogLevel"]["Default"] not in levels:
    errors.append(f"LogLevel: allowed values {levels}, default {params['LogLevel']['Default']}")

for sid in ("SnsUsesKey", "LogsUsesKey"):
    statements = [s for s in resources["NotificationKey"]["Properties"]["KeyPolicy"]["Statement"]
                  if s.get("Sid") == sid]
    if len(statements) != 1:
        errors.append(f"NotificationKey: expected one {sid} statement")
        continue
    condition = statements[0].get("Condition", {})
    keys = {k for op in condition.values() for k in op}
    want = {"SnsUsesKey": {"aws:SourceAccount", "aws:SourceArn"},
            "LogsUsesKey": {"kms:EncryptionContext:aws:logs:arn"}}[sid]
    if not want <= keys:
        errors.append(f"NotificationKey {sid}: conditions {sorted(keys)}, expected {sorted(want)}")
topic_name = resources["NotificationTopic"]["Properties"].get("TopicName")
if "${AWS::StackName}-notifications" not in str(topic_name):
    errors.append(f"NotificationTopic: TopicName {topic_name!r} is not the one the key policy names")

functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
for name, fn in functions.items():
    props = fn["Properties"]
    group = props.get("LoggingConfig", {}).get("LogGroup", {})
    ref = group.get("Ref") if isinstance(group, dict) else None
    target = resources.get(ref, {}) if ref else {}
    if target.get("Type") != "AWS::Logs::LogGroup":
        errors.append(f"{name}: LoggingConfig.LogGroup is not a log group of the stack ({group!r})")
    elif "RetentionInDays" not in target["Properties"]:
        errors.append(f"{name}: its log group {ref} has no RetentionInDays")
    reserved = props.get("ReservedConcurrentExecutions")
    if not isinstance(reserved, int) or reserved < 1:
        errors.append(f"{name}: no reserved concurrency ({reserved!r})")
for must in ("PhaseFunction", "SoakCheckFunction", "ApproverFunction"):
    if must not in functions:
        errors.append(f"{must}: missing")

# Approvals: only the approver function may answer task tokens, and operators act through it.
def actions(statements):
    out = set()
    for st in statements:
        a = st.get("Action", [])
        out |= set([a] if isinstance(a, str) else a)
    return out
answering = set()
for name, fn in functions.items():
    for policy in fn["Properties"].get("Policies", []):
        if isinstance(policy, dict) and {"states:SendTaskSuccess", "states:SendTaskFailure"} & actions(policy.get("Statement", [])):
            answering.add(name)
if answering != {"ApproverFunction"}:
    errors.append(f"states:SendTaskSuccess/Failure held by {sorted(answering)}, expected the ApproverFunction only")
operator = actions(resources["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"])
for forbidden in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:StartExecution",
                  "states:StopExecution", "lambda:UpdateAlias", "sns:Publish"):
    if forbidden in operator:
        errors.append(f"OperatorPolicy grants {forbidden}: operators act through the approver function")

if errors:
    sys.exit("template hardening:\n  " + "\n  ".join(errors))
print(f"template hardening: target parameters take plain names only, LogLevel {levels}, the key's "
      f"SNS and Logs grants are conditioned, {len(functions)} functions with log retention and "
      f"reserved concurrency, task tokens answered by the approver function only, operators "
      f"limited to {sorted(operator)}")
