// Runs in the background inside a build's sandbox (own network namespace, loopback only): listens on
// 127.0.0.1 ports and pipes each to a Unix socket bound in from outside, i.e. the engine's registry-only
// egress proxy (npm's https_proxy) and, for an app with a local PostgreSQL, its role-checking forwarder.
// Writes the ready file once every port listens. Usage: node forward.js READY PORT=SOCKET...
"use strict";
const fs = require("fs");
const net = require("net");
const [ready, ...pairs] = process.argv.slice(2);
let waiting = pairs.length;
for (const pair of pairs) {
  const [port, path] = pair.split("=");
  net
    .createServer((client) => {
      const upstream = net.connect({ path });
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    })
    .listen(Number(port), "127.0.0.1", () => {
      if (--waiting === 0) fs.writeFileSync(ready, "");
    });
}
if (waiting === 0) fs.writeFileSync(ready, "");
