// The throughput benchmark's load generator (bench/throughput.py): real Socket.IO connections with the official
// socket.io-client, in one Node process, driven over stdin/stdout with one JSON object per line.
//
//   node load.mjs < commands.jsonl
//
// Commands, answered in order, each by one JSON line:
//   {"op": "connect", "seats": [{"url", "token", "room"}…], "concurrency": 50}
//       closes the sockets of an earlier connect, then opens one socket per seat (websocket transport, no
//       multiplexing) and subscribes it to its room
//       → {"type": "connected", "connected", "failed", "errors", "seconds"}
//   {"op": "step", "id": "s1", "rate": 100, "seconds": 10, "quiet_ms": 3000, "limit_ms": 60000}
//       sends message:send at `rate` per second on an absolute schedule, rooms in turn and in each room its seats
//       in turn, then waits until every expected delivery arrived (or nothing arrived for quiet_ms, or limit_ms)
//       → {"type": "step", sent, acked, refused: {code: n}, expected, delivered, lost, duplicates, out_of_order,
//          receive: {p50, p90, p99, p999, max}, ack: {…}, stamped: {…}, seconds, drained_ms}
//       (stamped: send → the messages service's created_at, read at each room's first seat, once per message)
//   {"op": "idle", "count": 200, "warmup": 10}
//       the first two seats of the first room: one sends, waits until the other received it and the ack came,
//       then the next (after `warmup` uncounted ones) → {"type": "idle", "count", "receive", "ack", "stamped"}
//   {"op": "close"} → {"type": "closed"} and exit
//
// Latency is read on one monotonic clock: the send time (performance.now()) travels in the message body.

import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const PAD = "x".repeat(96);
const ACK_TIMEOUT_MS = Number(process.env.BENCH_ACK_TIMEOUT_MS ?? 30000);
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const seats = []; // {socket, room, lastSeq}
const byRoom = new Map(); // room → seat indices
let current = null; // the step being measured

