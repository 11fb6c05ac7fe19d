// The send queue: typed order is stored order, through rate limits, lost acks, disconnects and refusals, and a
// retry always carries the message's own client_msg_id.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Pending, type SendAck, SendQueue } from "./send-queue";

type Payload = Record<string, unknown>;

/** A `message:send` whose ack the test gives when it wants. */
class ManualServer {
  readonly calls: { payload: Payload; answer: (ack: SendAck) => void }[] = [];

  send = (payload: Payload): Promise<SendAck> =>
    new Promise((resolve) => {
      this.calls.push({ payload, answer: resolve });
    });

  sent(): string[] {
    return this.calls.map((c) => String(c.payload.body));
  }

  ack(i: number, seq = i + 1): void {
    this.calls[i].answer({ ok: true, message_id: `m${seq}`, seq });
  }

  refuse(i: number, code: string, retryAfter?: number): void {
    this.calls[i].answer({ ok: false, error: { code, message: `refused: ${code}`, retry_after: retryAfter } });
  }
}

function harness(send: (payload: Payload) => Promise<SendAck>) {
  let online = true;
  const stored: { body: string; seq: number }[] = [];
  const queue = new SendQueue({
    send,
    connected: () => online,
    stored: (p, ack) => stored.push({ body: p.body, seq: ack.seq }),
    changed: () => undefined,
  });
  let n = 0;
  const type = (body: string, room = "r"): Pending => {
    n += 1;
    return queue.enqueue({
      client_msg_id: `c${n}`,
      room_id: room,
      body,
      reply_to: null,
      attachment_ids: [],
      created_at: "",
    });
  };
  return {
    queue,
    stored,
    type,
    setOnline: (value: boolean) => (online = value),
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("one message at a time per room", () => {
  it("sends the next message only after the previous one's ack", async () => {
    const server = new ManualServer();
    const { type, stored } = harness(server.send);
    const [a, b, c] = [type("a"), type("b"), type("c")];
    expect(server.sent()).toEqual(["a"]);
    expect([a.state, b.state, c.state]).toEqual(["sending", "queued", "queued"]);
    server.ack(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(server.sent()).toEqual(["a", "b"]);
    server.ack(1);
    await vi.advanceTimersByTimeAsync(0);
    server.ack(2);
    await vi.advanceTimersByTimeAsync(0);
    expect(stored).toEqual([
      { body: "a", seq: 1 },
      { body: "b", seq: 2 },
      { body: "c", seq: 3 },
    ]);
  });

  it("does not hold one room's messages behind another room's", () => {
    const server = new ManualServer();
    const { type } = harness(server.send);
    type("in r", "r");
    type("also in r", "r");
    type("in s", "s");
    expect(server.sent()).toEqual(["in r", "in s"]);
  });

  it("lets the next message go when the first one's message:new comes before its ack, and ignores that ack", async () => {
    const server = new ManualServer();
    const { queue, type, stored } = harness(server.send);
    type("a");
    type("b");
    queue.delivered("r", "c1");
    expect(server.sent()).toEqual(["a", "b"]);
    expect(queue.list("r").map((p) => p.body)).toEqual(["b"]);
    server.ack(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(stored).toEqual([]);
    expect(server.sent()).toEqual(["a", "b"]);
  });
});

describe("rate limits", () => {
  it("waits out retry_after, shown as slowed, and sends the same message again before any later one", async () => {
    const server = new ManualServer();
    const { queue, type } = harness(server.send);
    const a = type("a");
    type("b");
    server.refuse(0, "rate_limited", 3);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.state).toBe("slowed");
    expect(a.retryAt).toBe(Date.now() + 3000);
    await vi.advanceTimersByTimeAsync(2999);
    expect(server.sent()).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.calls.map((c) => c.payload.client_msg_id)).toEqual(["c1", "c1"]);
    expect(queue.list("r").map((p) => p.state)).toEqual(["sending", "queued"]);
  });
});

describe("lost answers and connections", () => {
  it("resends with the same client_msg_id after a timeout, with a growing wait", async () => {
    const server = new ManualServer();
    const { type } = harness(server.send);
    const a = type("a");
    server.refuse(0, "timeout");
    await vi.advanceTimersByTimeAsync(0);
    expect(a.state).toBe("retrying");
    await vi.advanceTimersByTimeAsync(1000);
    expect(server.calls).toHaveLength(2);
    server.refuse(1, "unavailable");
    await vi.advanceTimersByTimeAsync(1999);
    expect(server.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.calls.map((c) => c.payload.client_msg_id)).toEqual(["c1", "c1", "c1"]);
  });

  it("waits for the connection, then sends the same message first, ignoring the lost attempt's late ack", async () => {
    const server = new ManualServer();
    const { queue, type, stored, setOnline } = harness(server.send);
    const a = type("a");
    type("b");
    setOnline(false);
    queue.disconnected();
    expect(a.state).toBe("waiting");
    server.ack(0, 7); // the old attempt's answer, after the disconnect
    await vi.advanceTimersByTimeAsync(0);
    expect(stored).toEqual([]);
    expect(server.sent()).toEqual(["a"]);
    setOnline(true);
    queue.reconnected();
    expect(server.calls.map((c) => c.payload.client_msg_id)).toEqual(["c1", "c1"]);
    server.ack(1, 7); // the server found c1 stored and answers with its seq
    await vi.advanceTimersByTimeAsync(0);
    expect(stored).toEqual([{ body: "a", seq: 7 }]);
    expect(server.sent()).toEqual(["a", "a", "b"]);
  });

  it("keeps a message typed while offline until the connection is back", () => {
    const server = new ManualServer();
    const { queue, type, setOnline } = harness(server.send);
    setOnline(false);
    const a = type("a");
    expect(a.state).toBe("waiting");
    expect(server.calls).toHaveLength(0);
    setOnline(true);
    queue.reconnected();
    expect(server.sent()).toEqual(["a"]);
  });

  it("cancels a rate-limit wait on disconnect and sends at once on reconnect", async () => {
    const server = new ManualServer();
    const { queue, type, setOnline } = harness(server.send);
    const a = type("a");
    server.refuse(0, "rate_limited", 30);
    await vi.advanceTimersByTimeAsync(0);
    setOnline(false);
    queue.disconnected();
    expect(a).toMatchObject({ state: "waiting", retryAt: null });
    setOnline(true);
    queue.reconnected();
    expect(server.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(server.calls).toHaveLength(2); // the old timer does not send a third time
  });
});

describe("refusals", () => {
  it("marks a refused message failed and lets the next go; Retry sends it again after the others", async () => {
    const server = new ManualServer();
    const { queue, type } = harness(server.send);
    const a = type("a");
    type("b");
    server.refuse(0, "validation_failed");
    await vi.advanceTimersByTimeAsync(0);
    expect(a).toMatchObject({ state: "failed", error: "refused: validation_failed" });
    expect(server.sent()).toEqual(["a", "b"]);
    queue.retry(a);
    expect(queue.list("r").map((p) => p.body)).toEqual(["b", "a"]);
    expect(server.sent()).toEqual(["a", "b"]);
    server.ack(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(server.calls.map((c) => c.payload.client_msg_id)).toEqual(["c1", "c2", "c1"]);
  });

  it("retries not_member a few times (a fresh join), then gives up", async () => {
    const server = new ManualServer();
    const { type } = harness(server.send);
    const a = type("a");
    for (let i = 0; i < 5; i++) {
      server.refuse(i, "not_member");
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(server.calls).toHaveLength(5);
    expect(a.state).toBe("failed");
  });

  it("discards a refused message, and sends nothing more to a room that is gone", async () => {
    const server = new ManualServer();
    const { queue, type } = harness(server.send);
    const a = type("a");
    server.refuse(0, "blocked");
    await vi.advanceTimersByTimeAsync(0);
    queue.discard(a);
    expect(queue.list("r")).toEqual([]);
    type("b");
    server.refuse(1, "rate_limited", 1);
    await vi.advanceTimersByTimeAsync(0);
    queue.drop("r");
    await vi.advanceTimersByTimeAsync(5000);
    expect(server.calls).toHaveLength(2);
  });
});

/** A server with the messages service's send budget (a burst, then so many a second), idempotent on
 * client_msg_id, that loses some acks after storing; each send and each ack takes its time on the network
 * (0–49 ms, from a fixed pseudo-random sequence). */
class RateLimitedServer {
  readonly stored: { id: string; body: string }[] = [];
  private tokens: number;
  private at = Date.now();
  private calls = 0;
  private seed = 42;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly loseEvery: number,
  ) {
    this.tokens = burst;
  }

  private latency(): Promise<void> {
    this.seed = (this.seed * 1103515245 + 12345) % 2 ** 31;
    return new Promise((resolve) => setTimeout(resolve, this.seed % 50));
  }

  send = async (payload: Payload): Promise<SendAck> => {
    await this.latency();
    const ack = this.receive(payload);
    await this.latency();
    return ack;
  };

  private receive(payload: Payload): SendAck {
    this.calls += 1;
    const id = String(payload.client_msg_id);
    const seen = this.stored.findIndex((m) => m.id === id);
    if (seen >= 0) return { ok: true, message_id: id, seq: seen + 1 };
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < 1)
      return {
        ok: false,
        error: { code: "rate_limited", message: "slow down", retry_after: (1 - this.tokens) / this.perSecond },
      };
    this.tokens -= 1;
    this.stored.push({ id, body: String(payload.body) });
    if (this.calls % this.loseEvery === 0) return { ok: false, error: { code: "timeout", message: "no answer" } };
    return { ok: true, message_id: id, seq: this.stored.length };
  }
}

describe("sixty messages typed at once", () => {
  it("are stored once each, in the order typed, through the rate limit, lost acks and a disconnect", async () => {
    const server = new RateLimitedServer(10, 1, 7);
    const { queue, type, setOnline } = harness(server.send);
    const typed = Array.from({ length: 60 }, (_, i) => `bulk ${i + 1}`);
    for (const body of typed) type(body);
    await vi.advanceTimersByTimeAsync(20_000);
    setOnline(false);
    queue.disconnected();
    await vi.advanceTimersByTimeAsync(3_000);
    setOnline(true);
    queue.reconnected();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(queue.list("r")).toEqual([]);
    expect(server.stored.map((m) => m.body)).toEqual(typed);
  });
});
