#!/usr/bin/env python3
"""python-echo: an ordinary HTTP server, standard library only.

It knows nothing about Lambda: it listens on 127.0.0.1:$PORT and answers HTTP.
The `up` test suites drive it through the bootstrap and compare what it saw with
what the client sent. The routes are described in ../README.md.
"""

import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "python-echo"


def out(line):
    print(line, file=sys.stdout, flush=True)


def err(line):
    print(line, file=sys.stderr, flush=True)


class EchoHandler(BaseHTTPRequestHandler):
    # HTTP/1.1: connections stay open between requests (keep-alive).
    protocol_version = "HTTP/1.1"
    server_version = "python-echo/1"
    _body = None

    # -- logging: one access line on stdout per answered request ----------
    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        out(f"{NAME} {self.command} {self._raw_path()} {code}")

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        # Errors only (bad request line, timeouts); access lines go through log_request.
        err(f"{NAME} error: " + (format % args))

    # -- request parts --------------------------------------------------------
    def _raw_target(self):
        # The request-target exactly as it was on the request line (self.path may have
        # been normalised by http.server, e.g. a leading '//').
        words = self.requestline.split(" ")
        return words[1] if len(words) >= 3 else self.path

    def _raw_path(self):
        return self._raw_target().split("?", 1)[0]

    def _raw_query(self):
        parts = self._raw_target().split("?", 1)
        return parts[1] if len(parts) == 2 else ""

    def _read_body(self):
        if self._body is not None:
            return self._body
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
            self._body = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length > 0 else b""
        return self._body

    # -- response -------------------------------------------------------------
    def _send(self, status, body=b"", content_type="text/plain; charset=utf-8", headers=()):
        # A body is forbidden for 204 and 304; HEAD gets the headers of the GET.
        no_body = status in (204, 304)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not no_body:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not no_body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _echo(self):
        body = self._read_body()
        doc = {
            "method": self.command,
            "path": self._raw_path(),
            "query": self._raw_query(),
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_b64": base64.b64encode(body).decode("ascii"),
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "env": {k: os.environ.get(k) for k in ("PORT", "UP_STAGE", "UP_RESTARTS")},
        }
        self._send(200, json.dumps(doc).encode("utf-8"), "application/json")

    # -- routing ----------------------------------------------------------------
    def _handle(self):
        path = self._raw_path()
        parts = path.split("/")  # "/status/404" -> ["", "status", "404"]
        route = parts[1] if len(parts) > 1 else ""
        arg = parts[2] if len(parts) > 2 else None
        # The handler object lives as long as the connection: forget the last body.
        self._body = None
        # Always consume the request body first so the connection stays usable.
        body = self._read_body()

        if route == "status" and arg is not None:
            try:
                code = int(arg)
            except ValueError:
                code = -1
            if not 200 <= code <= 999:
                return self._send(400, f"bad status {arg}".encode())
            return self._send(code, f"status {code}".encode())

        if path == "/cookies":
            return self._send(
                200,
                b"cookies",
                headers=[
                    ("Set-Cookie", "a=1; Path=/"),
                    ("Set-Cookie", "b=2; Path=/; HttpOnly; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
                    ("X-Multi", "one"),
                    ("X-Multi", "two"),
                ],
            )

        if route == "bytes" and arg is not None:
            try:
                n = int(arg)
            except ValueError:
                n = -1
            if n < 0:
                return self._send(400, f"bad length {arg}".encode())
            data = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
            return self._send(200, data, "application/octet-stream")

        if path == "/mirror":
            ctype = self.headers.get("Content-Type") or "application/octet-stream"
            return self._send(200, body, ctype)

        if route == "text" and arg is not None:
            try:
                data = "café".encode(arg)
            except LookupError:
                return self._send(400, f"unknown charset {arg}".encode())
            return self._send(200, data, f"text/plain; charset={arg}")

        if route == "sleep" and arg is not None:
            try:
                ms = int(arg)
            except ValueError:
                return self._send(400, f"bad duration {arg}".encode())
            time.sleep(ms / 1000.0)
            return self._echo()

        if route == "exit" and arg is not None:
            try:
                code = int(arg)
            except ValueError:
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

        if path == "/log":
            out("plain line from app")
            out(json.dumps({"level": "warn", "msg": "json line from app", "user": "alice"},
                           separators=(",", ":")))
            err("error line from app")
            return self._echo()

        return self._echo()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def main():
    port = int(os.environ.get("PORT") or "3000")
    if os.environ.get("ECHO_FAIL_START") == "1":
        err("fatal: cannot start (ECHO_FAIL_START)")
        sys.exit(3)
    delay_ms = int(os.environ.get("ECHO_START_DELAY_MS") or "0")
    if delay_ms > 0:
        time.sleep(delay_ms / 1000.0)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    httpd = Server(("127.0.0.1", port), EchoHandler)
    err(f"{NAME} listening on {port}")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    main()
