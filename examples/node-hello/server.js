// node-hello: a plain Node http server, no dependencies. It knows nothing about Lambda:
// it listens on 127.0.0.1:$PORT. `/` says hello; other paths follow the echo contract of
// examples/README.md (the same as python-echo).
'use strict';

const http = require('node:http');

const NAME = 'node-hello';
const port = Number(process.env.PORT || 3000);

function send(req, res, status, body, contentType, extra) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const headers = [];
  for (const [k, v] of extra || []) headers.push(k, v);
  // No body (and no length) for 204 and 304; HEAD gets the GET's headers.
  if (status !== 204 && status !== 304) {
    headers.push('Content-Type', contentType || 'text/plain; charset=utf-8');
    headers.push('Content-Length', String(buf.length));
  }
  res.writeHead(status, headers);
  res.end(status === 204 || status === 304 || req.method === 'HEAD' ? undefined : buf);
  console.log(`${NAME} ${req.method} ${rawPath(req)} ${status}`);
}

function rawPath(req) {
  const i = req.url.indexOf('?');
  return i < 0 ? req.url : req.url.slice(0, i);
}

function echo(req, res, body, extra) {
  const i = req.url.indexOf('?');
  const headers = [];
  for (let j = 0; j < req.rawHeaders.length; j += 2) {
    headers.push([req.rawHeaders[j], req.rawHeaders[j + 1]]);
  }
  const doc = {
    method: req.method,
    path: rawPath(req),
    query: i < 0 ? '' : req.url.slice(i + 1),
    headers,
    body_b64: body.toString('base64'),
    pid: process.pid,
    cwd: process.cwd(),
    env: {
      PORT: process.env.PORT ?? null,
      UP_STAGE: process.env.UP_STAGE ?? null,
      UP_RESTARTS: process.env.UP_RESTARTS ?? null,
    },
    ...extra,
  };
  send(req, res, 200, JSON.stringify(doc), 'application/json');
}

function handle(req, res, body) {
  const path = rawPath(req);
  const [, route = '', arg] = path.split('/');

  if (path === '/') {
    return send(req, res, 200, JSON.stringify({ hello: 'node', path }), 'application/json');
  }
  if (route === 'status' && arg !== undefined) {
    const code = Number.parseInt(arg, 10);
    if (!(code >= 200 && code <= 999)) return send(req, res, 400, `bad status ${arg}`);
    return send(req, res, code, `status ${code}`);
  }
  if (path === '/cookies') {
    return send(req, res, 200, 'cookies', null, [
      ['Set-Cookie', 'a=1; Path=/'],
      ['Set-Cookie', 'b=2; Path=/; HttpOnly; Expires=Wed, 21 Oct 2037 07:28:00 GMT'],
      ['X-Multi', 'one'],
      ['X-Multi', 'two'],
    ]);
  }
  if (route === 'bytes' && arg !== undefined) {
    const n = Number.parseInt(arg, 10);
    if (!(n >= 0)) return send(req, res, 400, `bad length ${arg}`);
    const buf = Buffer.alloc(n);
    for (let i = 0; i < n; i++) buf[i] = i % 256;
    return send(req, res, 200, buf, 'application/octet-stream');
  }
  if (path === '/mirror') {
    return send(req, res, 200, body, req.headers['content-type'] || 'application/octet-stream');
  }
  if (route === 'text' && arg !== undefined) {
    const enc = { 'utf-8': 'utf8', utf8: 'utf8', 'latin-1': 'latin1', latin1: 'latin1', 'iso-8859-1': 'latin1' }[arg.toLowerCase()];
    if (!enc) return send(req, res, 400, `unknown charset ${arg}`);
    return send(req, res, 200, Buffer.from('café', enc), `text/plain; charset=${arg}`);
  }
  if (route === 'sleep' && arg !== undefined) {
    const ms = Number.parseInt(arg, 10);
    if (!(ms >= 0)) return send(req, res, 400, `bad duration ${arg}`);
    return setTimeout(() => echo(req, res, body), ms);
  }
  if (route === 'exit' && arg !== undefined) {
    const code = Number.parseInt(arg, 10);
    return process.exit(Number.isNaN(code) ? 1 : code);
  }
  if (path === '/log') {
    console.log('plain line from app');
    console.log(JSON.stringify({ level: 'warn', msg: 'json line from app', user: 'alice' }));
    console.error('error line from app');
  }
  return echo(req, res, body);
}

function start() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });
  server.listen(port, '127.0.0.1', () => {
    console.error(`${NAME} listening on ${port}`);
  });
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}

if (process.env.ECHO_FAIL_START === '1') {
  console.error('fatal: cannot start (ECHO_FAIL_START)');
  process.exit(3);
}
setTimeout(start, Number(process.env.ECHO_START_DELAY_MS || 0));
