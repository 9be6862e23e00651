#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the adapter tests: it sits on 127.0.0.1 between the AWS SDK
clients and the emulator (moto) and, per rule, answers a request with a fault instead of (or
after) forwarding it.

Faults
  throttle   the service's own throttling answer: Lambda (REST-JSON) HTTP 429
             `TooManyRequestsException`; JSON-protocol services (Step Functions, CodeDeploy,
             Logs) HTTP 400 `ThrottlingException`; query-protocol services (SNS, CloudWatch)
             HTTP 400 `Throttling`. `code` and `status` override.
  status     an HTTP error (default 503) with a service-shaped body (`ServiceUnavailable`).
  reset      the connection is reset (TCP RST) without an answer.
             `status` and `reset` with `after`: the request is forwarded first (a write
             lands), and only its answer is lost.
  hang       the request is read and never answered (the connection is held `seconds`);
             with `after` it is forwarded first (a publish is delivered, a write lands)
             and only the answer never comes.
  stall      the headers and half of moto's body are sent, then nothing.
  kill       the request is forwarded (a write lands) and then the process that sent it is
             killed (SIGKILL) before it gets the answer: a Lambda function dying after its
             write. The caller is found through /proc (Linux: the process owning the
             connection's client socket); `GET /__faults/calls` lists the kills under
             `killed`.
  get-metric-data rewrites of moto's real GetMetricData answer (query protocol, XML):
  partial    the chosen queries' `StatusCode` becomes `PartialData`; with `next_token` a
             `NextToken` is added too (the follow-up request is forwarded like any other).
  forbidden  the chosen queries' `StatusCode` becomes `Forbidden` and their datapoints go.
  internal   the chosen queries' `StatusCode` becomes `InternalError`.
  drop       the chosen queries' datapoints are dropped (all, or `keep_first` of them).

A rule matches an operation (`op`: `GetMetricData`, `GetAlias`, `UpdateAlias`, `Publish`, …
or `*`) and fires at chosen call numbers of that operation (`calls`: [1, 2], 1-based, counted
per rule), at a `rate` (0..1, with `seed`), or at every call for `for_seconds` from the first
call the rule sees (an outage that lasts, then clears). GetMetricData rewrites choose queries by
`metric` (MetricName) and optionally `dimension` ("Name=Value") in the request.

Alias revisions (`--alias-revisions`): the proxy keeps each alias's `RevisionId` as AWS does,
for emulators that keep one revision forever (moto 5): every successful UpdateAlias gets a new
one, and an UpdateAlias naming any other is refused with HTTP 412
`PreconditionFailedException`, atomically (one UpdateAlias per alias at a time). GetAlias and
UpdateAlias answers carry the proxy's revision.

Configure with `--rules JSON` (or `FAULT_RULES`) at start, or at run time:
  POST /__faults/rules   body: a JSON list of rules (replaces them and resets the counts)
  GET  /__faults/calls   per operation: how many requests arrived, JSON
Run: proxy.py --port PORT --upstream http://127.0.0.1:MOTO_PORT
"""

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
# --alias-revisions: the current RevisionId per alias path, and one lock held across each
# alias write so that the check and the write are one step.
REVISIONS = {"on": False, "current": {}, "counter": 0}
REVISION_LOCK = threading.Lock()
STATE = {"rules": [], "calls": {}, "fired": {}, "rng": {}}
UPSTREAM = ("127.0.0.1", 5000)


def set_rules(rules):
    with LOCK:
        STATE["rules"] = rules
        STATE["calls"] = {}
        STATE["fired"] = {}
        STATE["rng"] = {i: random.Random(r.get("seed", 1)) for i, r in enumerate(rules)}
        STATE["first"] = {}


def protocol(headers):
    ctype = headers.get("Content-Type", "")
    if "x-amz-json" in ctype:
        return "json"
    if "x-www-form-urlencoded" in ctype:
        return "query"
    return "rest"


def operation(method, path, headers, body):
    proto = protocol(headers)
    if proto == "json":
        return headers.get("X-Amz-Target", "").split(".")[-1]
    if proto == "query":
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        return form.get("Action", ["?"])[0]
    clean = path.split("?")[0]
    if "/aliases/" in clean:
        return {"GET": "GetAlias", "PUT": "UpdateAlias", "DELETE": "DeleteAlias"}.get(method, method)
    return f"{method} {clean}"


def matching_rule(op):
    """The first rule that fires for this request of `op`, counting the call for every rule of
    the operation."""
    with LOCK:
        STATE["calls"][op] = STATE["calls"].get(op, 0) + 1
        chosen = None
        for i, rule in enumerate(STATE["rules"]):
            if rule.get("op", "*") not in ("*", op):
                continue
            n = STATE["fired"].get(i, 0) + 1
            STATE["fired"][i] = n
            if chosen is not None:
                continue
            if "calls" in rule:
                hit = n in rule["calls"]
            elif "for_seconds" in rule:
                first = STATE.setdefault("first", {}).setdefault(i, time.monotonic())
                hit = time.monotonic() - first < float(rule["for_seconds"])
            else:
                hit = STATE["rng"][i].random() < float(rule.get("rate", 1.0))
            if hit:
                chosen = rule
        return chosen


def error_answer(rule, proto, default_status, code, message):
    status = int(rule.get("status", default_status))
    code = rule.get("code", code)
    if proto == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.0"}, body
    if proto == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault-injected</RequestId></ErrorResponse>"
        ).encode()
        return status, {"Content-Type": "text/xml"}, body
    body = json.dumps({"Type": "User", "message": message}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, body


def throttle(rule, proto):
    if proto == "rest":
        return error_answer(rule, proto, 429, "TooManyRequestsException", "Rate exceeded")
    code = "ThrottlingException" if proto == "json" else "Throttling"
    return error_answer(rule, proto, 400, code, "Rate exceeded")


def chosen_ids(rule, body):
    """The GetMetricData query ids (q0, q1, …) a rewrite applies to."""
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    queries = {}
    for key, values in form.items():
        m = re.match(r"MetricDataQueries\.member\.(\d+)\.(.*)", key)
        if m:
            queries.setdefault(m.group(1), {})[m.group(2)] = values[0]
    ids = set()
    for q in queries.values():
        if "metric" in rule and q.get("MetricStat.Metric.MetricName") != rule["metric"]:
            continue
        if "dimension" in rule:
            name, value = rule["dimension"].split("=", 1)
            dims = {
                q.get(f"MetricStat.Metric.Dimensions.member.{i}.Name"): q.get(
                    f"MetricStat.Metric.Dimensions.member.{i}.Value"
                )
                for i in range(1, 31)
            }
            if dims.get(name) != value:
                continue
        ids.add(q.get("Id"))
    return ids


MEMBER = re.compile(r"<member><Id>(?P<id>[^<]*)</Id>.*?<StatusCode>[^<]*</StatusCode>.*?</member>", re.S)


def rewrite_metric_data(rule, request_body, xml):
    ids = chosen_ids(rule, request_body)
    fault = rule["fault"]

    def one(m):
        text = m.group(0)
        if m.group("id") not in ids:
            return text
        if fault == "partial":
            return re.sub(r"<StatusCode>[^<]*</StatusCode>", "<StatusCode>PartialData</StatusCode>", text)
        if fault == "internal":
            return re.sub(r"<StatusCode>[^<]*</StatusCode>", "<StatusCode>InternalError</StatusCode>", text)
        keep = int(rule.get("keep_first", 0)) if fault == "drop" else 0
        times = re.findall(r"<member>[^<]*</member>", re.search(r"<Timestamps>(.*?)</Timestamps>|<Timestamps/>", text).group(0))
        values = re.findall(r"<member>[^<]*</member>", re.search(r"<Values>(.*?)</Values>|<Values/>", text).group(0))
        text = re.sub(r"<Timestamps>.*?</Timestamps>|<Timestamps/>", "<Timestamps>" + "".join(times[:keep]) + "</Timestamps>", text, flags=re.S)
        text = re.sub(r"<Values>.*?</Values>|<Values/>", "<Values>" + "".join(values[:keep]) + "</Values>", text, flags=re.S)
        if fault == "forbidden":
            text = re.sub(r"<StatusCode>[^<]*</StatusCode>", "<StatusCode>Forbidden</StatusCode>", text)
        return text

    results = re.search(r"<MetricDataResults>.*</MetricDataResults>", xml, re.S)
    if not results:
        return xml
    inner = MEMBER.sub(one, results.group(0))
    xml = xml[: results.start()] + inner + xml[results.end():]
    if fault == "partial" and rule.get("next_token"):
        xml = xml.replace("</MetricDataResults>", "</MetricDataResults><NextToken>fault-page-2</NextToken>", 1)
    return xml


def client_pid(port):
    """The process (other than this one) owning the TCP socket whose local port is `port` on
    this host: the client at the other end of one of our connections. None if not found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        if os.environ.get("FAULT_PROXY_LOG"):
            super().log_message(*args)

    def send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body):
        conn = http.client.HTTPConnection(*UPSTREAM, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in ("connection", "content-length", "transfer-encoding")}
        conn.close()
        return resp.status, out, data

    def with_revision(self, key, status, headers, data):
        """An alias answer carrying the proxy's revision for `key` (moto's own the first time)."""
        if not 200 <= status < 300:
            return status, headers, data
        doc = json.loads(data or b"{}")
        current = REVISIONS["current"].setdefault(key, doc.get("RevisionId") or "rev-0")
        doc["RevisionId"] = current
        return status, headers, json.dumps(doc).encode()

    def alias_call(self, op, body):
        key = self.path.split("?")[0]
        with REVISION_LOCK:
            if op == "GetAlias":
                return self.send(*self.with_revision(key, *self.forward(body)))
            asked = json.loads(body or b"{}").get("RevisionId")
            current = REVISIONS["current"].get(key)
            if asked is not None and current is not None and asked != current:
                msg = "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve the latest Revision Id"
                return self.send(412, {"Content-Type": "application/json", "x-amzn-ErrorType": "PreconditionFailedException"},
                                 json.dumps({"Type": "User", "message": msg}).encode())
            status, headers, data = self.forward(body)
            if 200 <= status < 300:
                REVISIONS["counter"] += 1
                REVISIONS["current"][key] = f"proxy-rev-{REVISIONS['counter']}"
            return self.send(*self.with_revision(key, status, headers, data))

    def handle_any(self):
        length = int(self.headers.get("Content-Length", 0) or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__faults/"):
            return self.control(body)
        proto = protocol(self.headers)
        op = operation(self.command, self.path, self.headers, body)
        rule = matching_rule(op)
        fault = rule and rule["fault"]
        if rule and rule.get("after") and fault in ("status", "reset", "hang"):
            # The request reaches the emulator (a write lands); only its answer is lost.
            self.forward(body)
        if fault == "kill":
            self.forward(body)
            pid = client_pid(self.client_address[1])
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            with LOCK:
                STATE.setdefault("killed", []).append({"op": op, "pid": pid})
            self.close_connection = True
            return None
        if fault == "throttle":
            return self.send(*throttle(rule, proto))
        if fault == "status":
            return self.send(*error_answer(rule, proto, 503, "ServiceUnavailable", "Service unavailable"))
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return None
        if fault == "hang":
            time.sleep(float(rule.get("seconds", 300)))
            self.close_connection = True
            return None
        if REVISIONS["on"] and op in ("GetAlias", "UpdateAlias") and not fault:
            return self.alias_call(op, body)
        status, headers, data = self.forward(body)
        if fault == "stall":
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            time.sleep(float(rule.get("seconds", 300)))
            self.close_connection = True
            return None
        if fault in ("partial", "forbidden", "internal", "drop") and op == "GetMetricData" and status == 200:
            data = rewrite_metric_data(rule, body, data.decode()).encode()
        return self.send(status, headers, data)

    def control(self, body):
        if self.path == "/__faults/rules" and self.command == "POST":
            set_rules(json.loads(body or b"[]"))
            return self.send(200, {"Content-Type": "application/json"}, b"{}")
        if self.path == "/__faults/calls":
            with LOCK:
                data = json.dumps(dict(STATE["calls"], killed=STATE.get("killed", []))).encode()
            return self.send(200, {"Content-Type": "application/json"}, data)
        return self.send(404, {}, b"")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    global UPSTREAM
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the emulator")
    p.add_argument("--rules", default=os.environ.get("FAULT_RULES", "[]"), help="JSON list of rules")
    p.add_argument("--alias-revisions", action="store_true", help="keep alias revisions as AWS does (see above)")
    args = p.parse_args()
    REVISIONS["on"] = args.alias_revisions
    up = urllib.parse.urlparse(args.upstream)
    UPSTREAM = (up.hostname, up.port or 80)
    set_rules(json.loads(args.rules))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"fault proxy on 127.0.0.1:{args.port} -> {args.upstream}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
