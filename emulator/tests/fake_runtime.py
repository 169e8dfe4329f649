#!/usr/bin/env python3
"""A fake Lambda custom runtime for up-emulator's tests: the Runtime API loop in plain Python.

Init behaviour comes from the environment:
  FAKE_INIT=error   post /runtime/init/error, then exit 2
  FAKE_INIT=exit    print to stderr and exit 3 without calling the API
  FAKE_EXTENSION=1  register an extension, print the event it gets, exit 0 on SIGTERM
Each event says what to do: {"action": "echo" | "error" | "sleep" | "exit" | "barrier"}.
An API Gateway payload 2.0 event is answered according to its rawPath (see `http`).
"""
import base64
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = API if API.startswith("http://") else "http://" + API
RUNTIME = "/2018-06-01/runtime"


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(BASE + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def respond(rid, result):
    call("POST", f"{RUNTIME}/invocation/{rid}/response", json.dumps(result).encode())


def fail(rid):
    body = {"errorType": "Fake.Boom", "errorMessage": "it broke", "stackTrace": ["here"]}
    call("POST", f"{RUNTIME}/invocation/{rid}/error", json.dumps(body).encode(),
         {"Lambda-Runtime-Function-Error-Type": "Fake.Boom"})


def http(rid, event):
    path = event["rawPath"]
    if path == "/bare":
        respond(rid, {"hello": "world"})
    elif path == "/binary":
        body = base64.b64encode(bytes([0, 1, 255])).decode()
        respond(rid, {"statusCode": 200, "body": body, "isBase64Encoded": True,
                      "headers": {"content-type": "application/octet-stream"}})
    elif path == "/error":
        fail(rid)
    elif path == "/slow":
        time.sleep(60)
    else:
        respond(rid, {"statusCode": 201, "body": json.dumps(event),
                      "headers": {"content-type": "application/json", "x-fake": "yes"},
                      "cookies": ["a=1; Path=/", "b=2"]})


print("fake runtime starting", flush=True)
print("stderr: hello from init", file=sys.stderr, flush=True)

MODE = os.environ.get("FAKE_INIT", "")
if MODE == "error":
    body = {"errorType": "Fake.InitFailed", "errorMessage": "bad config"}
    call("POST", f"{RUNTIME}/init/error", json.dumps(body).encode(),
         {"Lambda-Runtime-Function-Error-Type": "Fake.InitFailed"})
    sys.exit(2)
if MODE == "exit":
    print("cannot start: no app", file=sys.stderr, flush=True)
    sys.exit(3)

if os.environ.get("FAKE_EXTENSION"):
    _, headers, _ = call("POST", "/2020-01-01/extension/register",
                         json.dumps({"events": ["SHUTDOWN"]}).encode(),
                         {"Lambda-Extension-Name": "fake-ext"})
    EXTENSION_ID = headers["Lambda-Extension-Identifier"]

    def watch():
        _, _, event = call("GET", "/2020-01-01/extension/event/next",
                           headers={"Lambda-Extension-Identifier": EXTENSION_ID})
        print("extension event " + json.loads(event)["eventType"], flush=True)

    WATCHER = threading.Thread(target=watch, daemon=True)
    WATCHER.start()

    def on_term(_signum, _frame):
        WATCHER.join(5)
        print("got SIGTERM", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)

while True:
    _, headers, body = call("GET", f"{RUNTIME}/invocation/next")
    rid = headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(body)
    if isinstance(event, dict) and event.get("version") == "2.0":
        http(rid, event)
        continue
    action = event.get("action", "echo")
    if action == "echo":
        env = {k: v for k, v in os.environ.items()
               if k.startswith(("AWS_", "LAMBDA_", "UP_", "_HANDLER", "TZ"))}
        respond(rid, {"event": event, "pid": os.getpid(), "cwd": os.getcwd(), "env": env,
                      "headers": {k.lower(): v for k, v in headers.items()}})
    elif action == "error":
        fail(rid)
    elif action == "sleep":
        time.sleep(event["seconds"])
        respond(rid, "slept")
    elif action == "exit":
        print("crashing", file=sys.stderr, flush=True)
        os._exit(7)
    elif action == "barrier":
        # Hold until `n` invocations are in flight at once (bounded), so they overlap.
        folder = event["dir"]
        open(os.path.join(folder, rid), "w").close()
        deadline = time.time() + 20
        while len(os.listdir(folder)) < event["n"] and time.time() < deadline:
            time.sleep(0.01)
        respond(rid, {"pid": os.getpid(), "arrived": len(os.listdir(folder))})
