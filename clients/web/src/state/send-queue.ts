// What I type goes out in the order I typed it. Each room has a queue: one message at a time is on the wire, and
// the next waits for its ack. A message is resent with the same client_msg_id until the server stores it. A resend
// of a stored message returns the original and never makes a second one (docs/protocol.md). So a rate limit, a lost
// connection or a retry never lets a later message overtake an earlier one ("Ordering", docs/architecture.md).

import type { Ack } from "../types";

/** - `queued`: behind an earlier message of its room.
 * - `sending`: sent, waiting for its ack.
 * - `waiting`: for the connection.
 * - `slowed`: rate-limited; sent again at `retryAt`.
 * - `retrying`: no answer in time, or the server was busy; sent again at `retryAt`.
 * - `failed`: refused (the text, the room or my rights); Retry puts it at the end of the queue. */
export type PendingState = "queued" | "sending" | "waiting" | "slowed" | "retrying" | "failed";

/** A message typed here and not yet stored: shown at once, below the room's timeline. */
export interface Pending {
  readonly client_msg_id: string;
  readonly room_id: string;
  readonly body: string;
  readonly reply_to: string | null;
  readonly attachment_ids: string[];
  readonly created_at: string;
  state: PendingState;
  /** When a `slowed` or `retrying` message is sent again (ms since the epoch). */
  retryAt: number | null;
  error: string | null;
  /** Sends since it was typed (or since Retry). */
  attempts: number;
}

export type SendAck = Ack<{ message_id: string; seq: number }>;

export interface SendQueueDeps {
  /** `message:send` with its ack (`disconnected` or `timeout` when there is none). */
  send(payload: Record<string, unknown>): Promise<SendAck>;
  connected(): boolean;
  /** The server stored `p` as `seq` (the timeline may not have its `message:new` yet). */
  stored(p: Pending, ack: { message_id: string; seq: number }): void;
  /** Something about a room's pending messages changed: draw them again. */
  changed(roomId: string): void;
}

/** Errors that say nothing about the message itself: the same send is tried again after a backoff. */
const TRANSIENT = new Set(["timeout", "unavailable", "internal_error"]);
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8000;
/** Right after a join the messages service may not know the membership yet: `not_member` is retried this often. */
const NOT_MEMBER_TRIES = 5;
const NOT_MEMBER_WAIT_MS = 1000;

