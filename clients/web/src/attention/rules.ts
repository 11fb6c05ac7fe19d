// What deserves the person's attention, as pure rules (no DOM, no timers), unit-tested in rules.test.ts: the
// unread count in the tab's title, which messages raise a browser notification, where the first unread message
// is, and what a reply's quote shows.

import type { RoomState } from "../state/room";
import type { Message, Room } from "../types";

/** The tab's title: "(3) Chat" while anything is unread, else the page's own title. */
export function titleWith(unread: number, base: string): string {
  if (unread <= 0) return base;
  return `(${unread > 999 ? "999+" : unread}) ${base}`;
}

/** Everything unread, over all my rooms. */
export function totalUnread(states: Iterable<RoomState>): number {
  let total = 0;
  for (const s of states) total += s.unread;
  return total;
}

/** Whether a message is worth a browser notification: someone else's, new, not deleted, while the tab is hidden
 * and the person turned notifications on, and either in a direct room or mentioning me (by name or the room). */
export function notifies(m: Message, room: Pick<Room, "kind"> | undefined, me: string, hidden: boolean): boolean {
  if (!hidden || !room || m.sender_id === me || m.deleted) return false;
  if (room.kind === "direct") return true;
  return m.mentions.some((x) => x.user_id === me) || m.mentions_room === true;
}

/** The first message someone else wrote after the read marker the room had when it was opened, or null. */
export function firstUnreadSeq(s: RoomState, me: string): number | null {
  const after = s.dividerAfter;
  if (after === null) return null;
  let first: number | null = null;
  for (const m of s.messages.values()) {
    if (m.seq > after && m.sender_id !== me && (first === null || m.seq < first)) first = m.seq;
  }
  return first;
}

/** Whether older pages must be read before the first unread message is known: the oldest message here is
 * still after the read marker, and the room has more history. */
export function unreadStartsEarlier(s: RoomState): boolean {
  if (s.dividerAfter === null || !s.hasMore) return false;
  let oldest = Number.POSITIVE_INFINITY;
  for (const seq of s.messages.keys()) oldest = Math.min(oldest, seq);
  return oldest > s.dividerAfter + 1;
}

/** A reply's quote as shown: the quoted message's current text (it follows edits), "(deleted)" after a deletion,
 * and a key that changes whenever the quote does (the reply's cached element is drawn again). */
export function quoteOf(
  m: Pick<Message, "reply_to">,
  s: RoomState,
): { parent: Message; text: string; key: string } | null {
  if (!m.reply_to) return null;
  for (const parent of s.messages.values()) {
    if (parent.id !== m.reply_to) continue;
    const text = parent.deleted ? "(deleted)" : parent.body.slice(0, 100);
    return { parent, text, key: `${parent.id}@${parent.version}` };
  }
  return null;
}
