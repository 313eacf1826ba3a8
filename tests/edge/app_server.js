// A tiny app server for the edge host tests: answers with its version, pid and the Host it saw.
const http = require("http");
const version = process.env.APP_VERSION || "unset";
const waiting = [];
http
  .createServer((req, res) => {
    if (req.url === "/api/health") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true, version }));
      return;
    }
    if (req.url === "/stream") {
      // first chunk now, the rest only once /release is requested: a buffering proxy would hang here
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first;");
      waiting.push(res);
      return;
    }
    if (req.url === "/release") {
      for (const r of waiting.splice(0)) r.end("last");
      res.end("released");
      return;
    }
    if (req.url === "/probe") {
      res.end(require("fs").existsSync(process.env.PROBE_FILE || "/nonexistent") ? "visible" : "hidden");
      return;
    }
    if (req.url === "/secret-env") {
      res.end(process.env.CREDENTIALS_ENCRYPTION_KEY || "none");
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "set-cookie": ["a=1", "b=2"] });
      res.end(`server ${version} pid ${process.pid} host ${req.headers.host} ${req.method} ${req.url} body=${Buffer.concat(chunks).length} xff=${req.headers["x-forwarded-for"]}`);
    });
  })
  .listen(Number(process.env.PORT), process.env.HOSTNAME || "127.0.0.1");
