// Messages typed here and not yet stored: shown at once ("local echo") and resent with the same client_msg_id
// until the server acknowledges them (a resend of a stored message returns the original, never a second one).

import type { Ack, Pending } from "../types";

export type SendAck = Ack<{ message_id: string; seq: number }>;

export interface OutboxDeps {
  /** `message:send` with its ack (`disconnected` or `timeout` when there is none). */
  send(payload: Record<string, unknown>): Promise<SendAck>;
  connected(): boolean;
  /** The server stored `p` as `seq` (the timeline may not have its `message:new` yet). */
  stored(p: Pending, ack: { message_id: string; seq: number }): void;
  /** Something about a room's pending messages changed: draw them again. */
  changed(roomId: string): void;
}

export class Outbox {
  private readonly pending = new Map<string, Pending[]>();

  constructor(private readonly deps: OutboxDeps) {}

  list(roomId: string): Pending[] {
    return this.pending.get(roomId) ?? [];
  }

  add(p: Pending): void {
    this.pending.set(p.room_id, [...this.list(p.room_id), p]);
    void this.transmit(p);
  }

  remove(roomId: string, clientMsgId: string): void {
    const list = this.pending.get(roomId);
    if (!list) return;
    const rest = list.filter((p) => p.client_msg_id !== clientMsgId);
    if (rest.length !== list.length) this.pending.set(roomId, rest);
  }

  /** The room is gone (left, kicked): nothing more goes to it. */
  drop(roomId: string): void {
    this.pending.delete(roomId);
  }

  /** The connection went: sends in flight wait for the next one (their acks, if any come, are ignored). */
  disconnected(): void {
    for (const list of this.pending.values()) for (const p of list) if (p.state === "sending") this.waiting(p);
  }

  /** Connected (again): everything waiting goes out. */
  flush(): void {
    for (const list of this.pending.values()) for (const p of list) if (p.state === "waiting") void this.transmit(p);
  }

  /** The Retry button of a refused message. */
  retry(p: Pending): void {
    p.attempts = 0;
    void this.transmit(p);
  }

  private waiting(p: Pending): void {
    p.state = "waiting";
    p.attempt += 1; // an ack still on its way for the old attempt is ignored
  }

  private async transmit(p: Pending): Promise<void> {
    if (!this.deps.connected()) {
      this.waiting(p);
      this.deps.changed(p.room_id);
      return;
    }
    p.state = "sending";
    p.attempts += 1;
    const attempt = ++p.attempt;
    this.deps.changed(p.room_id);
    const payload: Record<string, unknown> = { room_id: p.room_id, client_msg_id: p.client_msg_id, body: p.body };
    if (p.reply_to) payload.reply_to = p.reply_to;
    if (p.attachment_ids.length) payload.attachment_ids = p.attachment_ids;
    const ack = await this.deps.send(payload);
    if (attempt !== p.attempt) return; // superseded (disconnected meanwhile; resent on reconnect)
    if (ack.ok) {
      this.deps.stored(p, ack);
      this.remove(p.room_id, p.client_msg_id);
      this.deps.changed(p.room_id);
      return;
    }
    const { code, message, retry_after } = ack.error;
    const retry = (ms: number) => {
      this.waiting(p);
      setTimeout(() => p.state === "waiting" && void this.transmit(p), ms);
    };
    if (code === "disconnected") this.waiting(p);
    else if (code === "timeout" || code === "unavailable" || code === "internal_error") retry(Math.min(8000, 500 * 2 ** Math.min(p.attempts, 4)));
    else if (code === "rate_limited") retry((retry_after ?? 1) * 1000);
    else if (code === "not_member" && p.attempts < 5) retry(1000); // a fresh join not yet known everywhere
    else {
      p.state = "failed";
      p.error = message;
    }
    this.deps.changed(p.room_id);
  }
}
