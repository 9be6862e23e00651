"""Checks that the CloudWatch dashboard in infra/template.yaml is valid JSON once CloudFormation
substitutes its variables, and that it graphs what it promises: both versions' invocations,
errors and duration percentiles, and canary-gate's decisions, weight, p-values and effect sizes.
cfn-lint cannot see inside the `DashboardBody` string."""

import json
import re
import sys

text = open(sys.argv[1] if len(sys.argv) > 1 else "infra/template.yaml").read()
start = text.index("      DashboardBody: !Sub\n        - |\n") + len("      DashboardBody: !Sub\n        - |\n")
end = text.index("        - Fn: !Ref", start)
body = "\n".join(line[10:] for line in text[start:end].split("\n"))
values = {"Fn": "orders-api", "Alias": "live", "Machine": "arn:aws:states:eu-west-1:1:stateMachine:m",
          "AWS::Region": "eu-west-1"}
for name, value in values.items():
    body = body.replace("${" + name + "}", value)
left = re.findall(r"\$\{[^}]*\}", body)
if left:
    sys.exit(f"dashboard: unsubstituted variables {left}")
dashboard = json.loads(body)
titles = [w["properties"].get("title", "") for w in dashboard["widgets"]]
expressions = json.dumps(dashboard)
for needle in ["Invocations", "Errors", "'p50'", "'p95'", "'p99'", "ExecutedVersion", "CanaryDecision",
               "CanaryWeight", "PValue", "EffectSize"]:
    if needle not in expressions:
        sys.exit(f"dashboard: nothing graphs {needle}")
print(f"dashboard: {len(dashboard['widgets'])} widgets, valid JSON: {', '.join(t for t in titles if t)}")
