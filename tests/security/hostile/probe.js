// The probes of the hostile app, shared by its install script, its build script and its API route.
// Each result is "reached" (the escape worked) or "refused: <why>". Targets come from PROBE_* variables.
const fs = require("fs");
const net = require("net");

function tcp(host, port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, timeout: 3000 });
    sock.on("connect", () => { sock.destroy(); resolve("reached"); });
    sock.on("timeout", () => { sock.destroy(); resolve("refused: timeout"); });
    sock.on("error", (e) => resolve(`refused: ${e.code || e.message}`));
  });
}

function pgLogin(user, port) {
  // "reached" when PostgreSQL on 127.0.0.1:port answers AuthenticationOk: a login with no password
  return new Promise((resolve) => {
    const params = Buffer.from(`user\0${user}\0database\0postgres\0\0`);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(8 + params.length, 0);
    head.writeUInt32BE(196608, 4);
    const sock = net.connect({ host: "127.0.0.1", port, timeout: 3000 });
    sock.on("connect", () => sock.write(Buffer.concat([head, params])));
    sock.on("data", (data) => {
      sock.destroy();
      resolve(data[0] === 0x52 && data.readUInt32BE(5) === 0 ? "reached" : "refused: login error");
    });
    sock.on("timeout", () => { sock.destroy(); resolve("refused: timeout"); });
    sock.on("error", (e) => resolve(`refused: ${e.code || e.message}`));
  });
}

function otherHost(port) {
  // At run time the edge's port answers (the app's own origin); another host name must get its 404.
  return new Promise((resolve) => {
    const headers = { host: `victim.localhost:${port}` };
    const req = require("http").get({ host: "127.0.0.1", port, path: "/", headers, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 404 ? "refused: 404" : `reached: ${res.statusCode}`);
    });
    req.on("timeout", () => { req.destroy(); resolve("refused: timeout"); });
    req.on("error", (e) => resolve(`refused: ${e.code || e.message}`));
  });
}

const attempt = (fn) => { try { fn(); return "reached"; } catch (e) { return `refused: ${e.code || e.message}`; } };

function targets() {
  // From the app's variables; at install time (which runs without them) from the app's own files.
  let own = {};
  try { own = JSON.parse(fs.readFileSync(`${__dirname}/targets.json`, "utf8")); } catch (e) { /* bundled */ }
  return { ...own, ...process.env };
}

async function probe() {
  const env = targets();
  const ws = env.PROBE_WORKSPACE || "/nonexistent";
  const capEff = /CapEff:\s*(\S+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))[1];
  return {
    capabilities: /^0+$/.test(capEff) ? "refused: none" : "reached",
    etc_shadow: attempt(() => fs.readFileSync("/etc/shadow")),
    ssl_private: attempt(() => fs.readdirSync("/etc/ssl/private")),
    // the app's own database folder is bound at its path under the workspace, so an empty skeleton of
    // that path exists inside: what must not be there is the workspace's content
    workspace: attempt(() => {
      const seen = fs.readdirSync(ws).filter((n) => ["vault.key", "launchdeck.duckdb", "edge", "builds"].includes(n));
      if (seen.length === 0) throw new Error(`only ${fs.readdirSync(ws).join(",")}`);
    }),
    vault_key: attempt(() => fs.readFileSync(`${ws}/vault.key`)),
    store: attempt(() => fs.readFileSync(`${ws}/launchdeck.duckdb`)),
    other_tenant_db: attempt(() => fs.readFileSync(`${ws}/databases/victim/victim.db`)),
    postgres_as_postgres: await pgLogin("postgres", 5432),
    // the server the engine uses (its own cluster when the host's trusts loopback)
    engine_postgres_as_postgres: await pgLogin("postgres", Number(env.PROBE_PG_PORT || 5432)),
    engine_api: await tcp("127.0.0.1", Number(env.PROBE_ENGINE_PORT)),
    edge: await otherHost(Number(env.PROBE_EDGE_PORT)),
    internet: await tcp("1.1.1.1", 443),
  };
}

module.exports = { probe };

if (require.main === module) {
  probe().then((results) => {
    fs.mkdirSync("public", { recursive: true });
    fs.writeFileSync(process.argv[2], JSON.stringify(results));
    const first = process.argv[3]; // kept by the first run only: the install step's (node_modules survives it)
    if (first && !fs.existsSync(first)) {
      fs.mkdirSync(require("path").dirname(first), { recursive: true });
      fs.writeFileSync(first, JSON.stringify(results));
    }
  });
}