function percentiles(values) {
  if (values.length === 0) return { n: 0, p50: null, p90: null, p99: null, p999: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const round = (x) => Math.round(x * 100) / 100;
  return {
    n: sorted.length,
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    p999: round(at(0.999)),
    max: round(sorted[sorted.length - 1]),
  };
}

function onMessage(seat, data) {
  const now = performance.now();
  if (!data || typeof data.body !== "string") return;
  const seq = data.seq;
  if (typeof seq === "number") {
    if (seat.lastSeq !== 0 && seq <= seat.lastSeq) {
      if (current) current.duplicates += 1;
      return;
    }
    if (seat.lastSeq !== 0 && seq !== seat.lastSeq + 1 && current) current.outOfOrder += 1;
    seat.lastSeq = seq;
  }
  const space = data.body.indexOf(" ");
  const [tag, stamp] = [data.body.slice(0, space), data.body.slice(space + 1, data.body.indexOf(" ", space + 1))];
  if (current && tag === current.id) {
    current.delivered += 1;
    current.receive.push(now - Number(stamp));
    current.lastDelivery = now;
    if (seat.first && typeof data.created_at === "string") {
      current.stamped.push(stampedMs(data.created_at, Number(stamp)));
    }
  }
}

async function open(seat, index) {
  const socket = io(seat.url, {
    auth: { token: seat.token },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: 60000,
  });
  const entry = { socket, room: seat.room, lastSeq: 0, first: false };
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect: ${err.data?.code ?? err.message}`)));
  });
  socket.on("message:new", (data) => onMessage(entry, data));
  for (let attempt = 0; ; attempt += 1) {
    const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("room:subscribe", { room_id: seat.room });
    if (ack?.ok) {
      entry.lastSeq = typeof ack.seq === "number" ? ack.seq : 0;
      break;
    }
    // The gateway learns memberships from room events, a moment after the join.
    if (ack?.error?.code !== "not_member" || attempt > 100) throw new Error(`subscribe: ${JSON.stringify(ack)}`);
    await sleep(100);
  }
  seats[index] = entry;
  if (!byRoom.has(seat.room)) byRoom.set(seat.room, []);
  byRoom.get(seat.room).push(index);
}

async function connect({ seats: wanted, concurrency = 50 }) {
  // A new shape starts from nothing: the last shape's sockets would otherwise stay open and keep their rooms.
  for (const seat of seats) seat?.socket.disconnect();
  seats.length = 0;
  byRoom.clear();
  const began = performance.now();
  const errors = [];
  let next = 0;
  async function worker() {
    while (next < wanted.length) {
      const index = next++;
      try {
        await open(wanted[index], index);
      } catch (error) {
        errors.push(String(error.message ?? error));
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, wanted.length) }, worker));
  for (const indices of byRoom.values()) {
    indices.sort((a, b) => a - b);
    seats[indices[0]].first = true;
  }
  print({
    type: "connected",
    connected: wanted.length - errors.length,
    failed: errors.length,
    errors: errors.slice(0, 5),
    seconds: (performance.now() - began) / 1000,
  });
}

function send(step, seat, body, clientMsgId, onAck) {
  const sentAt = performance.now();
  seat.socket.timeout(ACK_TIMEOUT_MS).emit(
    "message:send",
    { room_id: seat.room, client_msg_id: clientMsgId, body },
    (err, ack) => onAck(err, ack, performance.now() - sentAt),
  );
}

async function step({ id, rate, seconds, quiet_ms: quietMs = 3000, limit_ms: limitMs = 60000 }) {
  const rooms = [...byRoom.keys()];
  const roomTurn = new Map(rooms.map((room) => [room, 0]));
  const count = Math.max(1, Math.round(rate * seconds));
  const state = {
    id,
    sent: 0,
    acked: 0,
    answered: 0,
    refused: {},
    expected: 0,
    delivered: 0,
    duplicates: 0,
    outOfOrder: 0,
    receive: [],
    ack: [],
    stamped: [],
    lastDelivery: performance.now(),
  };
  current = state;
  const began = performance.now();
  for (let i = 0; i < count; i += 1) {
    const due = began + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const room = rooms[i % rooms.length];
    const members = byRoom.get(room);
    const turn = roomTurn.get(room);
    roomTurn.set(room, turn + 1);
    const seat = seats[members[turn % members.length]];
    const body = `${id} ${performance.now().toFixed(3)} ${PAD}`;
    state.sent += 1;
    send(state, seat, body, `${id}-${i}`, (err, ack, ms) => {
      state.answered += 1;
      if (err) {
        state.refused.ack_timeout = (state.refused.ack_timeout ?? 0) + 1;
      } else if (ack?.ok) {
        state.acked += 1;
        state.expected += members.length;
        state.ack.push(ms);
      } else {
        const code = ack?.error?.code ?? "malformed_ack";
        state.refused[code] = (state.refused[code] ?? 0) + 1;
      }
    });
  }
  const sendSeconds = (performance.now() - began) / 1000;
  const drainStart = performance.now();
  for (;;) {
    await sleep(20);
    const now = performance.now();
    if (state.answered === state.sent && state.delivered >= state.expected) break;
    if (now - state.lastDelivery > quietMs && now - drainStart > quietMs) break;
    if (now - drainStart > limitMs) break;
  }
  current = null;
  print({
    type: "step",
    id,
    rate,
    sent: state.sent,
    acked: state.acked,
    answered: state.answered,
    refused: state.refused,
    expected: state.expected,
    delivered: state.delivered,
    lost: Math.max(0, state.expected - state.delivered),
    duplicates: state.duplicates,
    out_of_order: state.outOfOrder,
    receive: percentiles(state.receive),
    ack: percentiles(state.ack),
    stamped: percentiles(state.stamped),
    send_seconds: sendSeconds,
    drained_ms: performance.now() - drainStart,
  });
}

// Milliseconds from a send at `sentAt` (performance.now()) to the messages service's created_at (same machine, same
// clock).
function stampedMs(createdAt, sentAt) {
  return (epochMicros(createdAt) - (performance.timeOrigin + sentAt) * 1000) / 1000;
}

// Microseconds since the epoch of an ISO instant with microseconds (Date.parse keeps milliseconds only).
function epochMicros(iso) {
  const match = /\.(\d+)Z$/.exec(iso);
  const fraction = match ? Number(match[1].padEnd(6, "0").slice(0, 6)) : 0;
  return Math.floor(Date.parse(iso) / 1000) * 1e6 + fraction;
}

async function idle({ count = 200, id = "idle", warmup = 10 }) {
  const room = [...byRoom.keys()][0];
  const [a, b] = byRoom.get(room).slice(0, 2).map((i) => seats[i]);
  const receive = [];
  const acks = [];
  const stamped = [];
  for (let i = -warmup; i < count; i += 1) {
    const sentAt = performance.now();
    const received = new Promise((resolve) => {
      const handler = (data) => {
        if (data?.client_msg_id === `${id}-${i}`) {
          b.socket.off("message:new", handler);
          // The messages service stamps created_at after its checks, before the insert (same machine, same clock).
          stamped.push(stampedMs(data.created_at, sentAt));
          resolve(performance.now() - sentAt);
        }
      };
      b.socket.on("message:new", handler);
    });
    const acked = a.socket
      .timeout(ACK_TIMEOUT_MS)
      .emitWithAck("message:send", { room_id: room, client_msg_id: `${id}-${i}`, body: `${id} ${sentAt} ${PAD}` })
      .then((ack) => {
        if (!ack?.ok) throw new Error(`idle send refused: ${JSON.stringify(ack)}`);
        return performance.now() - sentAt;
      });
    const [r, k] = await Promise.all([received, acked]);
    if (i < 0) {
      stamped.pop(); // a warm-up message (the first of a room reads it from the store): not counted
    } else {
      receive.push(r);
      acks.push(k);
    }
    await sleep(5);
  }
  print({ type: "idle", count, receive: percentiles(receive), ack: percentiles(acks), stamped: percentiles(stamped) });
}

const commands = createInterface({ input: process.stdin });
for await (const line of commands) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  try {
    if (command.op === "connect") await connect(command);
    else if (command.op === "step") await step(command);
    else if (command.op === "idle") await idle(command);
    else if (command.op === "close") {
      for (const seat of seats) seat?.socket.disconnect();
      print({ type: "closed" });
      break;
    } else print({ type: "error", message: `unknown op ${command.op}` });
  } catch (error) {
    print({ type: "error", message: String(error?.stack ?? error) });
  }
}
process.exit(0);
