// What the client knows about one room: its timeline (live messages, history pages and recovery merged by seq),
// unread count and read marker, other members' receipt markers, typing and presence. Pure: no DOM, no network,
// so the rules are unit-tested (room.test.ts) and the views only draw the result.

import type { Activity, Member, Message, Presence, Reaction, RoomEvent, SubscribeResult, Unread } from "../types";
import type { Pending } from "./send-queue";

export interface RoomState {
  messages: Map<number, Message>;
  loaded: boolean;
  loading: boolean;
  hasMore: boolean;
  /** The newest seq this client has (the recovery point for room:subscribe_many). */
  lastSeq: number | null;
  unread: number;
  /** Unread messages that mention me, as the unread endpoint counted them up to `countedTo`. */
  serverMentions: number;
  /** The newest seq the unread endpoint's counts covered: a live message at or below it is counted already. */
  countedTo: number;
  readSeq: number;
  deliveredSent: number;
  /** The read marker when the room was opened: the "new messages" divider goes after it. */
  dividerAfter: number | null;
  markers: Map<string, { read: number; delivered: number }>;
  presence: Map<string, Presence>;
  typing: Map<string, number>;
  members: Member[] | null;
  /** Joins, leaves, kicks, bans and renames: seen live, and loaded with the history pages (the messages service
   * keeps them as the room's activity). One per room_version. */
  notices: Notice[];
  /** The newest room_version turned into a notice: a replayed event is not shown twice. */
  noticeVersion: number;
}

/** Something that happened to the room, shown between the messages: after the message with seq `afterSeq`. */
export interface Notice {
  /** `room_id:room_version`: the same event live and from history is one notice. */
  id: string;
  /** The event's room_version: notices after the same message are shown in this order. */
  version: number;
  kind: "joined" | "left" | "kicked" | "banned" | "renamed";
  afterSeq: number;
  at: string;
  userId: string | null;
  by: string | null;
  name: string | null;
}

export function newRoomState(): RoomState {
  return {
    messages: new Map(),
    loaded: false,
    loading: false,
    hasMore: true,
    lastSeq: null,
    unread: 0,
    serverMentions: 0,
    countedTo: 0,
    readSeq: 0,
    deliveredSent: 0,
    dividerAfter: null,
    markers: new Map(),
    presence: new Map(),
    typing: new Map(),
    members: null,
    notices: [],
    noticeVersion: 0,
  };
}

// ---------------------------------------------------------------- the timeline

/** Keep `message` unless a newer version of it is already here; moves the recovery point forward. */
export function storeMessage(s: RoomState, message: Message): void {
  const known = s.messages.get(message.seq);
  if (known && known.version > message.version) return;
  s.messages.set(message.seq, message);
  s.lastSeq = Math.max(s.lastSeq ?? 0, message.seq);
}

/** One of my messages, acknowledged as stored before its `message:new` arrived: shown at its seq at once. The
 * recovery point stays where the live stream is, so that a reconnect still replays anything before it not seen yet. */
export function addSent(s: RoomState, p: Pending, stored: { message_id: string; seq: number }, me: string): void {
  if (s.messages.has(stored.seq)) return;
  s.messages.set(stored.seq, {
    id: stored.message_id,
    room_id: p.room_id,
    seq: stored.seq,
    sender_id: me,
    client_msg_id: p.client_msg_id,
    body: p.body,
    created_at: p.created_at,
    edited_at: null,
    deleted: false,
    reply_to: p.reply_to,
    attachment_ids: p.attachment_ids,
    mentions: [],
    reactions: [],
    version: 1,
  });
}

/** The messages in seq order (the order every client shows). */
export function timeline(s: RoomState): Message[] {
  return [...s.messages.values()].sort((a, b) => a.seq - b.seq);
}

export function oldestSeq(s: RoomState): number | null {
  return s.messages.size ? Math.min(...s.messages.keys()) : null;
}

function morePages(items: Message[], pageSize: number): boolean {
  return items.length === pageSize && Math.min(...items.map((m) => m.seq)) > 1;
}

/** The newest page (on first open, or again after `recovered: false`): merged, never replacing, so a message
 * sent or received while the page was on its way stays. */
