// A test driver, not a product client: drives the gateway with the official socket.io-client.
//
//   node chat-client.mjs BASE_URL ACCESS_TOKEN [ROOM_ID] < steps.jsonl
//
// stdin holds one JSON step per line, run in order once connected (ROOM_ID is the default room_id):
//   {"op": "subscribe", "last_seq": 3}            room:subscribe; retried while the gateway answers not_member
//                                                 (it learns memberships from room events, a moment late)
//   {"op": "send", "client_msg_id": "b-1", "body": "hi"}   message:send
//   {"op": "wait", "event": "message:new", "count": 2}     until that many such events arrived since connecting
//   {"op": "oversize", "bytes": 70000}            message:send with a body of that many bytes, no ack awaited
// CHAT_CLIENT_TRANSPORT picks the transport: websocket (the default) or polling.
// stdout gets one JSON line per happening: {"type": "connect"}, {"type": "event", event, data},
// {"type": "ack", event, ack}, {"type": "waited", event, count}, then {"type": "done"} and exit 0 at the end of stdin.
// Failures: {"type": "connect_error", code, message, data} exits 2; {"type": "error"} or
// {"type": "disconnect", reason, description} exits 1.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [base, token, roomId] = process.argv.slice(2);
if (!base || !token) {
  process.stderr.write("usage: node chat-client.mjs BASE_URL ACCESS_TOKEN [ROOM_ID] < steps.jsonl\n");
  process.exit(64);
}
const TIMEOUT_MS = Number(process.env.CHAT_CLIENT_TIMEOUT_MS ?? 15000);

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
let finishing = false;
function finish(code, line) {
  finishing = true;
  socket.disconnect();
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code));
}

const transport = process.env.CHAT_CLIENT_TRANSPORT ?? "websocket";
const socket = io(base, { auth: { token }, transports: [transport], reconnection: false });
const received = [];
socket.onAny((event, data) => {
  received.push(event);
  print({ type: "event", event, data });
});
socket.on(
  "disconnect",
  (reason, details) => finishing || finish(1, { type: "disconnect", reason, description: details?.description ?? null }),
);
socket.on("connect_error", (err) =>
  finish(2, { type: "connect_error", code: err.data?.code ?? null, message: err.message, data: err.data ?? null }),
);
const connected = new Promise((resolve) => socket.once("connect", resolve));

async function call(event, payload) {
  const ack = await socket.timeout(TIMEOUT_MS).emitWithAck(event, payload);
  print({ type: "ack", event, ack });
  return ack;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function within(what, check) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const result = await check();
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

const steps = {
  subscribe: ({ room_id = roomId, last_seq }) =>
    within("room:subscribe while not_member", async () => {
      const ack = await socket.timeout(TIMEOUT_MS).emitWithAck("room:subscribe", { room_id, last_seq });
      if (ack?.error?.code === "not_member") return undefined;
      print({ type: "ack", event: "room:subscribe", ack });
      return ack;
    }),
  send: ({ room_id = roomId, client_msg_id, body }) => call("message:send", { room_id, client_msg_id, body }),
  oversize: ({ room_id = roomId, bytes }) => {
    socket.emit("message:send", { room_id, client_msg_id: "oversize", body: "x".repeat(bytes) });
  },
  wait: ({ event = "message:new", count = 1 }) =>
    within(`${count} ${event}`, () => {
      if (received.filter((e) => e === event).length < count) return undefined;
      print({ type: "waited", event, count });
      return true;
    }),
};

try {
  await connected;
  print({ type: "connect" });
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const { op, ...args } = JSON.parse(line);
    if (!(op in steps)) throw new Error(`unknown op ${JSON.stringify(op)}`);
    await steps[op](args);
  }
  finish(0, { type: "done" });
} catch (err) {
  finish(1, { type: "error", message: String(err?.message ?? err) });
}
