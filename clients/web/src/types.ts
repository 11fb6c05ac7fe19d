// Shapes of what the services answer (docs/rooms.md, docs/messages.md, docs/protocol.md), checked at compile time
// against the types generated from the OpenAPI and AsyncAPI documents (src/generated/, ContractChecks below).

import type * as api from "./generated/openapi";
import type * as sio from "./generated/socketio";

export interface Profile {
  id: string;
  email: string;
  username: string;
  display_name: string | null;
  email_verified: boolean;
}

export interface Room {
  id: string;
  kind: "public" | "private" | "password" | "group_dm" | "direct";
  name: string | null;
  topic: string | null;
  password_protected: boolean;
  member_count: number;
  archived: boolean;
  my_role: string | null;
  /** Grows by one per change; stamps every room:event (`room_version`). */
  version: number;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Member {
  user_id: string;
  role: string;
  joined_at: string;
}

export interface Invitation {
  room: Room;
  invited_by: string;
  created_at: string;
}

export interface Contact {
  user_id: string;
  username: string | null;
  display_name: string | null;
  state: string;
}

/** A join, leave, removal, ban or rename as the messages service keeps it: after the message `after_seq`. */
export interface Activity {
  room_id: string;
  room_version: number;
  kind: "joined" | "left" | "kicked" | "banned" | "renamed";
  user_id: string | null;
  by: string | null;
  name: string | null;
  after_seq: number;
  occurred_at: string;
}

export interface Reaction {
  emoji: string;
  count: number;
  user_ids: string[];
}

export interface Message {
  id: string;
  room_id: string;
  seq: number;
  sender_id: string;
  client_msg_id: string;
  body: string;
  created_at: string;
  edited_at: string | null;
  deleted: boolean;
  reply_to: string | null;
  attachment_ids: string[];
  mentions: { user_id: string; username: string }[];
  /** `@room`: every member is mentioned. */
  mentions_room?: boolean;
  reactions: Reaction[];
  version: number;
}

export interface Unread {
  room_id: string;
  unread: number;
  read_seq: number;
  last_seq: number;
  /** Of the unread messages, those that mention me by name or the whole room. */
  mentions: number;
}

export interface Receipts {
  markers: { user_id: string; read_seq: number; delivered_seq: number }[];
}

export interface Attachment {
  id: string;
  filename: string;
  content_type: string;
  size: number;
}

export type Presence = "online" | "away" | "offline";

export interface AckError {
  ok: false;
  error: { code: string; message: string; retry_after?: number };
}

export type Ack<T> = ({ ok: true } & T) | AckError;

export interface SubscribeResult {
  ok?: boolean;
  room_id: string;
  recovered?: boolean | null;
  seq?: number | null;
  changes_recovered?: boolean | null;
  presence?: { user_id: string; status: Presence }[];
  error?: { code: string; message: string };
}

/** A chat.rooms.events event as the gateway relays it on `room:event` (docs/protocol.md, docs/rooms.md). */
export interface RoomEvent {
  type: string;
  room_id: string;
  room_version: number;
  user_id?: string;
  by?: string | null;
  name?: string | null;
  topic?: string | null;
}

// ---------------------------------------------------------------- checked against the server's contracts

/** Compiles only when what the server sends (`Server`, generated from its contracts by
 * scripts/generate_types.py) fits the client's hand-written type (`Client`): a field the client reads that the
 * server renamed, dropped or retyped fails `npm run build`. */
type Fits<Client, Server extends Client> = Server;

/** Rooms' `kind` is a plain string in the OpenAPI document; the client narrows it to the kinds it knows. */
type AnyKind<T> = Omit<T, "kind"> & { kind: string };

export type ContractChecks = [
  Fits<Profile, api.Profile>,
  Fits<AnyKind<Room>, api.RoomOut>,
  Fits<Page<AnyKind<Room>>, api.Page_RoomOut_>,
  Fits<Member, api.MemberOut>,
  Fits<Page<Member>, api.Page_MemberOut_>,
  Fits<Omit<Invitation, "room"> & { room: AnyKind<Room> }, api.InvitationOut>,
  Fits<Contact, api.ContactOut>,
  Fits<Reaction, api.Reaction>,
  Fits<Message, api.MessageOut>,
  Fits<Message, sio.MessageNew>,
  Fits<Omit<Page<Message>, "next_cursor">, api.MessagePage>,
  Fits<Unread, api.UnreadOut>,
  Fits<Receipts, api.ReceiptsOut>,
  Fits<Activity, api.ActivityOut>,
  Fits<{ items: Activity[] }, api.ActivityPage>,
  Fits<Attachment, api.AttachmentOut>,
  Fits<SubscribeResult, sio.SubscribeAck>,
  Fits<SubscribeResult, sio.RoomError>,
  Fits<RoomEvent, sio.RoomEvent>,
];