export function mergeLatestPage(s: RoomState, items: Message[], pageSize: number): void {
  for (const m of items) storeMessage(s, m);
  s.hasMore = morePages(items, pageSize);
  s.loaded = true;
  const newest = items.length ? Math.max(...items.map((m) => m.seq)) : 0;
  s.lastSeq = Math.max(s.lastSeq ?? 0, newest);
}

/** A page before the oldest message shown (infinite scroll). */
export function mergeOlderPage(s: RoomState, items: Message[], pageSize: number): void {
  for (const m of items) storeMessage(s, m);
  s.hasMore = morePages(items, pageSize);
}

/** An edit, deletion or reaction: applied when it is newer than the copy here; false when ignored. */
export function patchMessage(s: RoomState, seq: number, version: number, change: (m: Message) => Message): boolean {
  const m = s.messages.get(seq);
  if (!m || m.version >= version) return false;
  s.messages.set(seq, { ...change(m), version });
  return true;
}

/** Reactions after one user's add or remove, with the server's counts (who reacted is known only as far as this
 * client has seen it). */
export function mergeReactions(
  m: Message,
  emoji: string,
  userId: string,
  action: string,
  counts: Record<string, number>,
): Reaction[] {
  const users = new Map(m.reactions.map((r) => [r.emoji, new Set(r.user_ids)]));
  const set = users.get(emoji) ?? new Set<string>();
  if (action === "add") set.add(userId);
  else set.delete(userId);
  users.set(emoji, set);
  return Object.entries(counts).map(([e, count]) => ({ emoji: e, count, user_ids: [...(users.get(e) ?? [])] }));
}

/** A live `message:new` (or a replayed one): true when it is new to this client and counts as unread, i.e.
 * someone else's, not deleted, and the room is not being read (`reading`: open, scrolled to the end, visible). */
export function receiveMessage(
  s: RoomState,
  m: Message,
  me: string,
  reading: boolean,
): { isNew: boolean; unread: boolean } {
  const isNew = !s.messages.has(m.seq) && m.seq > (s.lastSeq ?? 0);
  storeMessage(s, m);
  const fromOther = isNew && m.sender_id !== me && !m.deleted;
  if (fromOther) {
    s.typing.delete(m.sender_id);
    if (!reading && m.seq > s.countedTo) s.unread += 1;
  }
  return { isNew: fromOther, unread: fromOther && !reading };
}

// ---------------------------------------------------------------- grouping and notices

/** Messages from one author this close together read as one block: the name and time are shown once. */
export const GROUP_WINDOW_MS = 5 * 60_000;

export type Row = { kind: "message"; message: Message; continued: boolean } | { kind: "notice"; notice: Notice };

/** Whether `m` continues `previous`'s block: same author, neither deleted, written within the window. */
export function continues(previous: Message | null, m: Message, windowMs = GROUP_WINDOW_MS): boolean {
  if (!previous || previous.sender_id !== m.sender_id || previous.deleted || m.deleted) return false;
  const gap = Date.parse(m.created_at) - Date.parse(previous.created_at);
  return gap >= 0 && gap < windowMs;
}

/** The timeline as drawn: messages in seq order, each marked when it continues the block before it, with the
 * notices placed after the message they followed (a notice ends a block). */
export function rows(s: RoomState, windowMs = GROUP_WINDOW_MS): Row[] {
  const out: Row[] = [];
  const notices = [...s.notices].sort((a, b) => a.afterSeq - b.afterSeq || a.version - b.version);
  let n = 0;
  let previous: Message | null = null;
  for (const m of timeline(s)) {
    while (n < notices.length && notices[n].afterSeq < m.seq) {
      out.push({ kind: "notice", notice: notices[n++] });
      previous = null;
    }
    out.push({ kind: "message", message: m, continued: continues(previous, m, windowMs) });
    previous = m;
  }
  for (; n < notices.length; n++) out.push({ kind: "notice", notice: notices[n] });
  return out;
}

const NOTICE_KINDS: Record<string, Notice["kind"]> = {
  "room.member_joined": "joined",
  "room.member_left": "left",
  "room.member_kicked": "kicked",
  "room.member_banned": "banned",
  "room.updated": "renamed",
};

