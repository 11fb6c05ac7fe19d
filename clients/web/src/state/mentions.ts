// @-mentions: which word the caret is in while typing (the autocomplete's query), which members match it and in
// what order, what picking one writes into the box, and how many unread messages mention me.
// Pure: the composer and the room list draw the results.

import type { Message } from "../types";
import type { RoomState } from "./room";

/** A member as the autocomplete offers them. */
export interface Candidate {
  userId: string;
  username: string;
  displayName: string;
}

/** The server's room-wide mentions (docs/messages.md): offered when they match, like a member. */
export const ROOM_MENTIONS = ["room", "here", "everyone", "all"];

/** The `@word` the caret is at the end of, or null: `start` is the index of the `@`, `query` what follows it.
 * An `@` inside a word (an email address) does not start a mention. */
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  let at = caret;
  while (at > 0 && /[A-Za-z0-9._-]/.test(text[at - 1])) at--;
  if (at === 0 || text[at - 1] !== "@") return null;
  const start = at - 1;
  if (start > 0 && !/\s|[([{"']/.test(text[start - 1])) return null;
  return { start, query: text.slice(at, caret) };
}

/** Members matching `query`, best first: a username starting with it, then a display name (or one of its words)
 * starting with it, then either containing it; alphabetical within each; me left out. */
export function rankMentions(query: string, candidates: readonly Candidate[], me: string, limit = 8): Candidate[] {
  const q = query.toLowerCase();
  const scored: { c: Candidate; score: number }[] = [];
  for (const c of candidates) {
    if (c.userId === me) continue;
    const username = c.username.toLowerCase();
    const display = c.displayName.toLowerCase();
    let score: number;
    if (username.startsWith(q)) score = 0;
    else if (display.startsWith(q) || display.split(/\s+/).some((word) => word.startsWith(q))) score = 1;
    else if (username.includes(q) || display.includes(q)) score = 2;
    else continue;
    scored.push({ c, score });
  }
  scored.sort((a, b) => a.score - b.score || a.c.username.localeCompare(b.c.username));
  return scored.slice(0, limit).map((x) => x.c);
}

/** The box after picking `username` for the mention at `start`: the word replaced, a space after it, the caret
 * after the space. */
export function completeMention(
  text: string,
  caret: number,
  start: number,
  username: string,
): { text: string; caret: number } {
  const inserted = `@${username} `;
  const rest = text
    .slice(caret)
    .replace(/^[A-Za-z0-9._-]*/, "")
    .replace(/^ /, "");
  return { text: text.slice(0, start) + inserted + rest, caret: start + inserted.length };
}

/** Whether a message mentions me by name or mentions the whole room (the server's `mentions` and
 * `mentions_room`). */
export function mentionsMe(m: Message & { mentions_room?: boolean }, me: string): boolean {
  return m.sender_id !== me && !m.deleted && (m.mentions_room === true || m.mentions.some((x) => x.user_id === me));
}

/** Unread messages that mention me: the unread endpoint's count (up to the seq it counted to), plus those that
 * arrived since and mention me. */
export function unreadMentions(s: RoomState, me: string): number {
  if (s.unread === 0) return 0;
  const after = Math.max(s.readSeq, s.countedTo);
  let n = s.serverMentions;
  for (const m of s.messages.values()) if (m.seq > after && mentionsMe(m, me)) n++;
  return n;
}