/** Per message: which send is the current one (an ack of an older one is ignored) and its retry timer. */
interface Attempt {
  n: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class SendQueue {
  private readonly queues = new Map<string, Pending[]>();
  private readonly attempts = new Map<string, Attempt>();

  constructor(private readonly deps: SendQueueDeps) {}

  /** A room's pending messages in the order typed. */
  list(roomId: string): readonly Pending[] {
    return this.queues.get(roomId) ?? [];
  }

  /** A new message, at the end of its room's queue; it goes out once everything typed before it is stored. */
  enqueue(
    message: Pick<Pending, "client_msg_id" | "room_id" | "body" | "reply_to" | "attachment_ids" | "created_at">,
  ): Pending {
    const p: Pending = { ...message, state: "queued", retryAt: null, error: null, attempts: 0 };
    this.queues.set(p.room_id, [...this.list(p.room_id), p]);
    this.attempts.set(p.client_msg_id, { n: 0, timer: undefined });
    this.deps.changed(p.room_id);
    this.pump(p.room_id);
    return p;
  }

  /** Its `message:new` arrived: it is stored, whatever happened to its ack, and the next one may go. */
  delivered(roomId: string, clientMsgId: string): void {
    const p = this.list(roomId).find((x) => x.client_msg_id === clientMsgId);
    if (!p) return;
    this.forget(p);
    this.deps.changed(roomId);
    this.pump(roomId);
  }

  /** The Retry button of a refused message: it goes again, after everything typed so far. */
  retry(p: Pending): void {
    if (p.state !== "failed" || !this.forget(p)) return;
    Object.assign(p, { state: "queued", retryAt: null, error: null, attempts: 0 });
    this.queues.set(p.room_id, [...this.list(p.room_id), p]);
    this.attempts.set(p.client_msg_id, { n: 0, timer: undefined });
    this.deps.changed(p.room_id);
    this.pump(p.room_id);
  }

  /** The Discard button of a refused message. */
  discard(p: Pending): void {
    if (this.forget(p)) this.deps.changed(p.room_id);
  }

  /** The room is gone (left, kicked): nothing more goes to it. */
  drop(roomId: string): void {
    for (const p of this.list(roomId)) this.forget(p);
    this.queues.delete(roomId);
  }

  /** The connection went: the message on the wire (or due again) waits for the next connection; an ack of the old
   * send, if one still comes, is ignored. */
  disconnected(): void {
    for (const [roomId, queue] of this.queues) {
      const head = this.head(queue);
      if (!head || head.state === "queued" || head.state === "waiting") continue;
      this.supersede(head);
      head.state = "waiting";
      head.retryAt = null;
      this.deps.changed(roomId);
    }
  }

  /** Connected (again): each room's first waiting message goes out, with its same client_msg_id. */
  reconnected(): void {
    for (const roomId of [...this.queues.keys()]) this.pump(roomId);
  }

  /** The first message of a room not refused: the only one that may be on the wire. */
  private head(queue: readonly Pending[]): Pending | undefined {
    return queue.find((p) => p.state !== "failed");
  }

  /** Send the room's first message if nothing of the room is on the wire or due for a retry. */
  private pump(roomId: string): void {
    const head = this.head(this.list(roomId));
    if (!head || (head.state !== "queued" && head.state !== "waiting")) return;
    if (!this.deps.connected()) {
      if (head.state !== "waiting") {
        head.state = "waiting";
        this.deps.changed(roomId);
      }
      return;
    }
    void this.transmit(head);
  }

  private async transmit(p: Pending): Promise<void> {
    p.state = "sending";
    p.retryAt = null;
    p.attempts += 1;
    const n = this.supersede(p);
    this.deps.changed(p.room_id);
    const payload: Record<string, unknown> = { room_id: p.room_id, client_msg_id: p.client_msg_id, body: p.body };
    if (p.reply_to) payload.reply_to = p.reply_to;
    if (p.attachment_ids.length) payload.attachment_ids = p.attachment_ids;
    const ack = await this.deps.send(payload);
    // Superseded: the connection went meanwhile (it is sent again on reconnect), or its message:new came first.
    if (this.attempts.get(p.client_msg_id)?.n !== n) return;
    this.settle(p, ack);
  }

  private settle(p: Pending, ack: SendAck): void {
    if (ack.ok) {
      this.deps.stored(p, ack);
      this.forget(p);
      this.deps.changed(p.room_id);
      this.pump(p.room_id);
      return;
    }
    const { code, message, retry_after } = ack.error;
    if (code === "disconnected")
      p.state = "waiting"; // sent again by reconnected()
    else if (code === "rate_limited") this.later(p, "slowed", (retry_after ?? 1) * 1000);
    else if (TRANSIENT.has(code))
      this.later(p, "retrying", Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(p.attempts, 4)));
    else if (code === "not_member" && p.attempts < NOT_MEMBER_TRIES) this.later(p, "retrying", NOT_MEMBER_WAIT_MS);
    else {
      // Refused for what it is (its text, the room, my rights): it will not be stored as it is, so the messages
      // after it go on; Retry sends it again after them.
      p.state = "failed";
      p.error = message;
      this.deps.changed(p.room_id);
      this.pump(p.room_id);
      return;
    }
    this.deps.changed(p.room_id);
  }

  /** Send `p` again in `ms`; nothing of its room goes before it. */
  private later(p: Pending, state: "slowed" | "retrying", ms: number): void {
    p.state = state;
    p.retryAt = Date.now() + ms;
    const attempt = this.attempts.get(p.client_msg_id);
    if (!attempt) return;
    clearTimeout(attempt.timer);
    attempt.timer = setTimeout(() => {
      attempt.timer = undefined;
      if (p.state !== state) return;
      p.state = "queued";
      p.retryAt = null;
      this.pump(p.room_id);
    }, ms);
  }

  /** A new send of `p` (or none): acks of earlier ones are ignored and a pending retry is cancelled. */
  private supersede(p: Pending): number {
    const attempt = this.attempts.get(p.client_msg_id) ?? { n: 0, timer: undefined };
    clearTimeout(attempt.timer);
    attempt.timer = undefined;
    attempt.n += 1;
    this.attempts.set(p.client_msg_id, attempt);
    return attempt.n;
  }

  /** Out of its queue, for good; false when it was not there. */
  private forget(p: Pending): boolean {
    const queue = this.list(p.room_id);
    if (!queue.includes(p)) return false;
    this.supersede(p);
    this.attempts.delete(p.client_msg_id);
    this.queues.set(
      p.room_id,
      queue.filter((x) => x !== p),
    );
    return true;
  }
}
