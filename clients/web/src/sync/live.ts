// What arrives on the socket, applied to the state: messages and their edits, deletions and reactions, read and
// delivered markers, typing, presence, and being added to, invited to or removed from rooms; and (re)subscribing
// with each room's last seq on every connect, with what the answer asks for (docs/protocol.md, "Recovery").

import type { Connection } from "../connection";
import type * as sio from "../generated/socketio";
import { MAX_ROOMS_PER_SUBSCRIBE } from "../limits";
import type { ChatState } from "../state/chat-state";
import {
  applyMarker,
  applyPresence,
  applySubscribed,
  markDelivered,
  mergeReactions,
  patchMessage,
  receiveMessage,
  setTyping,
} from "../state/room";
import type { SendQueue } from "../state/send-queue";
import type { Message, Room, RoomEvent, SubscribeResult } from "../types";
import type { UserDirectory } from "../users";
import { type History, learnNames } from "./history";
import type { MyRooms } from "./rooms";
import type { Screen } from "./screen";

export interface LiveDeps {
  /** The open room may have been read: send `room:read` if it is in view. */
  maybeRead(): void;
  close(): void;
  roomName(room: Room): string;
  /** The tab is hidden: this client is away (and says so again on every new socket). */
  away(): boolean;
  /** A message new to this client arrived (notifications decide whether it deserves one). */
  arrived(m: Message): void;
}

export class LiveEvents {
  constructor(
    private readonly state: ChatState,
    private readonly users: UserDirectory,
    private readonly screen: Screen,
    private readonly conn: Connection,
    private readonly sendQueue: SendQueue,
    private readonly history: History,
    private readonly myRooms: MyRooms,
    private readonly deps: LiveDeps,
  ) {}

  bind(): void {
    const socket = this.conn.socket;
    socket.on("message:new", (m: Message) => this.message(m));
    // Event payloads are typed from docs/asyncapi/socketio.json (src/generated/socketio.ts).
    socket.on("message:edited", (e: sio.MessageEdited) =>
      this.patch(e.room_id, e.seq, e.version, (m) => ({ ...m, body: e.body, edited_at: e.edited_at })),
    );
    socket.on("message:deleted", (e: sio.MessageDeleted) =>
      this.patch(e.room_id, e.seq, e.version, (m) => ({
        ...m,
        deleted: true,
        body: "",
        reactions: [],
        attachment_ids: [],
      })),
    );
    socket.on(
      "message:reaction",
      (e: {
        room_id: string;
        seq: number;
        emoji: string;
        user_id: string;
        action: string;
        counts: Record<string, number>;
        version: number;
      }) =>
        this.patch(e.room_id, e.seq, e.version, (m) => ({
          ...m,
          reactions: mergeReactions(m, e.emoji, e.user_id, e.action, e.counts),
        })),
    );
    socket.on("room:read", this.marker("read"));
    socket.on("room:delivered", this.marker("delivered"));
    socket.on("typing", (e: sio.Typing) => {
      setTyping(this.state.room(e.room_id), e.user_id, e.typing, e.expires_at, Date.now());
      if (e.room_id === this.state.current) this.screen.typing();
    });
    socket.on("presence", (e: sio.Presence) => this.presence(e.room_id, [e]));
    // Several members at once (a room whose members reconnect together): one event for all of them.
    socket.on("presence:changes", (e: sio.PresenceChanges) => this.presence(e.room_id, e.changes));
    socket.on("room:added", (e: sio.RoomAdded) => void this.myRooms.added(e));
    socket.on("room:invited", (e: sio.RoomInvited) => this.myRooms.invited(e.by));
    socket.on("room:event", (e: RoomEvent) => this.myRooms.changed(e));
    socket.on("room:removed", (e: sio.RoomRemoved) => this.removed(e.room_id));
  }

  /** An edit, deletion or reaction (live, or my own acknowledged one), newer than the copy shown. */
  patch(roomId: string, seq: number, version: number, change: (m: Message) => Message): void {
    if (patchMessage(this.state.room(roomId), seq, version, change) && roomId === this.state.current) {
      this.screen.messages();
    }
  }

