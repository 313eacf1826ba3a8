// Runs first inside an app server's sandbox (see engine/edge/sandbox.py). The sandbox has its own
// network namespace with only a loopback, so the edge cannot reach a TCP port in it: this launcher
// starts the app's command on 127.0.0.1:PORT inside (in this process when it is `node <script>`), and once that port answers, listens on the Unix
// socket the edge connects to (a folder bound in from outside, owned by this server's uid) and pipes
// each connection through. If the app has a local PostgreSQL database, it also listens on
// 127.0.0.1:5432 inside and pipes to the engine's per-app forwarder, which admits only the app's role.
// And it listens on 127.0.0.1:<edge port> inside, piped to the edge, which serves that connection only
// the app's own host names (its /etc/hosts names them 127.0.0.1): the app can fetch its own origin.
// Its configuration (the app's variables included) comes from a file bwrap copied in from a memfd:
// never on a command line, never in the launcher's outer environment.
"use strict";
const fs = require("fs");
const net = require("net");
const path = require("path");
const { spawn } = require("child_process");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const port = config.port;

function pipe(client, target) {
  client.setNoDelay?.(true);
  const upstream = net.connect(target);
  upstream.on("connect", () => upstream.setNoDelay?.(true));
  client.pipe(upstream);
  upstream.pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
}

if (config.pg_socket) {
  net
    .createServer((client) => pipe(client, { path: config.pg_socket }))
    .on("error", (err) => console.error(`launchdeck: database forwarder: ${err.message}`))
    .listen(config.pg_port, "127.0.0.1");
}

if (config.origin_socket) {
  net
    .createServer((client) => pipe(client, { path: config.origin_socket }))
    .on("error", (err) => console.error(`launchdeck: own-origin forwarder: ${err.message}`))
    .listen(config.origin_port, "127.0.0.1");
}

const appEnv = { ...config.env, PORT: String(port), HOSTNAME: "127.0.0.1" };
const [program, ...args] = config.command;
// `node <script> ...` (a Next standalone server.js, `next start`) runs in this process: one Node start
// instead of two on a cold start, one process less per server. Anything else is spawned.
if ((program === "node" || program.endsWith("/node")) && args.length > 0 && !args[0].startsWith("-")) {
  const script = path.resolve(args[0]);
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, appEnv);
  process.argv = [process.argv[0], script, ...args.slice(1)];
  setImmediate(() => require(script));
} else {
  const child = spawn(program, args, { env: appEnv, stdio: "inherit" });
  child.on("error", (err) => {
    console.error(`launchdeck: could not run ${program}: ${err.message}`);
    process.exit(127);
  });
  child.on("exit", (code, signal) => process.exit(code === null ? 128 + (signal ? 15 : 0) : code));
  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => child.kill(sig));
}

function waitForApp() {
  const probe = net.connect(port, "127.0.0.1");
  probe.on("connect", () => {
    probe.destroy();
    net
      .createServer((client) => pipe(client, { port, host: "127.0.0.1" }))
      .on("error", (err) => {
        console.error(`launchdeck: cannot listen on the edge socket: ${err.message}`);
        process.exit(1);
      })
      .listen(config.socket);
  });
  probe.on("error", () => setTimeout(waitForApp, 10));
}
waitForApp();