/** A live `room:event` as a notice in the timeline, when it is a join, leave, kick, ban or a new name (a
 * `room.updated` carries every setting: it is a rename only when the name differs from `knownName`). Events at or
 * below `knownVersion` (the room as last read) or already shown are ignored. True when a notice was added. */
export function addNotice(
  s: RoomState,
  e: RoomEvent & { occurred_at?: string },
  knownVersion: number,
  knownName: string | null,
  now: string,
): boolean {
  const kind = NOTICE_KINDS[e.type];
  if (!kind || e.room_version <= Math.max(knownVersion, s.noticeVersion)) return false;
  if (kind === "renamed" && (e.name ?? null) === knownName) return false;
  s.noticeVersion = e.room_version;
  s.notices.push({
    id: `${e.room_id}:${e.room_version}`,
    version: e.room_version,
    kind,
    afterSeq: s.lastSeq ?? 0,
    at: e.occurred_at ?? now,
    userId: e.user_id ?? null,
    by: e.by ?? null,
    name: e.name ?? null,
  });
  return true;
}

/** Seqs of the room, both bounds exclusive, either left out for no bound. */
export interface ActivityWindow {
  afterSeq?: number;
  beforeSeq?: number;
}

/** The seqs whose activity goes with a history page just merged (`items`): from its oldest message on (what comes
 * after the message below it), or from the room's start when there is nothing older; below `beforeSeq`, the
 * oldest seq shown before the page came (none for the newest page). */
export function activityWindow(s: RoomState, items: Message[], beforeSeq?: number): ActivityWindow {
  const lowest = items.length ? Math.min(...items.map((m) => m.seq)) : null;
  return { afterSeq: s.hasMore && lowest !== null ? lowest - 1 : undefined, beforeSeq };
}

/** The room's activity loaded with a history page, merged with the notices seen live by room_version: the
 * server's record replaces a live notice of the same event (it knows exactly which message the event followed),
 * and a replay of an event loaded here is not shown again live. The joins that open a direct room say nothing
 * (`direct`: they are left out, as they never show live). True when the notices changed. */
export function mergeActivity(s: RoomState, items: Activity[], direct = false): boolean {
  let changed = false;
  for (const a of items) {
    s.noticeVersion = Math.max(s.noticeVersion, a.room_version);
    if (direct && a.kind === "joined") continue;
    const notice: Notice = {
      id: `${a.room_id}:${a.room_version}`,
      version: a.room_version,
      kind: a.kind,
      afterSeq: a.after_seq,
      at: a.occurred_at,
      userId: a.user_id,
      by: a.by,
      name: a.name,
    };
    const known = s.notices.findIndex((n) => n.id === notice.id);
    if (known < 0) s.notices.push(notice);
    else if (s.notices[known].afterSeq !== notice.afterSeq || s.notices[known].at !== notice.at)
      s.notices[known] = notice;
    else continue;
    changed = true;
  }
  return changed;
}

// ---------------------------------------------------------------- recovery

/** What a (re)subscribe answer asks of the client. `reload`: too much was missed to replay, so the timeline was
 * emptied and the newest page and the counts must be read again; `refreshChanges`: edits, deletions and markers
 * made meanwhile were not replayed, so the visible page and receipts must be read again. */
export function applySubscribed(s: RoomState, result: SubscribeResult): { reload: boolean; refreshChanges: boolean } {
  s.presence.clear();
  for (const p of result.presence ?? []) s.presence.set(p.user_id, p.status);
  let reload = false;
  if (result.recovered === false) {
    s.lastSeq = result.seq ?? s.lastSeq;
    s.messages.clear();
    s.loaded = false;
    reload = true;
  } else if (result.recovered === null || result.recovered === undefined) {
    s.lastSeq ??= result.seq ?? null;
  }
  return { reload, refreshChanges: result.changes_recovered === false };
}

// ---------------------------------------------------------------- unread counts and markers

/** The unread endpoint's answer for this room. `reading`: the room is open at the end and visible, so nothing in
 * it is unread. A message that arrived live while the answer was on its way is newer than the count: ours stays;
 * one the count covered is not counted again when it arrives live after the answer. */