  private message(m: Message): void {
    const reading = this.screen.reading(m.room_id);
    const { isNew } = receiveMessage(this.state.room(m.room_id), m, this.state.me.id, reading);
    learnNames(this.users, [m]);
    this.sendQueue.delivered(m.room_id, m.client_msg_id);
    if (isNew) {
      if (reading) this.deps.maybeRead();
      this.deps.arrived(m);
      if (m.room_id === this.state.current) this.screen.announce(`${this.users.label(m.sender_id)}: ${m.body}`);
    }
    this.delivered(m.room_id);
    this.screen.rooms();
    if (m.room_id === this.state.current) this.screen.messages();
  }

  private marker(kind: "read" | "delivered") {
    return (e: sio.RoomReadEvent | sio.RoomDeliveredEvent): void => {
      if (applyMarker(this.state.room(e.room_id), kind, e.user_id, e.up_to_seq, this.state.me.id)) {
        void this.myRooms.loadUnread().then(() => this.screen.rooms()); // read on another device
      }
      if (e.room_id === this.state.current) this.screen.messages();
    };
  }

  private presence(roomId: string, changes: sio.PresenceEntry[]): void {
    if (applyPresence(this.state.room(roomId), changes)) {
      // Someone new (there is no member-joined event on the socket): read the member list again.
      void this.myRooms
        .loadMembers(roomId)
        .then(() => roomId === this.state.current && this.screen.header())
        .catch(() => undefined);
    }
    this.screen.rooms();
    if (roomId === this.state.current) this.screen.header();
  }

  private removed(roomId: string): void {
    const room = this.state.rooms.get(roomId);
    this.state.rooms.delete(roomId);
    this.sendQueue.drop(roomId);
    if (room) this.screen.announce(`You are no longer a member of ${this.deps.roomName(room)}.`);
    if (this.state.current === roomId) this.deps.close();
    this.screen.rooms();
  }

  /** `room:delivered` up to the newest message here, once per new message. */
  private delivered(roomId: string): void {
    const seq = markDelivered(this.state.room(roomId));
    if (seq !== null) void this.conn.emit("room:delivered", { room_id: roomId, seq });
  }

  /** Every connect: what waited for the connection goes first, then every room is (re)subscribed from its last
   * seq, in batches. */
  async connected(): Promise<void> {
    // The status bar now says Connected: each room's queue goes on in order. The resubscription's replay brings
    // their message:new like any other.
    this.sendQueue.reconnected();
    // A new socket starts online: a hidden tab says it is away again (docs/protocol.md, "Presence").
    if (this.deps.away()) void this.conn.emit("presence:set", { status: "away" });
    const ids = [...this.state.rooms.keys()];
    for (let i = 0; i < ids.length; i += MAX_ROOMS_PER_SUBSCRIBE) {
      const rooms = ids.slice(i, i + MAX_ROOMS_PER_SUBSCRIBE).map((room_id) => {
        const last = this.state.room(room_id).lastSeq;
        return last === null ? { room_id } : { room_id, last_seq: last };
      });
      const ack = await this.conn.emit<{ results: SubscribeResult[] }>("room:subscribe_many", { rooms });
      if (ack.ok) for (const result of ack.results) await this.subscribed(result);
    }
    this.screen.rooms();
    if (this.state.current) this.screen.header();
  }

  /** Subscribe to one room (just joined or added). */
  async subscribe(roomId: string): Promise<void> {
    const ack = await this.conn.emit<SubscribeResult>("room:subscribe", { room_id: roomId });
    if (ack.ok) await this.subscribed({ ...ack, room_id: roomId });
  }

  private async subscribed(result: SubscribeResult): Promise<void> {
    if (result.error) return;
    const roomId = result.room_id;
    const { reload, refreshChanges } = applySubscribed(this.state.room(roomId), result);
    if (reload) {
      // Too much was missed to replay: read what is shown and the counts again.
      if (roomId === this.state.current) {
        await this.history.latest(roomId);
        this.screen.messages();
      }
      await this.myRooms.loadUnread();
    }
    if (refreshChanges && roomId === this.state.current) await this.history.refreshVisible(roomId);
  }
}
