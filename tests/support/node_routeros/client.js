// Run RouterOS API sentences with node-routeros against a router; print the answers as JSON.
// Usage: node client.js '{"host": ..., "port": ..., "user": ..., "password": ...,
//                         "commands": [["/ip/hotspot/host/print", "?address=10.5.50.12"], ...]}'
// Each command's answer is {"rows": [...]} or {"trap": {"message", "category"}}.
"use strict";
const { RouterOSAPI } = require("node-routeros");

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const api = new RouterOSAPI({ host: spec.host, port: spec.port, user: spec.user,
                                password: spec.password, timeout: 5 });
  try {
    await api.connect();
  } catch (error) {
    process.stdout.write(JSON.stringify({ login: { error: String(error.message || error) } }));
    return;
  }
  const answers = [];
  for (const [path, ...words] of spec.commands) {
    try {
      answers.push({ rows: await api.write(path, words) });
    } catch (error) {
      answers.push({ trap: { message: error.message, category: error.errno ?? null } });
    }
  }
  await api.close();
  process.stdout.write(JSON.stringify({ login: { ok: true }, answers }));
}

main().catch((error) => { console.error(error); process.exit(1); });
