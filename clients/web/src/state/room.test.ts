// A room's state: the timeline merges live messages, history pages and recovery by seq and version; unread counts,
// markers, receipts, typing and presence follow the events.

import { describe, expect, it } from "vitest";
import type { Activity, Message, SubscribeResult } from "../types";
import {
  activityWindow,
  addNotice,
  addSent,
  applyMarker,
  applyPresence,
  applySubscribed,
  continues,
  markDelivered,
  markRead,
  mergeActivity,
  mergeLatestPage,
  mergeOlderPage,
  mergeReactions,
  mergeUnread,
  newRoomState,
  oldestSeq,
  openDivider,
  othersPresent,
  patchMessage,
  receiptOf,
  receiveMessage,
  rows,
  setTyping,
  storeMessage,
  timeline,
  typingNow,
} from "./room";
import type { Pending } from "./send-queue";

const ME = "me";
const ADA = "ada";
const BOB = "bob";
const PAGE = 50;

function msg(seq: number, over: Partial<Message> = {}): Message {
  return {
    id: `m${seq}`,
    room_id: "r",
    seq,
    sender_id: ADA,
    client_msg_id: `c${seq}`,
    body: `body ${seq}`,
    created_at: "2026-01-01T00:00:00Z",
    edited_at: null,
    deleted: false,
    reply_to: null,
    attachment_ids: [],
    mentions: [],
    reactions: [],
    version: 1,
    ...over,
  };
}

const seqs = (s: ReturnType<typeof newRoomState>) => timeline(s).map((m) => m.seq);

