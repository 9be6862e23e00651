#!/usr/bin/env python3
"""A stand-in for the container CLI (docker/podman) that fakecloud shells out to for Lambda.

Tier-2 tests run where no container engine exists. fakecloud runs Lambda code only through
the CLI named by FAKECLOUD_CONTAINER_CLI; pointed at this script, every "container" is a
plain local process: the function's `bootstrap` started with the environment fakecloud asked
for, behind a minimal Lambda Runtime API served by this script. There is no isolation
whatsoever: use it only for code you would run on the host anyway (our own test builds).

What fakecloud 0.51 does with the CLI for a zip-packaged function, and what this answers:

  --version                      "podman version ..." (podman needs no --add-host flag, so
                                 fakecloud's endpoint becomes host.containers.internal)
  info [...]                     success (liveness probe)
  create -p :8080 --label k=v -e K=V|-e K --tmpfs .. [--add-host ..] IMAGE [CMD]
                                 records the container, prints its id
  cp SRC/. ID:/var/task|/var/runtime|/opt
                                 copies the extracted code into the container's directory
  start ID                       starts the server process (below), waits until it listens
  port ID 8080                   prints 127.0.0.1:<port>
  logs [--tail N] ID             the bootstrap's stdout and stderr
  rm -f ID / stop ID / kill ID   kills the server, the bootstrap and their process group,
                                 waits for them, and deletes the directory
  ps -a --filter label=K --format ..., network ls, volume ls
                                 the listings fakecloud's startup reaper asks for
  pull IMAGE, image inspect IMAGE
                                 succeed: the host is the runtime image
  reap-all                       (for the test harness) removes every container

The server a "container" runs (`serve ID`, its own session and process group) listens on
127.0.0.1 only and speaks two protocols on one port:

  POST /2015-03-31/functions/function/invocations     the Runtime Interface Emulator call
                                                      fakecloud makes for each invocation
  GET  /2018-06-01/runtime/invocation/next            the Lambda Runtime API the bootstrap
  POST /2018-06-01/runtime/invocation/ID/response     polls (AWS_LAMBDA_RUNTIME_API points
  POST /2018-06-01/runtime/invocation/ID/error        here)
  POST /2018-06-01/runtime/init/error

The bootstrap starts at `start` and is restarted for the next invocation if it exits.
$FAKE_CONTAINER_ENDPOINTS may name a JSON file {"part of a function name": "http://..."}
that gives matching functions another AWS_ENDPOINT_URL (a fault proxy in front of fakecloud). Its
environment is the container's, with the host aliases fakecloud gives containers
(host.containers.internal, host.docker.internal) replaced by 127.0.0.1 since the process
runs on the host. The server exits, killing the bootstrap, when fakecloud (the process that
ran `start`) is gone, so nothing outlives a killed emulator for more than a second or two.

State lives under $FAKE_CONTAINER_STATE (default: $TMPDIR/fake-container-cli-<uid>); the
output of removed containers is kept in $FAKE_CONTAINER_STATE-logs/.
Standard library only.
"""

import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
import queue
import select

HOST_ALIASES = ("host.containers.internal", "host.docker.internal")
STATE = os.environ.get("FAKE_CONTAINER_STATE") or os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"fake-container-cli-{os.getuid()}"
)


LOGS = STATE + "-logs"


def cdir(cid):
    return os.path.join(STATE, cid)


def load(cid):
    with open(os.path.join(cdir(cid), "config.json")) as f:
        return json.load(f)


