// What a message on its way says: a rate limit as a rate limit with its wait, the connection only when it is the
// connection, and one line for the room's queue when it is held up.

import { describe, expect, it } from "vitest";
import { applyMarker, newRoomState } from "../state/room";
import type { Pending, PendingState } from "../state/send-queue";
import type { Message } from "../types";
import type { ViewContext } from "./common";
import { ownStatus, PICKER_EMOJI, pendingLabel, queueSummary, reactorsText } from "./message";

function pending(state: PendingState, over: Partial<Pending> = {}): Pending {
  return {
    client_msg_id: `c-${state}`,
    room_id: "r",
    body: "hello",
    reply_to: null,
    attachment_ids: [],
    created_at: "",
    state,
    retryAt: null,
    error: null,
    attempts: 1,
    ...over,
  };
}

describe("a pending message's label", () => {
  it("shows a rate limit with the seconds left, rounded up", () => {
    expect(pendingLabel(pending("slowed", { retryAt: 10_000 }), 7_200)).toBe("Sending slowed: retrying in 3 s");
    expect(pendingLabel(pending("slowed", { retryAt: 10_000 }), 9_990)).toBe("Sending slowed: retrying in 1 s");
  });

  it("tells every other state apart", () => {
    expect(pendingLabel(pending("queued"), 0)).toBe("Queued");
    expect(pendingLabel(pending("sending"), 0)).toBe("Sending…");
    expect(pendingLabel(pending("waiting"), 0)).toBe("Waiting for the connection…");
    expect(pendingLabel(pending("retrying", { retryAt: 2_000 }), 0)).toBe("No answer yet: retrying in 2 s");
    expect(pendingLabel(pending("failed", { error: "Too long." }), 0)).toBe("Not sent: Too long.");
  });
});

describe("the queue's line above the composer", () => {
  it("says why the first message is held up and how many wait behind it", () => {
    const queue = [pending("slowed", { retryAt: 3_000 }), pending("queued"), pending("failed"), pending("queued")];
    expect(queueSummary(queue, 0)).toBe("Sending slowed: retrying in 3 s · 3 messages to send, in order");
    expect(queueSummary([pending("waiting")], 0)).toBe("Waiting for the connection…");
  });

  it("is empty while messages simply go out", () => {
    expect(queueSummary([pending("sending"), pending("queued")], 0)).toBe("");
    expect(queueSummary([pending("failed")], 0)).toBe("");
    expect(queueSummary([], 0)).toBe("");
  });
});

describe("a receipt on my message", () => {
  const ctx: ViewContext = {
    me: { id: "me", email: "", username: "me", display_name: null, email_verified: true },
    name: (userId) => userId.toUpperCase(),
    roomName: () => "",
    announce: () => undefined,
  };
  const mine = { seq: 3, sender_id: "me" } as Message;

  it("differs in its mark, not only its colour, for sent, delivered and read", () => {
    const s = newRoomState();
    const marks = [ownStatus(ctx, s, mine).mark];
    applyMarker(s, "delivered", "ada", 3, "me");
    marks.push(ownStatus(ctx, s, mine).mark);
    applyMarker(s, "read", "ada", 3, "me");
    marks.push(ownStatus(ctx, s, mine).mark);
    expect(marks).toEqual(["✓", "✓✓", "✓✓ Read"]);
  });

  it("names who read it", () => {
    const s = newRoomState();
    applyMarker(s, "read", "ada", 3, "me");
    applyMarker(s, "read", "bob", 9, "me");
    expect(ownStatus(ctx, s, mine)).toMatchObject({ label: "Read", title: "Read by ADA, BOB" });
  });
});

describe("reactorsText", () => {
  const name = (id: string) => id.toUpperCase();
  it("names who reacted, me as you, and counts the ones this client has not seen", () => {
    expect(reactorsText({ emoji: "👍", count: 1, user_ids: ["ada"] }, name, "me")).toBe("ADA reacted with 👍");
    expect(reactorsText({ emoji: "🎉", count: 2, user_ids: ["me", "bob"] }, name, "me")).toBe(
      "you and BOB reacted with 🎉",
    );
    expect(reactorsText({ emoji: "🎉", count: 4, user_ids: ["ada", "bob"] }, name, "me")).toBe(
      "ADA, BOB and 2 others reacted with 🎉",
    );
  });

  it("offers the quick emoji first, each once", () => {
    expect(PICKER_EMOJI.slice(0, 2)).toEqual(["👍", "❤️"]);
    expect(new Set(PICKER_EMOJI).size).toBe(PICKER_EMOJI.length);
  });
});
