// Mentions: the query at the caret, ranking the room's members, completing the word, and counting unread ones.

import { describe, expect, it } from "vitest";
import type { Message } from "../types";
import { type Candidate, completeMention, mentionQuery, mentionsMe, rankMentions, unreadMentions } from "./mentions";
import { markRead, mergeUnread, newRoomState, storeMessage } from "./room";

const members: Candidate[] = [
  { userId: "1", username: "bob", displayName: "Robert Stone" },
  { userId: "2", username: "ada", displayName: "Ada Lovelace" },
  { userId: "3", username: "adam", displayName: "Adam Smith" },
  { userId: "4", username: "zed", displayName: "Bobby Ada" },
  { userId: "5", username: "me", displayName: "Me Myself" },
];

describe("mentionQuery", () => {
  it("finds the @word the caret ends", () => {
    expect(mentionQuery("hi @ad", 6)).toEqual({ start: 3, query: "ad" });
    expect(mentionQuery("@", 1)).toEqual({ start: 0, query: "" });
    expect(mentionQuery("(@bo", 4)).toEqual({ start: 1, query: "bo" });
    expect(mentionQuery("hi @ada and more", 7)).toEqual({ start: 3, query: "ada" });
  });

  it("ignores an email address, a finished word and no @", () => {
    expect(mentionQuery("mail ada@example", 16)).toBeNull();
    expect(mentionQuery("hi @ada ", 8)).toBeNull();
    expect(mentionQuery("hello", 5)).toBeNull();
  });
});

describe("rankMentions", () => {
  it("puts username prefixes first, then display-name words, then substrings; leaves me out", () => {
    expect(rankMentions("ad", members, "5").map((c) => c.username)).toEqual(["ada", "adam", "zed"]);
    expect(rankMentions("bo", members, "5").map((c) => c.username)).toEqual(["bob", "zed"]);
    expect(rankMentions("ston", members, "5").map((c) => c.username)).toEqual(["bob"]);
    expect(rankMentions("", members, "5").map((c) => c.username)).toEqual(["ada", "adam", "bob", "zed"]);
    expect(rankMentions("me", members, "5")).toEqual([]);
  });

  it("is case-insensitive and limited", () => {
    expect(rankMentions("AD", members, "5", 1).map((c) => c.username)).toEqual(["ada"]);
  });
});

describe("completeMention", () => {
  it("replaces the word with the username and a space", () => {
    expect(completeMention("hi @ad", 6, 3, "ada")).toEqual({ text: "hi @ada ", caret: 8 });
    expect(completeMention("hi @ad, see", 6, 3, "adam")).toEqual({ text: "hi @adam , see", caret: 9 });
    expect(completeMention("@b tomorrow", 2, 0, "bob")).toEqual({ text: "@bob tomorrow", caret: 5 });
  });
});

function msg(seq: number, over: Partial<Message & { mentions_room: boolean }> = {}): Message {
  return {
    id: `m${seq}`,
    room_id: "r",
    seq,
    sender_id: "ada",
    client_msg_id: `c${seq}`,
    body: "",
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

describe("unread mentions", () => {
  const me = "me";
  const atMe = [{ user_id: me, username: "me" }];

  it("counts unread messages that mention me or the whole room", () => {
    const s = newRoomState();
    s.readSeq = 1;
    s.unread = 4;
    storeMessage(s, msg(1, { mentions: atMe })); // read already
    storeMessage(s, msg(2, { mentions: atMe }));
    storeMessage(s, msg(3, { mentions_room: true } as Partial<Message>));
    storeMessage(s, msg(4, { mentions: [{ user_id: "bob", username: "bob" }] }));
    storeMessage(s, msg(5, { mentions: atMe, deleted: true }));
    expect(unreadMentions(s, me)).toBe(2);
    s.unread = 0;
    expect(unreadMentions(s, me)).toBe(0);
  });

  it("adds the server's count of mentions this page has not loaded to the ones that arrived since", () => {
    const s = newRoomState();
    mergeUnread(s, { room_id: "r", unread: 5, read_seq: 2, last_seq: 7, mentions: 3 }, false);
    storeMessage(s, msg(6, { mentions: atMe })); // loaded later: counted by the server already
    storeMessage(s, msg(8, { mentions: atMe })); // arrived after the count
    storeMessage(s, msg(9, { mentions_room: true } as Partial<Message>));
    s.unread = 7;
    expect(unreadMentions(s, me)).toBe(5);
    markRead(s);
    expect(unreadMentions(s, me)).toBe(0);
    storeMessage(s, msg(10, { mentions: atMe }));
    s.unread = 1;
    expect(unreadMentions(s, me)).toBe(1); // the old server count went with the read
  });

  it("never counts my own message", () => {
    expect(mentionsMe(msg(1, { sender_id: me, mentions: atMe }), me)).toBe(false);
  });
});