def save(cid, cfg):
    tmp = os.path.join(cdir(cid), "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.replace(tmp, os.path.join(cdir(cid), "config.json"))


def resolve(cid):
    """Full id from a unique prefix, as docker accepts."""
    if os.path.isdir(cdir(cid)):
        return cid
    if os.path.isdir(STATE):
        hits = [d for d in os.listdir(STATE) if d.startswith(cid)]
        if len(hits) == 1:
            return hits[0]
    sys.stderr.write(f"Error: No such container: {cid}\n")
    sys.exit(1)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# ---------------------------------------------------------------------------------------
# CLI commands


def cmd_create(args):
    env, labels, image, cmd = {}, {}, None, []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-e", "--env"):
            kv = args[i + 1]
            if "=" in kv:
                k, v = kv.split("=", 1)
            else:  # `-e KEY`: the value comes from the CLI's own environment
                k, v = kv, os.environ.get(kv)
            if v is not None:
                env[k] = v
            i += 2
        elif a in ("--label", "-l"):
            k, _, v = args[i + 1].partition("=")
            labels[k] = v
            i += 2
        elif a in ("-p", "--publish", "--add-host", "--tmpfs", "--name", "--network", "-v",
                   "--volume", "--memory", "--cpus", "--entrypoint", "-w", "--workdir"):
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            image, cmd = a, args[i + 1:]
            break
    cid = uuid.uuid4().hex + uuid.uuid4().hex[:32]
    os.makedirs(os.path.join(cdir(cid), "rootfs"), exist_ok=True)
    save(cid, {"id": cid, "image": image, "cmd": cmd, "env": env, "labels": labels,
               "created": time.time()})
    print(cid)


def cmd_cp(args):
    src, dst = args[-2], args[-1]
    cid, _, path = dst.partition(":")
    cid = resolve(cid)
    target = os.path.join(cdir(cid), "rootfs", path.lstrip("/"))
    os.makedirs(target, exist_ok=True)
    if src.endswith("/."):
        src = src[:-2]
    if os.path.isdir(src):
        shutil.copytree(src, target, dirs_exist_ok=True, symlinks=True)
    else:
        shutil.copy2(src, target)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmd_start(args):
    cid = resolve(args[-1])
    cfg = load(cid)
    if cfg.get("pid") and pid_alive(cfg["pid"]):
        return
    cfg["port"] = free_port()
    cfg["owner"] = os.getppid()  # fakecloud: the server exits when it is gone
    save(cid, cfg)
    log = open(os.path.join(cdir(cid), "server.log"), "ab")
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "serve", cid],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        env={**os.environ, "FAKE_CONTAINER_STATE": STATE},
    )
    cfg["pid"] = proc.pid
    save(cid, cfg)
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.stderr.write(f"container {cid} exited during start\n")
            sys.exit(1)
        try:
            with socket.create_connection(("127.0.0.1", cfg["port"]), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.stderr.write(f"container {cid} did not listen within 10 s\n")
    sys.exit(1)


def cmd_port(args):
    cid = resolve(args[0])
    port = load(cid).get("port")
    if not port:
        sys.exit(1)
    print(f"127.0.0.1:{port}")


def cmd_logs(args):
    tail = None
    if "--tail" in args:
        tail = int(args[args.index("--tail") + 1])
    cid = resolve(args[-1])
    path = os.path.join(cdir(cid), "bootstrap.log")
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    if tail is not None:
        lines = lines[-tail:]
    sys.stdout.buffer.write(b"".join(lines))


def group_alive(pgid):
    """Whether a process of group `pgid` still runs. Zombies do not count: the servers are
    re-parented when the CLI call that started them exits, and who reaps them is not ours
    to decide."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_group(pid, grace=2.0):
    """SIGTERM the process group led by `pid`, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + grace
        while time.time() < deadline:
            if not group_alive(pid):
                return
            time.sleep(0.05)


def remove(cid):
    try:
        cfg = load(cid)
    except FileNotFoundError:
        cfg = {}
    if cfg.get("pid"):
        kill_group(cfg["pid"])
    # Keep the function's output after the container is gone: logs/<function>-<version>-<id>.log
    log = os.path.join(cdir(cid), "bootstrap.log")
    if os.path.exists(log):
        env = cfg.get("env", {})
        name = "{}-{}-{}.log".format(env.get("AWS_LAMBDA_FUNCTION_NAME", "function"),
                                     env.get("AWS_LAMBDA_FUNCTION_VERSION", "").strip("$"), cid[:12])
        os.makedirs(LOGS, exist_ok=True)
        shutil.move(log, os.path.join(LOGS, name))
    shutil.rmtree(cdir(cid), ignore_errors=True)


def cmd_rm(args):
    ids = [a for a in args if not a.startswith("-")]
    for cid in ids:
        if os.path.isdir(cdir(cid)) or any(
                d.startswith(cid) for d in (os.listdir(STATE) if os.path.isdir(STATE) else [])):
            remove(resolve(cid))


def cmd_stop(args):
    for cid in [a for a in args if not a.startswith("-")]:
        cid = resolve(cid)
        cfg = load(cid)
        if cfg.get("pid"):
            kill_group(cfg["pid"])
            cfg["pid"] = None
            save(cid, cfg)


def containers():
    if not os.path.isdir(STATE):
        return []
    out = []
    for d in sorted(os.listdir(STATE)):
        if not os.path.isdir(cdir(d)):
            continue
        try:
            out.append(load(d))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
    return out


def cmd_ps(args):
    label = None
    if "--filter" in args:
        f = args[args.index("--filter") + 1]
        if f.startswith("label="):
            label = f[len("label="):]
    for c in containers():
        if label is not None:
            k, _, v = label.partition("=")
            if k not in c["labels"] or (v and c["labels"][k] != v):
                continue
        print(f'{c["id"]} {c["labels"].get("fakecloud-instance", "")}')


def cmd_reap_all(_args):
    for c in containers():
        remove(c["id"])


# ---------------------------------------------------------------------------------------
# The "container": a Runtime Interface Emulator in front of a Runtime API


class Invocation:
    def __init__(self, body):
        self.id = str(uuid.uuid4())
        self.body = body
        self.done = threading.Event()
        self.result = None
        self.cancelled = False


class Container:
    def __init__(self, cid):
        self.cid = cid
        self.cfg = load(cid)
        self.root = os.path.join(cdir(cid), "rootfs")
        self.pending = queue.Queue()
        self.inflight = {}
        self.lock = threading.Lock()
        self.proc = None
        self.stopping = False
        self.timeout = int(self.cfg["env"].get("AWS_LAMBDA_FUNCTION_TIMEOUT", "900"))
        self.spawns = queue.Queue()
        threading.Thread(target=self.spawner, daemon=True).start()

    def env(self):
        env = {}
        for k, v in self.cfg["env"].items():
            for alias in HOST_ALIASES:
                v = v.replace(alias, "127.0.0.1")
            env[k] = v
        # A test may send one function's AWS calls elsewhere (a fault proxy): the JSON file
        # named by $FAKE_CONTAINER_ENDPOINTS maps a part of a function name to an endpoint,
        # read each time the bootstrap starts.
        try:
            with open(os.environ.get("FAKE_CONTAINER_ENDPOINTS", "")) as f:
                overrides = json.load(f)
        except (OSError, ValueError):
            overrides = {}
        name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        for part, endpoint in overrides.items():
            if part and part in name:
                env["AWS_ENDPOINT_URL"] = endpoint
        task = os.path.join(self.root, "var", "task")
        env.update({
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.cfg['port']}",
            "LAMBDA_TASK_ROOT": task,
            "LAMBDA_RUNTIME_DIR": os.path.join(self.root, "var", "runtime"),
            "_HANDLER": (self.cfg.get("cmd") or ["bootstrap"])[0],
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "TZ": ":UTC",
        })
        return env

    def bootstrap_path(self):
        for sub in (("var", "runtime", "bootstrap"), ("var", "task", "bootstrap")):
            p = os.path.join(self.root, *sub)
            if os.path.exists(p):
                return p
        return None

    def ensure_running(self):
        with self.lock:
            if self.stopping or (self.proc and self.proc.poll() is None):
                return
            path = self.bootstrap_path()
            if path is None:
                raise RuntimeError("no bootstrap in /var/runtime or /var/task")
            os.chmod(path, os.stat(path).st_mode | 0o111)
            # Started by the spawner thread, which lives as long as this server: the kernel
            # sends PR_SET_PDEATHSIG's signal when the *thread* that forked the child ends, so
            # a bootstrap restarted from a request's thread would die with that request.
            done = {"event": threading.Event()}
            self.spawns.put((path, done))
            done["event"].wait()
            if "error" in done:
                raise done["error"]
            self.proc = done["proc"]
            threading.Thread(target=self.watch, args=(self.proc,), daemon=True).start()

    def spawner(self):
        while True:
            path, done = self.spawns.get()
            try:
                log = open(os.path.join(cdir(self.cid), "bootstrap.log"), "ab")
                done["proc"] = subprocess.Popen(
                    [path], cwd=os.path.dirname(path), env=self.env(), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log, preexec_fn=die_with_parent,
                )
                log.close()
            except Exception as e:  # noqa: BLE001 - handed to the thread that asked
                done["error"] = e
            done["event"].set()

    def watch(self, proc):
        code = proc.wait()
        # Fail whatever the process was working on; the next invocation restarts it.
        with self.lock:
            stranded = list(self.inflight.values())
            self.inflight.clear()
        for inv in stranded:
            inv.result = (200, json.dumps({
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {inv.id} Error: Runtime exited with status {code}",
            }).encode())
            inv.done.set()

    def invoke(self, body):
        inv = Invocation(body)
        self.ensure_running()
        with self.lock:
            proc = self.proc
        self.pending.put(inv)
        deadline = time.time() + self.timeout + 2
        while not inv.done.wait(0.2):
            if proc.poll() is not None and not inv.done.is_set():
                # The process died (at init, or before taking this event): fail it the
                # way Lambda reports a runtime that exits; `next` skips it from now on.
                inv.cancelled = True
                return 200, json.dumps({
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {inv.id} Error: Runtime exited with status "
                                    f"{proc.returncode}",
                }).encode()
            if time.time() > deadline:
                inv.cancelled = True
                with self.lock:
                    self.inflight.pop(inv.id, None)
                    if self.proc:
                        self.proc.kill()  # as Lambda does: a timed-out environment is reset
                return 200, json.dumps({
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {self.timeout} seconds",
                }).encode()
        return inv.result

    def next(self, alive):
        """The next invocation for the runtime polling through a connection for which
        `alive()` holds. A poll left by a runtime that died (its connection closed) takes
        nothing, so no invocation is handed to a dead process."""
        while True:
            try:
                inv = self.pending.get(timeout=1)
            except queue.Empty:
                if self.stopping or not alive():
                    return None
                continue
            if inv.cancelled:
                continue
            if not alive():
                self.pending.put(inv)
                return None
            with self.lock:
                self.inflight[inv.id] = inv
            return inv

    def requeue(self, inv):
        """An invocation whose hand-over failed goes back to the queue."""
        with self.lock:
            self.inflight.pop(inv.id, None)
        self.pending.put(inv)

    def finish(self, req_id, status, body):
        with self.lock:
            inv = self.inflight.pop(req_id, None)
        if inv is None:
            return False
        inv.result = (status, body)
        inv.done.set()
        return True

    def shutdown(self):
        self.stopping = True
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def connected(sock):
    """Whether the peer of an idle connection (a runtime waiting for its next event, which
    sends nothing meanwhile) is still there: readable with nothing to read is its close."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


def die_with_parent():
    """Linux: SIGKILL the bootstrap if the server process dies first."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def make_handler(c):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def reply(self, status, body=b"", headers=None):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/2018-06-01/runtime/invocation/next":
                inv = c.next(lambda: connected(self.connection))
                if inv is None:
                    try:
                        return self.reply(503, b'{"errorType":"ShuttingDown"}')
                    except OSError:
                        return None
                env = c.cfg["env"]
                region = env.get("AWS_REGION", "us-east-1")
                name = env.get("AWS_LAMBDA_FUNCTION_NAME", "function")
                arn = f"arn:aws:lambda:{region}:123456789012:function:{name}"
                deadline = int((time.time() + c.timeout) * 1000)
                try:
                    return self.reply(200, inv.body, {
                        "Lambda-Runtime-Aws-Request-Id": inv.id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{inv.id.replace('-', '')[:24]};Sampled=0",
                    })
                except OSError:
                    c.requeue(inv)  # the runtime went away while it was handed over
                    return None
            self.reply(404, b'{"errorType":"NotFound"}')

        def do_POST(self):
            body = self.body()
            p = self.path
            if p.startswith("/2015-03-31/functions/") and p.endswith("/invocations"):
                try:
                    status, out = c.invoke(body)
                except Exception as e:  # noqa: BLE001 - reported to the caller as Lambda would
                    status, out = 200, json.dumps(
                        {"errorType": "Runtime.InvalidEntrypoint", "errorMessage": str(e)}).encode()
                return self.reply(status, out)
            prefix = "/2018-06-01/runtime/invocation/"
            if p.startswith(prefix) and (p.endswith("/response") or p.endswith("/error")):
                req_id = p[len(prefix):].rsplit("/", 1)[0]
                if p.endswith("/error"):
                    if not body:
                        body = json.dumps({"errorType": self.headers.get(
                            "Lambda-Runtime-Function-Error-Type", "Unhandled"),
                            "errorMessage": "unknown"}).encode()
                ok = c.finish(req_id, 200, body)
                return self.reply(202 if ok else 400, b'{"status":"OK"}')
            if p == "/2018-06-01/runtime/init/error":
                sys.stderr.write(f"init error: {body!r}\n")
                return self.reply(202, b'{"status":"OK"}')
            self.reply(404, b'{"errorType":"NotFound"}')

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def cmd_serve(args):
    cid = args[0]
    c = Container(cid)
    server = Server(("127.0.0.1", c.cfg["port"]), make_handler(c))
    owner = c.cfg.get("owner")

    def stop(*_):
        c.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watchdog():
        while True:
            time.sleep(1)
            if owner and not pid_alive(owner):
                sys.stderr.write(f"owner {owner} is gone: stopping\n")
                stop()

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        c.ensure_running()
    except RuntimeError as e:
        sys.stderr.write(f"{e}\n")
    server.serve_forever()