describe("ordering", () => {
  it("shows messages in seq order whatever order they arrive in", () => {
    const s = newRoomState();
    for (const seq of [5, 2, 9, 1, 3]) storeMessage(s, msg(seq));
    expect(seqs(s)).toEqual([1, 2, 3, 5, 9]);
    expect(s.lastSeq).toBe(9);
    expect(oldestSeq(s)).toBe(1);
  });

  it("keeps the newest version when an older copy arrives later", () => {
    const s = newRoomState();
    storeMessage(s, msg(1, { body: "edited", version: 2 }));
    storeMessage(s, msg(1, { body: "original", version: 1 }));
    expect(timeline(s)[0].body).toBe("edited");
  });

  it("merges the newest page with messages that arrived live while it was on its way", () => {
    const s = newRoomState();
    storeMessage(s, msg(61)); // live, before the page answered
    mergeLatestPage(
      s,
      Array.from({ length: PAGE }, (_, i) => msg(11 + i)),
      PAGE,
    );
    expect(seqs(s)).toEqual([...Array.from({ length: PAGE }, (_, i) => 11 + i), 61]);
    expect(s.loaded).toBe(true);
    expect(s.hasMore).toBe(true);
    expect(s.lastSeq).toBe(61);
  });

  it("knows there is nothing older once a page is short or reaches the first message", () => {
    const short = newRoomState();
    mergeLatestPage(short, [msg(1), msg(2)], PAGE);
    expect(short.hasMore).toBe(false);

    const paged = newRoomState();
    mergeLatestPage(
      paged,
      Array.from({ length: PAGE }, (_, i) => msg(51 + i)),
      PAGE,
    );
    expect(paged.hasMore).toBe(true);
    mergeOlderPage(
      paged,
      Array.from({ length: PAGE }, (_, i) => msg(1 + i)),
      PAGE,
    );
    expect(paged.hasMore).toBe(false);
    expect(seqs(paged)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("applies an edit only when it is newer than the copy shown", () => {
    const s = newRoomState();
    storeMessage(s, msg(1, { version: 3 }));
    expect(patchMessage(s, 1, 2, (m) => ({ ...m, body: "stale" }))).toBe(false);
    expect(patchMessage(s, 1, 3, (m) => ({ ...m, body: "same" }))).toBe(false);
    expect(patchMessage(s, 1, 4, (m) => ({ ...m, body: "fresh" }))).toBe(true);
    expect(timeline(s)[0]).toMatchObject({ body: "fresh", version: 4 });
    expect(patchMessage(s, 2, 9, (m) => m)).toBe(false);
  });

  it("shows my acknowledged message at its seq without moving the recovery point", () => {
    const s = newRoomState();
    storeMessage(s, msg(4));
    const p: Pending = {
      client_msg_id: "mine",
      room_id: "r",
      body: "hello",
      reply_to: null,
      attachment_ids: [],
      created_at: "2026-01-01T00:00:00Z",
      state: "sending",
      retryAt: null,
      error: null,
      attempts: 1,
    };
    addSent(s, p, { message_id: "x", seq: 6 }, ME);
    expect(seqs(s)).toEqual([4, 6]);
    // seq 5 (someone else's) may still be on its way: a reconnect must ask from 4.
    expect(s.lastSeq).toBe(4);
    addSent(s, { ...p, body: "again" }, { message_id: "x", seq: 6 }, ME);
    expect(timeline(s)[1].body).toBe("hello");
  });

  it("merges a reaction with the server's counts", () => {
    const m = msg(1, { reactions: [{ emoji: "👍", count: 1, user_ids: [ADA] }] });
    expect(mergeReactions(m, "👍", BOB, "add", { "👍": 2 })).toEqual([{ emoji: "👍", count: 2, user_ids: [ADA, BOB] }]);
    expect(mergeReactions(m, "👍", ADA, "remove", {})).toEqual([]);
  });
});

describe("unread counts", () => {
  it("counts someone else's new message unless the room is being read", () => {
    const s = newRoomState();
    expect(receiveMessage(s, msg(1), ME, false)).toEqual({ isNew: true, unread: true });
    expect(receiveMessage(s, msg(2), ME, true)).toEqual({ isNew: true, unread: false });
    expect(s.unread).toBe(1);
  });

  it("never counts my own messages, deleted ones, or one seen before", () => {
    const s = newRoomState();
    receiveMessage(s, msg(1, { sender_id: ME }), ME, false);
    receiveMessage(s, msg(2, { deleted: true }), ME, false);
    receiveMessage(s, msg(3), ME, false);
    receiveMessage(s, msg(3), ME, false); // delivered twice (a replay after reconnecting)
    storeMessage(s, msg(10));
    receiveMessage(s, msg(7), ME, false); // older than what this client has
    expect(s.unread).toBe(1);
  });

  it("stops showing someone as typing when their message arrives", () => {
    const s = newRoomState();
    setTyping(s, ADA, true, new Date(10_000).toISOString(), 0);
    receiveMessage(s, msg(1), ME, false);
    expect(typingNow(s, 0, ME)).toEqual([]);
  });

  it("takes the server's count, unless a message arrived live after the server counted", () => {
    const s = newRoomState();
    mergeUnread(s, { room_id: "r", unread: 4, read_seq: 6, last_seq: 10, mentions: 0 }, false);
    expect(s).toMatchObject({ unread: 4, readSeq: 6, lastSeq: 10 });

    receiveMessage(s, msg(11), ME, false);
    receiveMessage(s, msg(12), ME, false);
    mergeUnread(s, { room_id: "r", unread: 5, read_seq: 6, last_seq: 11, mentions: 0 }, false);
    expect(s.unread).toBe(6);
  });

  it("does not count again a message the server counted before it arrived live", () => {
    const s = newRoomState();
    receiveMessage(s, msg(10), ME, false);
    // The answer counted 11 and 12, which were still on their way to this client.
    mergeUnread(s, { room_id: "r", unread: 3, read_seq: 9, last_seq: 12, mentions: 0 }, false);
    for (const seq of [11, 12, 13]) receiveMessage(s, msg(seq), ME, false);
    expect(s.unread).toBe(4);
  });

  it("keeps its own count when the server counted before this client's newer read marker reached it", () => {
    const s = newRoomState();
    for (const seq of [1, 2, 3]) receiveMessage(s, msg(seq), ME, false);
    markRead(s);
    mergeUnread(s, { room_id: "r", unread: 3, read_seq: 0, last_seq: 3, mentions: 1 }, false);
    expect(s).toMatchObject({ unread: 0, serverMentions: 0, readSeq: 3 });
    mergeUnread(s, { room_id: "r", unread: 0, read_seq: 3, last_seq: 3, mentions: 0 }, false);
    receiveMessage(s, msg(4), ME, false);
    expect(s.unread).toBe(1);
  });

  it("shows nothing unread in the room being read", () => {
    const s = newRoomState();
    mergeUnread(s, { room_id: "r", unread: 3, read_seq: 0, last_seq: 3, mentions: 0 }, true);
    expect(s.unread).toBe(0);
  });

  it("sends the read marker only forward, and clears the count", () => {
    const s = newRoomState();
    for (const seq of [1, 2, 3]) receiveMessage(s, msg(seq), ME, false);
    expect(markRead(s)).toEqual({ changed: true, seq: 3 });
    expect(s.unread).toBe(0);
    expect(markRead(s)).toEqual({ changed: false, seq: null });
    // Read on another device: nothing to send, but the count here still clears.
    receiveMessage(s, msg(4), ME, false);
    applyMarker(s, "read", ME, 4, ME);
    expect(markRead(s)).toEqual({ changed: true, seq: null });
  });

  it("sends the delivered marker once per new message", () => {
    const s = newRoomState();
    expect(markDelivered(s)).toBeNull();
    storeMessage(s, msg(2));
    expect(markDelivered(s)).toBe(2);
    expect(markDelivered(s)).toBeNull();
  });

  it("puts the new-messages divider after the read marker only when something is unread", () => {
    const s = newRoomState();
    mergeUnread(s, { room_id: "r", unread: 2, read_seq: 8, last_seq: 10, mentions: 0 }, false);
    openDivider(s);
    expect(s.dividerAfter).toBe(8);
    s.unread = 0;
    openDivider(s);
    expect(s.dividerAfter).toBeNull();
  });
});

describe("receipts", () => {
  it("says sent, delivered or read, by anyone but me, and who read it", () => {
    const s = newRoomState();
    const mine = msg(5, { sender_id: ME });
    applyMarker(s, "read", ME, 9, ME);
    expect(receiptOf(s, mine, ME)).toEqual({ label: "Sent", readers: [] });
    applyMarker(s, "delivered", ADA, 5, ME);
    expect(receiptOf(s, mine, ME).label).toBe("Delivered");
    applyMarker(s, "read", BOB, 7, ME);
    expect(receiptOf(s, mine, ME)).toEqual({ label: "Read", readers: [BOB] });
  });

  it("moves markers only forward", () => {
    const s = newRoomState();
    applyMarker(s, "read", ADA, 7, ME);
    applyMarker(s, "read", ADA, 3, ME);
    expect(s.markers.get(ADA)).toEqual({ read: 7, delivered: 0 });
  });

  it("takes my own read marker from another device", () => {
    const s = newRoomState();
    expect(applyMarker(s, "read", ME, 12, ME)).toBe(true);
    expect(s.readSeq).toBe(12);
    expect(applyMarker(s, "delivered", ME, 14, ME)).toBe(false);
    expect(applyMarker(s, "read", ADA, 14, ME)).toBe(false);
  });
});

describe("recovery", () => {
  const subscribed = (over: Partial<SubscribeResult>): SubscribeResult => ({ room_id: "r", ...over });

  it("keeps the timeline when the missed messages were replayed", () => {
    const s = newRoomState();
    mergeLatestPage(s, [msg(1), msg(2)], PAGE);
    expect(applySubscribed(s, subscribed({ recovered: true, seq: 2 }))).toEqual({
      reload: false,
      refreshChanges: false,
    });
    expect(seqs(s)).toEqual([1, 2]);
  });

  it("empties the timeline and asks for a reload when too much was missed, then merges the new page in order", () => {
    const s = newRoomState();
    mergeLatestPage(s, [msg(1), msg(2)], PAGE);
    expect(applySubscribed(s, subscribed({ recovered: false, seq: 700 }))).toEqual({
      reload: true,
      refreshChanges: false,
    });
    expect(s.messages.size).toBe(0);
    expect(s.loaded).toBe(false);
    expect(s.lastSeq).toBe(700);
    storeMessage(s, msg(701)); // live, while the page is read again
    mergeLatestPage(
      s,
      Array.from({ length: PAGE }, (_, i) => msg(651 + i)),
      PAGE,
    );
    expect(seqs(s)).toEqual([...Array.from({ length: PAGE }, (_, i) => 651 + i), 701]);
    expect(s.lastSeq).toBe(701);
  });

  it("takes the room's seq as the recovery point on a first subscribe, and keeps a known one", () => {
    const fresh = newRoomState();
    applySubscribed(fresh, subscribed({ recovered: null, seq: 40 }));
    expect(fresh.lastSeq).toBe(40);
    const known = newRoomState();
    storeMessage(known, msg(12));
    applySubscribed(known, subscribed({ seq: 40 }));
    expect(known.lastSeq).toBe(12);
  });

  it("asks for the visible page again when edits made meanwhile were not replayed", () => {
    const s = newRoomState();
    expect(applySubscribed(s, subscribed({ recovered: true, changes_recovered: false })).refreshChanges).toBe(true);
  });

  it("replaces presence with the subscribe answer's", () => {
    const s = newRoomState();
    applyPresence(s, [{ user_id: ADA, status: "online" }]);
    applySubscribed(s, subscribed({ recovered: true, presence: [{ user_id: BOB, status: "away" }] }));
    expect([...s.presence]).toEqual([[BOB, "away"]]);
  });
});

describe("typing and presence", () => {
  it("lists who is typing, without me, and drops what expired", () => {
    const s = newRoomState();
    setTyping(s, ADA, true, new Date(5_000).toISOString(), 1_000);
    setTyping(s, BOB, true, new Date(2_000).toISOString(), 1_000);
    setTyping(s, ME, true, new Date(5_000).toISOString(), 1_000);
    expect(typingNow(s, 3_000, ME)).toEqual([ADA]);
    setTyping(s, ADA, false, "", 3_000);
    expect(typingNow(s, 3_000, ME)).toEqual([]);
  });

  it("gives an indicator that came with a past expiry a few seconds (a clock behind the server's)", () => {
    const s = newRoomState();
    setTyping(s, ADA, true, new Date(500).toISOString(), 1_000);
    expect(typingNow(s, 6_000, ME)).toEqual([ADA]);
    expect(typingNow(s, 7_500, ME)).toEqual([]);
  });

  it("says when a presence change is about someone missing from the member list", () => {
    const s = newRoomState();
    expect(applyPresence(s, [{ user_id: ADA, status: "online" }])).toBe(false); // no list read yet
    s.members = [{ user_id: ADA, role: "member", joined_at: "" }];
    expect(applyPresence(s, [{ user_id: ADA, status: "away" }])).toBe(false);
    expect(applyPresence(s, [{ user_id: BOB, status: "online" }])).toBe(true);
  });

  it("summarises others' presence: online beats away, and I do not count", () => {
    const s = newRoomState();
    applyPresence(s, [
      { user_id: ME, status: "online" },
      { user_id: ADA, status: "away" },
    ]);
    expect(othersPresent(s, ME)).toEqual({ online: 1, dot: "away" });
    applyPresence(s, [{ user_id: BOB, status: "online" }]);
    expect(othersPresent(s, ME)).toEqual({ online: 2, dot: "online" });
    applyPresence(s, [
      { user_id: ADA, status: "offline" },
      { user_id: BOB, status: "offline" },
    ]);
    expect(othersPresent(s, ME)).toEqual({ online: 0, dot: "offline" });
  });
});

describe("grouping", () => {
  const at = (minutes: number) => new Date(Date.UTC(2026, 0, 1, 0, minutes)).toISOString();

  it("joins one author's messages written within a few minutes", () => {
    const s = newRoomState();
    for (const [seq, sender, minute] of [
      [1, ADA, 0],
      [2, ADA, 1],
      [3, ADA, 4],
      [4, BOB, 4],
      [5, ADA, 5],
      [6, ADA, 20],
    ] as const)
      storeMessage(s, msg(seq, { sender_id: sender, created_at: at(minute) }));
    expect(rows(s).map((r) => (r.kind === "message" ? r.continued : null))).toEqual([
      false,
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it("starts a new block after a deleted message or a notice", () => {
    const s = newRoomState();
    storeMessage(s, msg(1, { created_at: at(0) }));
    storeMessage(s, msg(2, { created_at: at(0), deleted: true }));
    storeMessage(s, msg(3, { created_at: at(1) }));
    addNotice(s, { type: "room.member_joined", room_id: "r", room_version: 5, user_id: BOB }, 1, "x", at(1));
    storeMessage(s, msg(4, { created_at: at(1) }));
    expect(rows(s).map((r) => (r.kind === "message" ? `${r.message.seq}:${r.continued}` : "notice"))).toEqual([
      "1:false",
      "2:false",
      "3:false",
      "notice",
      "4:false",
    ]);
  });

  it("does not join a message that claims to be older than the one before it", () => {
    expect(continues(msg(1, { created_at: at(3) }), msg(2, { created_at: at(2) }))).toBe(false);
  });
});

describe("notices", () => {
  const event = (type: string, version: number, extra: Record<string, string> = {}) => ({
    type,
    room_id: "r",
    room_version: version,
    ...extra,
  });

  it("turns joins, leaves, kicks, bans and renames into notices after the newest message", () => {
    const s = newRoomState();
    storeMessage(s, msg(7));
    const now = "2026-01-01T00:00:00Z";
    expect(addNotice(s, event("room.member_joined", 2, { user_id: BOB }), 1, "general", now)).toBe(true);
    expect(addNotice(s, event("room.member_left", 3, { user_id: BOB }), 1, "general", now)).toBe(true);
    expect(addNotice(s, event("room.member_kicked", 4, { user_id: BOB, by: ADA }), 1, "general", now)).toBe(true);
    expect(addNotice(s, event("room.member_banned", 5, { user_id: BOB, by: ADA }), 1, "general", now)).toBe(true);
    expect(addNotice(s, event("room.updated", 6, { name: "lounge" }), 1, "general", now)).toBe(true);
    expect(s.notices.map((n) => [n.kind, n.afterSeq])).toEqual([
      ["joined", 7],
      ["left", 7],
      ["kicked", 7],
      ["banned", 7],
      ["renamed", 7],
    ]);
    expect(s.notices[2].by).toBe(ADA);
    expect(s.notices[4].name).toBe("lounge");
  });

  it("ignores a topic change, other events, replays and events the room already reflects", () => {
    const s = newRoomState();
    const now = "2026-01-01T00:00:00Z";
    expect(addNotice(s, event("room.updated", 2, { name: "general", topic: "new" }), 1, "general", now)).toBe(false);
    expect(addNotice(s, event("room.member_role_changed", 3, { user_id: BOB }), 1, "general", now)).toBe(false);
    expect(addNotice(s, event("room.member_joined", 4, { user_id: BOB }), 4, "general", now)).toBe(false);
    expect(addNotice(s, event("room.member_joined", 5, { user_id: BOB }), 1, "general", now)).toBe(true);
    expect(addNotice(s, event("room.member_joined", 5, { user_id: BOB }), 1, "general", now)).toBe(false);
    expect(s.notices).toHaveLength(1);
  });
});

describe("activity from history", () => {
  const activity = (version: number, afterSeq: number, over: Partial<Activity> = {}): Activity => ({
    room_id: "r",
    room_version: version,
    kind: "joined",
    user_id: BOB,
    by: null,
    name: null,
    after_seq: afterSeq,
    occurred_at: "2026-01-01T00:00:00Z",
    ...over,
  });
  const placed = (s: ReturnType<typeof newRoomState>) =>
    rows(s).map((r) => (r.kind === "message" ? r.message.seq : `${r.notice.kind}@${r.notice.version}`));

  it("places a page's activity after the messages it followed, in room_version order", () => {
    const s = newRoomState();
    mergeLatestPage(s, [msg(3), msg(2), msg(1)], PAGE);
    expect(mergeActivity(s, [activity(2, 0), activity(4, 2, { kind: "renamed", name: "lounge", user_id: null })])).toBe(
      true,
    );
    addNotice(s, { type: "room.member_left", room_id: "r", room_version: 6, user_id: BOB }, 1, "lounge", "now");
    expect(mergeActivity(s, [activity(3, 2, { kind: "kicked", by: ADA })])).toBe(true);
    expect(placed(s)).toEqual(["joined@2", 1, 2, "kicked@3", "renamed@4", 3, "left@6"]);
    expect(s.notices.find((n) => n.version === 4)?.name).toBe("lounge");
  });

  it("keeps one notice per room_version whether it came live or with history, the server's place winning", () => {
    const s = newRoomState();
    storeMessage(s, msg(5));
    const joined = { type: "room.member_joined", room_id: "r", room_version: 7, user_id: BOB };
    expect(addNotice(s, joined, 1, "x", "live time")).toBe(true);
    expect(mergeActivity(s, [activity(7, 4)])).toBe(true);
    expect(s.notices).toHaveLength(1);
    expect(s.notices[0]).toMatchObject({ id: "r:7", afterSeq: 4, at: "2026-01-01T00:00:00Z" });
    expect(mergeActivity(s, [activity(7, 4)])).toBe(false);
    expect(s.notices).toHaveLength(1);
  });

  it("does not show again live an event that history brought", () => {
    const s = newRoomState();
    mergeActivity(s, [activity(8, 0), activity(9, 0)]);
    expect(s.noticeVersion).toBe(9);
    const replayed = { type: "room.member_left", room_id: "r", room_version: 9, user_id: BOB };
    expect(addNotice(s, replayed, 1, "x", "now")).toBe(false);
    const next = { type: "room.member_left", room_id: "r", room_version: 10, user_id: BOB };
    expect(addNotice(s, next, 1, "x", "now")).toBe(true);
    expect(s.notices.map((n) => n.version)).toEqual([8, 9, 10]);
  });

  it("leaves out the joins that open a direct room, not what happens in it later", () => {
    const s = newRoomState();
    expect(mergeActivity(s, [activity(2, 0), activity(3, 0)], true)).toBe(false);
    expect(mergeActivity(s, [activity(4, 0, { kind: "left" })], true)).toBe(true);
    expect(s.notices.map((n) => n.kind)).toEqual(["left"]);
    expect(s.noticeVersion).toBe(4);
  });

  it("asks for the activity of a page's seqs, from the room's start when nothing is older", () => {
    const s = newRoomState();
    const full = Array.from({ length: PAGE }, (_, i) => msg(100 - i));
    mergeLatestPage(s, full, PAGE);
    expect(activityWindow(s, full)).toEqual({ afterSeq: 50, beforeSeq: undefined });
    const older = Array.from({ length: 10 }, (_, i) => msg(50 - i));
    mergeOlderPage(s, older, PAGE);
    expect(activityWindow(s, older, 51)).toEqual({ afterSeq: undefined, beforeSeq: 51 });
    const short = newRoomState();
    mergeLatestPage(short, [msg(2), msg(1)], PAGE);
    expect(activityWindow(short, [msg(2), msg(1)])).toEqual({ afterSeq: undefined, beforeSeq: undefined });
    const empty = newRoomState();
    mergeLatestPage(empty, [], PAGE);
    expect(activityWindow(empty, [])).toEqual({ afterSeq: undefined, beforeSeq: undefined });
  });
});