export function mergeUnread(s: RoomState, u: Unread, reading: boolean): void {
  s.readSeq = Math.max(s.readSeq, u.read_seq);
  if (u.last_seq < (s.lastSeq ?? 0)) return;
  // Counted before this client's newer read marker reached the server: the counts are stale, the local ones stand.
  if (u.read_seq < s.readSeq) return;
  s.unread = reading ? 0 : u.unread;
  s.serverMentions = reading ? 0 : u.mentions;
  s.countedTo = u.last_seq;
  s.lastSeq ??= u.last_seq;
}

/** The room is being read: clears the count and returns the seq to send in `room:read`, or null when the server
 * already has it. `changed` says whether the count was cleared (the room list needs drawing again). */
export function markRead(s: RoomState): { changed: boolean; seq: number | null } {
  const newest = Math.max(0, ...s.messages.keys());
  if (newest <= s.readSeq && s.unread === 0) return { changed: false, seq: null };
  s.unread = 0;
  s.serverMentions = 0;
  if (newest <= s.readSeq) return { changed: true, seq: null };
  s.readSeq = newest;
  return { changed: true, seq: newest };
}

/** The seq to send in `room:delivered`, or null when it was sent already. */
export function markDelivered(s: RoomState): number | null {
  const newest = s.lastSeq ?? 0;
  if (newest <= s.deliveredSent) return null;
  s.deliveredSent = newest;
  return newest;
}

/** Someone's `room:read` or `room:delivered` (markers only move forward); true when it is my own read marker
 * from another device. */
export function applyMarker(
  s: RoomState,
  kind: "read" | "delivered",
  userId: string,
  upTo: number,
  me: string,
): boolean {
  const mark = s.markers.get(userId) ?? { read: 0, delivered: 0 };
  mark[kind] = Math.max(mark[kind], upTo);
  s.markers.set(userId, mark);
  if (userId !== me || kind !== "read") return false;
  s.readSeq = Math.max(s.readSeq, upTo);
  return true;
}

export function setMarkers(
  s: RoomState,
  markers: { user_id: string; read_seq: number; delivered_seq: number }[],
): void {
  for (const m of markers) s.markers.set(m.user_id, { read: m.read_seq, delivered: m.delivered_seq });
}

export type ReceiptLabel = "Sent" | "Delivered" | "Read";

/** How far one of my messages got: read by anyone else, else delivered to anyone else, else sent; and who read it. */
export function receiptOf(s: RoomState, m: Message, me: string): { label: ReceiptLabel; readers: string[] } {
  let delivered = false;
  const readers: string[] = [];
  for (const [user, marker] of s.markers) {
    if (user === me) continue;
    if (marker.read >= m.seq) readers.push(user);
    if (marker.delivered >= m.seq || marker.read >= m.seq) delivered = true;
  }
  return { label: readers.length ? "Read" : delivered ? "Delivered" : "Sent", readers };
}

/** Opening a room: the "new messages" divider goes after the read marker when something is unread. */
export function openDivider(s: RoomState): void {
  s.dividerAfter = s.unread > 0 ? s.readSeq : null;
}

// ---------------------------------------------------------------- typing and presence

export function setTyping(s: RoomState, userId: string, typing: boolean, expiresAt: string, now: number): void {
  if (!typing) {
    s.typing.delete(userId);
    return;
  }
  const until = Date.parse(expiresAt);
  s.typing.set(userId, until > now ? until : now + 6000);
}

/** Who is typing now, besides me (expired entries are dropped). */
export function typingNow(s: RoomState, now: number, me: string): string[] {
  for (const [user, until] of s.typing) if (until < now) s.typing.delete(user);
  return [...s.typing.keys()].filter((u) => u !== me);
}

/** Presence changes; true when one is about someone missing from the member list (it needs reading again:
 * there is no member-joined event on the socket). */
export function applyPresence(s: RoomState, changes: { user_id: string; status: Presence }[]): boolean {
  for (const change of changes) s.presence.set(change.user_id, change.status);
  const members = s.members;
  return members !== null && changes.some((c) => !members.some((m) => m.user_id === c.user_id));
}

/** Others online or away (not me): the room list's dot and the header's count. */
export function othersPresent(s: RoomState, me: string): { online: number; dot: Presence } {
  const present = [...s.presence.entries()].filter(([id, st]) => id !== me && st !== "offline");
  const dot = present.some(([, st]) => st === "online") ? "online" : present.length ? "away" : "offline";
  return { online: present.length, dot };
}
