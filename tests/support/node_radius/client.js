// One RADIUS exchange with node-radius (npm "radius"), a RADIUS implementation written by
// others, for tests/test_peers_radius_proxy.py.
//
// stdin: {"host", "port", "secret", "code", "attributes": [[name, value], ...],
//         "proxy_states": [hex, ...], "sends": n, "mikrotik_dictionary": path}
// The request (Message-Authenticator added by node-radius for an Access-Request) is sent
// `sends` times, the same bytes from the same socket, as a proxy retransmits; each reply
// is checked with radius.verify_response (Response Authenticator and
// Message-Authenticator). stdout: {"request": hex, "replies": [{"hex", "code",
// "verified", "attributes": {name: value}, "proxy_states": [hex, ...]}, ...]}; a send that
// got nothing within 3 s gives null.
"use strict";

const dgram = require("dgram");
const radius = require("radius");

const PROXY_STATE = 33;

function readInput() {
  return JSON.parse(require("fs").readFileSync(0, "utf8"));
}

function encodeRequest(args) {
  const attributes = args.attributes.map(([name, value]) => [name, value]);
  for (const state of args.proxy_states || []) {
    attributes.push(["Proxy-State", Buffer.from(state, "hex")]);
  }
  return radius.encode({
    code: args.code,
    secret: args.secret,
    identifier: args.identifier === undefined ? 7 : args.identifier,
    attributes: attributes,
    add_message_authenticator: args.code === "Access-Request",
  });
}

function describe(request, data, secret) {
  const verified = radius.verify_response({
    request: Buffer.from(request), response: Buffer.from(data), secret: secret,
  });
  const decoded = radius.decode({ packet: data, secret: secret });
  const attributes = {};
  for (const [name, value] of Object.entries(decoded.attributes)) {
    attributes[name] = Buffer.isBuffer(value) ? value.toString("hex") : value;
  }
  const states = decoded.raw_attributes
    .filter((attr) => attr[0] === PROXY_STATE)
    .map((attr) => attr[1].toString("hex"));
  return { hex: data.toString("hex"), code: decoded.code, verified: verified,
           attributes: attributes, proxy_states: states };
}

function exchange(socket, request, args) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { socket.removeAllListeners("message"); resolve(null); },
                             3000);
    socket.once("message", (data) => { clearTimeout(timer); resolve(data); });
    socket.send(request, args.port, args.host);
  });
}

async function main() {
  const args = readInput();
  if (args.mikrotik_dictionary) {
    radius.add_dictionary(args.mikrotik_dictionary);
  }
  const request = encodeRequest(args);
  const socket = dgram.createSocket("udp4");
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const replies = [];
  for (let n = 0; n < (args.sends || 1); n++) {
    const data = await exchange(socket, request, args);
    replies.push(data === null ? null : describe(request, data, args.secret));
  }
  socket.close();
  process.stdout.write(JSON.stringify({ request: request.toString("hex"), replies: replies }));
}

main().catch((error) => { process.stderr.write(String(error.stack || error)); process.exit(1); });