# ---------------------------------------------------------------------------------------


def main(argv):
    if not argv:
        sys.stderr.write("usage: fake-container-cli.py COMMAND ...\n")
        return 2
    os.makedirs(STATE, exist_ok=True)
    cmd, args = argv[0], argv[1:]
    if cmd in ("--version", "version"):
        print("podman version 5.0.0 (canary-gate tier-2 stand-in: local processes, no containers)")
    elif cmd == "info":
        print("{}")
    elif cmd == "create":
        cmd_create(args)
    elif cmd == "cp":
        cmd_cp(args)
    elif cmd == "start":
        cmd_start(args)
    elif cmd == "port":
        cmd_port(args)
    elif cmd == "logs":
        cmd_logs(args)
    elif cmd == "rm":
        cmd_rm(args)
    elif cmd in ("stop", "kill"):
        cmd_stop(args)
    elif cmd == "ps":
        cmd_ps(args)
    elif cmd == "pull" or args[:1] == ["inspect"] and cmd == "image":
        # Lambda's runtime images: the host is the runtime, there is nothing to fetch.
        return 0
    elif cmd in ("network", "volume"):
        # No networks or volumes exist: listings are empty, everything else fails.
        return 0 if args[:1] == ["ls"] else 1
    elif cmd == "serve":
        cmd_serve(args)
    elif cmd == "reap-all":
        cmd_reap_all(args)
    else:
        sys.stderr.write(f"fake-container-cli: unsupported command {cmd!r} {args!r}\n")
        return 125
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
