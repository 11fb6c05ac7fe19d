// The REST calls of the signed-in app (docs/rooms.md, docs/messages.md), typed, in one place.

import { ApiError, api, request } from "./api";
import type { Activity, Attachment, Contact, Invitation, Member, Message, Page, Receipts, Room, Unread } from "./types";

/** Messages per history page. */
export const PAGE = 50;

/** Every room I am in (all pages). */
export async function myRooms(): Promise<Room[]> {
  const rooms: Room[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const page: Page<Room> = await api<Page<Room>>("GET", `/api/rooms/mine?limit=100${query}`);
    rooms.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return rooms;
}

export const room = (roomId: string): Promise<Room> => api<Room>("GET", `/api/rooms/${roomId}`);

export const directory = (q: string): Promise<Page<Room>> =>
  api<Page<Room>>("GET", `/api/rooms?limit=50${q ? `&q=${encodeURIComponent(q)}` : ""}`);

export const createRoom = (body: Record<string, string>): Promise<Room> => api<Room>("POST", "/api/rooms", { body });

export const join = (roomId: string, password: string | null): Promise<unknown> =>
  api("POST", `/api/rooms/${roomId}/join`, { body: password !== null ? { password } : {} });

export const leave = (roomId: string): Promise<unknown> => api("POST", `/api/rooms/${roomId}/leave`);

export const openDirect = (userId: string): Promise<Room> =>
  api<Room>("POST", "/api/rooms/direct", { body: { user_id: userId } });

export async function members(roomId: string): Promise<Member[]> {
  return (await api<Page<Member>>("GET", `/api/rooms/${roomId}/members?limit=100`)).items;
}

export const kick = (roomId: string, userId: string): Promise<unknown> =>
  api("POST", `/api/rooms/${roomId}/members/${userId}/kick`, { body: {} });

export const ban = (roomId: string, userId: string): Promise<unknown> =>
  api("POST", `/api/rooms/${roomId}/bans`, { body: { user_id: userId } });

export const invite = (roomId: string, userId: string): Promise<unknown> =>
  api("POST", `/api/rooms/${roomId}/invitations`, { body: { user_id: userId } });

export const invitations = (): Promise<Invitation[]> => api<Invitation[]>("GET", "/api/rooms/invitations");

export const answerInvitation = (roomId: string, accept: boolean): Promise<unknown> =>
  api("POST", `/api/rooms/${roomId}/invitation/${accept ? "accept" : "decline"}`);

export const contacts = (): Promise<Contact[]> => api<Contact[]>("GET", "/api/rooms/contacts");

export const unread = (): Promise<Unread[]> => api<Unread[]>("GET", "/api/messages/unread");

export const logout = (): Promise<unknown> => api("POST", "/api/auth/logout");

/** GET, retried a few times on 404: right after a join the messages service may not know the member yet
 * (it learns memberships from the rooms service's events). */
async function readSoon<T>(path: string): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api<T>("GET", path);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404) || attempt >= 6) throw e;
      await new Promise((resolve) => setTimeout(resolve, 150 * attempt));
    }
  }
}

/** The newest page of a room, waiting out a fresh join. */
export const latestPage = (roomId: string): Promise<Page<Message>> =>
  readSoon<Page<Message>>(`/api/messages/rooms/${roomId}/messages?limit=${PAGE}`);

/** A page of history: the newest, or the one before `beforeSeq` (the seq is the cursor). */
export const historyPage = (roomId: string, beforeSeq?: number): Promise<Page<Message>> =>
  api<Page<Message>>(
    "GET",
    `/api/messages/rooms/${roomId}/messages?${beforeSeq !== undefined ? `before_seq=${beforeSeq}&` : ""}limit=${PAGE}`,
  );

/** Activity records per request; more are asked for with `after_version`. */
const ACTIVITY_PAGE = 100;
/** Requests for one window at most: a room created with hundreds of members shows the first thousand joins. */
const ACTIVITY_REQUESTS = 10;

/** The room's joins, leaves, removals, bans and renames placed in a window of seqs (both bounds exclusive, either
 * left out for no bound), in room_version order. */
export async function activity(roomId: string, window: { afterSeq?: number; beforeSeq?: number }): Promise<Activity[]> {
  const bounds = new URLSearchParams({ limit: String(ACTIVITY_PAGE) });
  if (window.afterSeq !== undefined) bounds.set("after_seq", String(window.afterSeq));
  if (window.beforeSeq !== undefined) bounds.set("before_seq", String(window.beforeSeq));
  const found: Activity[] = [];
  for (let asked = 0; asked < ACTIVITY_REQUESTS; asked++) {
    const last = found.at(-1);
    if (last) bounds.set("after_version", String(last.room_version));
    const page = await api<{ items: Activity[] }>("GET", `/api/messages/rooms/${roomId}/activity?${bounds}`);
    found.push(...page.items);
    if (page.items.length < ACTIVITY_PAGE) break;
  }
  return found;
}

export const receipts = (roomId: string): Promise<Receipts> =>
  readSoon<Receipts>(`/api/messages/rooms/${roomId}/receipts`);

export const upload = (roomId: string, file: File): Promise<Attachment> =>
  api<Attachment>("POST", `/api/messages/rooms/${roomId}/attachments`, {
    raw: file,
    headers: { "X-Filename": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" },
  });

export interface LoadedAttachment {
  url: string;
  type: string;
  name: string;
}

/** An attachment needs the access token, so it is fetched and shown from memory (a `blob:` URL, revoked by the
 * caller); its type and name come from the response. */
export async function download(roomId: string, id: string): Promise<LoadedAttachment> {
  const response = await request("GET", `/api/messages/rooms/${roomId}/attachments/${id}`, {
    headers: { Accept: "*/*" },
  });
  const disposition = response.headers.get("content-disposition") ?? "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  const name = star ? decodeURIComponent(star[1]) : plain ? plain[1] : "attachment";
  const blob = await response.blob();
  return { url: URL.createObjectURL(blob), type: blob.type, name };
}
