// The attention rules: the title's count, which messages notify, where the first unread message is, and a reply's
// quote following edits and deletions.

import { describe, expect, it } from "vitest";
import {
  mergeLatestPage,
  newRoomState,
  openDivider,
  patchMessage,
  type RoomState,
  receiveMessage,
} from "../state/room";
import type { Message } from "../types";
import { firstUnreadSeq, notifies, quoteOf, titleWith, totalUnread, unreadStartsEarlier } from "./rules";

const ME = "me";
const ADA = "ada";

function msg(seq: number, over: Partial<Message> = {}): Message {
  return {
    id: `m${seq}`,
    room_id: "r",
    seq,
    sender_id: ADA,
    client_msg_id: `c${seq}`,
    body: `message ${seq}`,
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

function roomWith(...messages: Message[]): RoomState {
  const s = newRoomState();
  mergeLatestPage(s, messages, 50);
  return s;
}

describe("the tab's title", () => {
  it("shows the unread count before the page's title, and nothing when all is read", () => {
    expect(titleWith(3, "Chat")).toBe("(3) Chat");
    expect(titleWith(0, "Chat")).toBe("Chat");
    expect(titleWith(12_345, "Chat")).toBe("(999+) Chat");
  });

  it("adds up every room's count", () => {
    const a = newRoomState();
    const b = newRoomState();
    receiveMessage(a, msg(1), ME, false);
    receiveMessage(a, msg(2), ME, false);
    receiveMessage(b, msg(1), ME, false);
    receiveMessage(b, msg(2, { sender_id: ME }), ME, false); // mine: not unread
    expect(totalUnread([a, b])).toBe(3);
  });
});

describe("browser notifications", () => {
  const direct = { kind: "direct" as const };
  const room = { kind: "public" as const };

  it("come for someone else's direct message while the tab is hidden", () => {
    expect(notifies(msg(1), direct, ME, true)).toBe(true);
  });

  it("never while the tab is visible, for my own messages, or for deleted ones", () => {
    expect(notifies(msg(1), direct, ME, false)).toBe(false);
    expect(notifies(msg(1, { sender_id: ME }), direct, ME, true)).toBe(false);
    expect(notifies(msg(1, { deleted: true }), direct, ME, true)).toBe(false);
  });

  it("come in a room only when I am mentioned, by name or with @room", () => {
    expect(notifies(msg(1), room, ME, true)).toBe(false);
    expect(notifies(msg(1, { mentions: [{ user_id: "bob", username: "bob" }] }), room, ME, true)).toBe(false);
    expect(notifies(msg(1, { mentions: [{ user_id: ME, username: "me" }] }), room, ME, true)).toBe(true);
    expect(notifies(msg(1, { mentions_room: true }), room, ME, true)).toBe(true);
    expect(notifies(msg(1, { mentions: [{ user_id: ME, username: "me" }] }), undefined, ME, true)).toBe(false);
  });
});

describe("the first unread message", () => {
  it("is the first one from someone else after the read marker the room had when opened", () => {
    const s = roomWith(msg(1), msg(2), msg(3, { sender_id: ME }), msg(4), msg(5));
    s.readSeq = 2;
    s.unread = 2;
    openDivider(s);
    expect(firstUnreadSeq(s, ME)).toBe(4);
    expect(unreadStartsEarlier(s)).toBe(false);
  });

  it("is nothing when nothing was unread on opening", () => {
    const s = roomWith(msg(1), msg(2));
    s.readSeq = 2;
    openDivider(s);
    expect(firstUnreadSeq(s, ME)).toBeNull();
    expect(unreadStartsEarlier(s)).toBe(false);
  });

  it("needs older pages when the oldest message loaded is after the marker and there is more history", () => {
    const s = newRoomState();
    mergeLatestPage(
      s,
      Array.from({ length: 50 }, (_, i) => msg(100 + i)),
      50,
    );
    s.readSeq = 40;
    s.unread = 109;
    openDivider(s);
    expect(firstUnreadSeq(s, ME)).toBe(100); // the first loaded, not yet the first unread
    expect(unreadStartsEarlier(s)).toBe(true);
    mergeLatestPage(
      s,
      Array.from({ length: 59 }, (_, i) => msg(41 + i)),
      50,
    );
    expect(unreadStartsEarlier(s)).toBe(false);
    expect(firstUnreadSeq(s, ME)).toBe(41);
  });
});

describe("a reply's quote", () => {
  it("follows an edit and a deletion of the quoted message, with a key that changes each time", () => {
    const s = roomWith(msg(1, { body: "original" }), msg(2, { reply_to: "m1", sender_id: ME }));
    const reply = s.messages.get(2) as Message;
    const before = quoteOf(reply, s);
    expect(before?.text).toBe("original");
    patchMessage(s, 1, 2, (m) => ({ ...m, body: "edited", edited_at: "2026-01-01T00:01:00Z" }));
    const edited = quoteOf(reply, s);
    expect(edited?.text).toBe("edited");
    expect(edited?.key).not.toBe(before?.key);
    patchMessage(s, 1, 3, (m) => ({ ...m, deleted: true, body: "" }));
    const deleted = quoteOf(reply, s);
    expect(deleted?.text).toBe("(deleted)");
    expect(deleted?.key).not.toBe(edited?.key);
  });

  it("is nothing for a message that is not a reply, or whose quoted message is not loaded", () => {
    const s = roomWith(msg(2, { reply_to: "m1" }));
    expect(quoteOf(msg(3), s)).toBeNull();
    expect(quoteOf(s.messages.get(2) as Message, s)).toBeNull();
  });
});
