#!/usr/bin/env python3
"""Check that an echo app honours the contract in examples/README.md.

Usage (from the repository root):

    python3 examples/contract_check.py python3 examples/python-echo/app.py
    python3 examples/contract_check.py --grouped-headers target/release/rust-echo
    python3 examples/contract_check.py node examples/node-hello/server.js

It starts the command itself with PORT set to a free loopback port, UP_STAGE=check and
UP_RESTARTS=0, talks to it with http.client only, and ends it through /exit/7.
--grouped-headers accepts headers grouped by name (hyper's HeaderMap) instead of the
exact order received; names are compared case-insensitively in that mode.
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

PASSED = []
FAILED = []


def check(name, cond, detail=""):
    (PASSED if cond else FAILED).append(name)
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  -- {detail}"), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    def __init__(self, argv, env_extra=None):
        self.port = free_port()
        env = dict(os.environ, PORT=str(self.port), UP_STAGE="check", UP_RESTARTS="0")
        env.update(env_extra or {})
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stdout, self.stderr = [], []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.append(line.decode("utf-8", "replace").rstrip("\n"))

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def request(conn, method, target, body=None, headers=()):
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", "echo.test")
    for k, v in headers:
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    return resp, resp.read()


def main():
    args = sys.argv[1:]
    grouped = False
    if args and args[0] == "--grouped-headers":
        grouped, args = True, args[1:]
    if not args:
        print(__doc__)
        return 2

    # Start-up failure and delay.
    bad = App(args, {"ECHO_FAIL_START": "1"})
    code = bad.proc.wait(timeout=15)
    time.sleep(0.1)
    check("ECHO_FAIL_START=1 exits 3", code == 3, f"exit {code}")
    check("ECHO_FAIL_START=1 says why on stderr",
          "fatal: cannot start (ECHO_FAIL_START)" in bad.stderr, bad.stderr)

    app = App(args, {"ECHO_START_DELAY_MS": "300"})
    t0 = time.monotonic()
    check("starts listening", app.wait_ready(), app.stderr)
    check("ECHO_START_DELAY_MS delays binding", time.monotonic() - t0 >= 0.3)
    try:
        run_checks(app, grouped)
    finally:
        app.stop()
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    return 1 if FAILED else 0


def run_checks(app, grouped):
    time.sleep(0.1)
    check("announces itself on stderr",
          any(line.endswith(f"listening on {app.port}") for line in app.stderr), app.stderr)

    c = app.conn()
    # Echo, raw path and query, repeated headers in order.
    sent = [("X-Repeat", "one"), ("Accept", "text/plain"), ("X-Repeat", "two"),
            ("X-Forwarded-For", "198.51.100.1, 203.0.113.9")]
    resp, body = request(c, "GET", "/x/a%2Fb/c%20d?a=%20&a=+&b=%26", headers=sent)
    doc = json.loads(body)
    check("echo is 200 application/json", resp.status == 200
          and resp.getheader("Content-Type", "").startswith("application/json"))
    check("echo method", doc["method"] == "GET", doc["method"])
    check("echo path is raw", doc["path"] == "/x/a%2Fb/c%20d", doc["path"])
    check("echo query is raw", doc["query"] == "a=%20&a=+&b=%26", doc["query"])
    got = [tuple(h) for h in doc["headers"]]
    want = [("Host", "echo.test")] + sent
    if grouped:
        norm = lambda hs: sorted((k.lower(), v) for k, v in hs)  # noqa: E731
        check("echo headers (grouped): every value kept", norm(got) == norm(want), got)
        xr = [v for k, v in got if k.lower() == "x-repeat"]
        check("echo headers: repeated values keep their order", xr == ["one", "two"], xr)
    else:
        check("echo headers exact order and case", got == want, got)
    check("echo env", doc["env"] == {"PORT": str(app.port), "UP_STAGE": "check", "UP_RESTARTS": "0"},
          doc["env"])
    check("echo pid", doc["pid"] == app.proc.pid, (doc["pid"], app.proc.pid))
    check("echo cwd", doc["cwd"] == os.getcwd(), doc["cwd"])
    check("echo no query -> empty", json.loads(request(c, "GET", "/plain")[1])["query"] == "")
    check("keep-alive: connection reused", c.sock is not None and not resp.will_close)

    # Every method; body echoed as base64.
    payload = bytes([0, 1, 2, 0xff, 0xfe]) + "é".encode()
    for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        resp, body = request(c, m, "/anything", body=payload if m != "GET" else None,
                             headers=[("Content-Type", "application/x-test")])
        doc = json.loads(body)
        ok = resp.status == 200 and doc["method"] == m
        if m != "GET":
            ok = ok and base64.b64decode(doc["body_b64"]) == payload
        check(f"echo {m}", ok, (resp.status, doc.get("method"), doc.get("body_b64")))
    resp, body = request(c, "HEAD", "/bytes/10")
    check("HEAD: Content-Length of the GET, no body",
          resp.status == 200 and resp.getheader("Content-Length") == "10" and body == b"",
          (resp.status, resp.getheader("Content-Length"), body))

    # /status
    for code in (200, 201, 404, 418, 500, 503):
        resp, body = request(c, "GET", f"/status/{code}")
        check(f"/status/{code}", resp.status == code and body == f"status {code}".encode()
              and resp.getheader("Content-Type") == "text/plain; charset=utf-8", (resp.status, body))
    resp, body = request(c, "POST", "/status/204", body=b"ignored")
    check("/status/204 has no body", resp.status == 204 and body == b"", (resp.status, body))
    resp, body = request(c, "GET", "/status/304")
    check("/status/304 has no body", resp.status == 304 and body == b"", (resp.status, body))
    resp, body = request(c, "GET", "/after-204")
    check("connection still usable after 204/304", resp.status == 200)

    # /cookies
    resp, body = request(c, "GET", "/cookies")
    cookies = resp.msg.get_all("Set-Cookie") or []
    check("/cookies two Set-Cookie", cookies == [
        "a=1; Path=/", "b=2; Path=/; HttpOnly; Expires=Wed, 21 Oct 2037 07:28:00 GMT"], cookies)
    multi = resp.msg.get_all("X-Multi") or []
    check("/cookies two X-Multi", multi == ["one", "two"], multi)
    check("/cookies body", body == b"cookies")

    # /bytes
    for n in (0, 1, 255, 256, 1000, 1 << 20):
        resp, body = request(c, "GET", f"/bytes/{n}")
        check(f"/bytes/{n}", resp.status == 200 and body == bytes(i % 256 for i in range(n))
              and resp.getheader("Content-Type") == "application/octet-stream"
              and resp.getheader("Content-Length") == str(n), (resp.status, len(body)))

    # /mirror
    raw = bytes(range(256)) * 3
    resp, body = request(c, "POST", "/mirror", body=raw, headers=[("Content-Type", "image/x-test")])
    check("/mirror binary + content type", body == raw and resp.getheader("Content-Type") == "image/x-test")
    resp, body = request(c, "PUT", "/mirror", body=b"abc")
    check("/mirror without content type",
          body == b"abc" and resp.getheader("Content-Type") == "application/octet-stream",
          resp.getheader("Content-Type"))
    # chunked request body
    c.putrequest("POST", "/mirror")
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("Content-Type", "text/plain")
    c.endheaders()
    c.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    resp = c.getresponse()
    check("/mirror chunked request body", resp.read() == b"hello world")

    # /text
    resp, body = request(c, "GET", "/text/utf-8")
    check("/text/utf-8", body == "café".encode("utf-8")
          and resp.getheader("Content-Type") == "text/plain; charset=utf-8", (body, resp.getheader("Content-Type")))
    resp, body = request(c, "GET", "/text/latin-1")
    check("/text/latin-1", body == b"caf\xe9"
          and resp.getheader("Content-Type") == "text/plain; charset=latin-1", (body, resp.getheader("Content-Type")))

    # /sleep
    t0 = time.monotonic()
    resp, body = request(c, "GET", "/sleep/250?x=1")
    elapsed = time.monotonic() - t0
    check("/sleep/250 sleeps then echoes", elapsed >= 0.25 and json.loads(body)["query"] == "x=1", elapsed)

    # /log
    before_out = len(app.stdout)
    resp, body = request(c, "GET", "/log")
    check("/log echoes", resp.status == 200 and json.loads(body)["path"] == "/log")
    time.sleep(0.3)
    new_out = app.stdout[before_out:]
    check("/log plain stdout line", "plain line from app" in new_out, new_out)
    js = [json.loads(line) for line in new_out if line.startswith("{")]
    check("/log json stdout line",
          {"level": "warn", "msg": "json line from app", "user": "alice"} in js, new_out)
    check("/log stderr line", "error line from app" in app.stderr, app.stderr[-3:])
    check("access line per request", any(line.endswith(" GET /log 200") for line in new_out), new_out)

    # Two requests on one connection, explicitly.
    c2 = app.conn()
    r1, _ = request(c2, "GET", "/one")
    s1 = c2.sock
    r2, _ = request(c2, "GET", "/two")
    check("keep-alive: two requests on one socket", s1 is not None and c2.sock is s1
          and r1.status == r2.status == 200)
    c2.close()
    c.close()

    # /exit: no answer, process exits with the code.
    c3 = app.conn()
    try:
        request(c3, "GET", "/exit/7")
        answered = True
    except (http.client.HTTPException, ConnectionError, OSError):
        answered = False
    check("/exit/7 does not answer", not answered)
    try:
        code = app.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        code = None
    check("/exit/7 exits with 7", code == 7, code)


if __name__ == "__main__":
    sys.exit(main())
