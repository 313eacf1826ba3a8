// A hostile app server: /probe tries each escape from its sandbox and reports, for each, either
// "reached" (the escape worked) or "refused: <why>". The tests assert that nothing is reached.
// Targets come from PROBE_* variables (the test knows the workspace and the ports).
const http = require("http");
const fs = require("fs");
const net = require("net");
const { execFileSync } = require("child_process");

function tcp(host, port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, timeout: 2000 });
    sock.on("connect", () => { sock.destroy(); resolve("reached"); });
    sock.on("timeout", () => { sock.destroy(); resolve("refused: timeout"); });
    sock.on("error", (e) => resolve(`refused: ${e.code || e.message}`));
  });
}

function unix(path) {
  return new Promise((resolve) => {
    const sock = net.connect({ path });
    sock.on("connect", () => { sock.destroy(); resolve("reached"); });
    sock.on("error", (e) => resolve(`refused: ${e.code || e.message}`));
  });
}

function pgLogin(user, database) {
  // A PostgreSQL startup message on 127.0.0.1:PROBE_PG_PORT (the server's port, forwarded inside):
  // "reached" when the server answers AuthenticationOk (R, code 0), i.e. a login without a password went
  // through; "password requested" when the server itself asks for one (the forwarder let it pass).
  return new Promise((resolve) => {
    const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(8 + params.length, 0);
    head.writeUInt32BE(196608, 4);
    const sock = net.connect({ host: "127.0.0.1", port: Number(process.env.PROBE_PG_PORT || 5432), timeout: 3000 });
    sock.on("connect", () => sock.write(Buffer.concat([head, params])));
    sock.on("data", (data) => {
      sock.destroy();
      if (data[0] === 0x52 && data.readUInt32BE(5) === 0) resolve("reached");
      else if (data[0] === 0x52) resolve("password requested");
      else resolve(`refused: ${String.fromCharCode(data[0])} ${data.toString("latin1").replace(/[^ -~]/g, " ").trim()}`);
    });
    sock.on("timeout", () => { sock.destroy(); resolve("refused: timeout"); });
    sock.on("error", (e) => resolve(`refused: ${e.code || e.message}`));
  });
}

function httpGet(host, port, hostHeader, path) {
  // "reached" when the edge answered a request for hostHeader with anything but its 404 page
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, headers: { host: hostHeader }, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 404 ? "refused: 404" : `reached: ${res.statusCode}`);
    });
    req.on("timeout", () => { req.destroy(); resolve("refused: timeout"); });
    req.on("error", (e) => resolve(`refused: ${e.code || e.message}`));
  });
}

async function byName(url) {
  // what generated code does (Clerk's middleware, NextAuth): fetch by host name
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return `reached: ${res.status} ${await res.text()}`;
  } catch (e) {
    return `refused: ${e.cause?.code || e.message}`;
  }
}

function read(path) {
  try { fs.readFileSync(path); return "reached"; } catch (e) { return `refused: ${e.code}`; }
}
function list(path) {
  try { fs.readdirSync(path); return "reached"; } catch (e) { return `refused: ${e.code}`; }
}
function write(path) {
  try { fs.writeFileSync(path, "x"); return "reached"; } catch (e) { return `refused: ${e.code}`; }
}
function run(cmd, args) {
  try { execFileSync(cmd, args, { stdio: "pipe" }); return "reached"; } catch (e) { return `refused: ${e.status ?? e.code}`; }
}

async function probe() {
  const env = process.env;
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const capEff = /CapEff:\s*(\S+)/.exec(status)[1];
  const results = {
    capabilities: /^0+$/.test(capEff) ? "refused: none" : "reached",
    etc_shadow: read("/etc/shadow"),
    ssl_private: list("/etc/ssl/private"),
    workspace: list(env.PROBE_WORKSPACE),
    vault_key: read(env.PROBE_WORKSPACE + "/vault.key"),
    operator_token: read(env.PROBE_WORKSPACE + "/operator.token"),
    other_database: read(env.PROBE_OTHER_DB || "/nonexistent"),
    other_socket: await unix(env.PROBE_OTHER_SOCKET || "/nonexistent"),
    postgres_as_superuser: await pgLogin("postgres", "postgres"),
    other_app_role: await pgLogin(env.PROBE_OTHER_ROLE || "ld_app_other", env.PROBE_OTHER_ROLE || "ld_app_other"),
    engine_api: await tcp("127.0.0.1", Number(env.PROBE_ENGINE_PORT)),
    // the edge's port answers inside (the app's own origin), but never for another app's host name
    other_app_via_edge: await httpGet("127.0.0.1", Number(env.PROBE_EDGE_PORT), `victim.localhost:${env.PROBE_EDGE_PORT}`, "/api/health"),
    other_app_by_name: await byName(`http://victim.localhost:${env.PROBE_EDGE_PORT}/api/health`),
    outside_network: await tcp("1.1.1.1", 443),
    write_own_build: write("/app/written-by-the-app"),
    unmount_tmp: run("/usr/bin/umount", ["/tmp"]),
    remount_usr_rw: run("/usr/bin/mount", ["-o", "remount,rw", "/usr"]),
    new_user_namespace: run("/usr/bin/unshare", ["--user", "--map-root-user", "/usr/bin/true"]),
  };
  const own = {};
  if (env.PROBE_OWN_ROLE) own.own_role = await pgLogin(env.PROBE_OWN_ROLE, env.PROBE_OWN_ROLE);
  if (env.PROBE_OWN_DB) own.own_database = write(env.PROBE_OWN_DB + "-probe");
  if (env.PROBE_OWN_ORIGIN) own.own_origin = await byName(env.PROBE_OWN_ORIGIN);
  return { results, own, uid: process.getuid() };
}

http
  .createServer(async (req, res) => {
    if (req.url === "/probe") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(await probe()));
      return;
    }
    if (req.url === "/fork-bomb") {
      // more processes than the server's limit: spawning must start failing
      let failed = 0;
      const children = [];
      for (let i = 0; i < 400; i++) {
        try {
          const child = require("child_process").spawn("/usr/bin/sleep", ["5"]);
          child.on("error", () => failed++);
          children.push(child);
        } catch (e) { failed++; }
      }
      await new Promise((r) => setTimeout(r, 500));
      const alive = children.filter((c) => c.pid && c.exitCode === null).length;
      for (const c of children) try { c.kill("SIGKILL"); } catch (e) {}
      res.end(JSON.stringify({ alive, failed }));
      return;
    }
    res.end("probe server");
  })
  .listen(Number(process.env.PORT), process.env.HOSTNAME);
