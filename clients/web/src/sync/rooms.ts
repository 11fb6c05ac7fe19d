// My rooms and invitations, kept in step with the rooms service: read at start, re-read on room:added,
// room:invited and room:event, and as a slow fallback every minute and on window focus (for events missed while
// disconnected); joining, answering invitations and leaving.

import * as chatApi from "../chat-api";
import type { ChatState } from "../state/chat-state";
import { mergeUnread } from "../state/room";
import type { Member, Room, RoomEvent } from "../types";
import type { UserDirectory } from "../users";
import { errorText } from "../views/common";
import type { Screen } from "./screen";

/** room:event bursts (a mass join) cost one re-read of the room per this many milliseconds. */
const ROOM_EVENT_DEBOUNCE_MS = 300;
/** room:added for a room this page itself just joined is ignored for this long (it subscribes itself). */
const OWN_JOIN_MS = 10_000;

export interface MyRoomsDeps {
  /** Subscribe this socket to a room it was just put in. */
  subscribe(roomId: string): Promise<void>;
  connected(): boolean;
  open(roomId: string): Promise<void>;
  close(): void;
  roomName(room: Room): string;
}

export class MyRooms {
  private readonly rereads = new Map<string, number>();
  /** When this page joined or was added to a room, so that the slow refresh keeps it. */
  private readonly addedAt = new Map<string, number>();

  constructor(
    private readonly state: ChatState,
    private readonly users: UserDirectory,
    private readonly screen: Screen,
    private readonly deps: MyRoomsDeps,
  ) {}

  dispose(): void {
    for (const timer of this.rereads.values()) window.clearTimeout(timer);
  }

  /** Start-up: the rooms (with their unread counts and, for direct rooms, who is in them), invitations, contacts. */
  async load(): Promise<void> {
    await Promise.all([this.loadRooms(), this.loadInvitations(), this.loadContacts()]);
  }

  private async loadRooms(): Promise<void> {
    const rooms = this.state.rooms;
    rooms.clear();
    for (const room of await chatApi.myRooms()) rooms.set(room.id, room);
    await this.loadUnread();
    await Promise.all(
      [...rooms.values()].filter((r) => r.kind === "direct").map((r) => this.loadMembers(r.id).catch(() => undefined)),
    );
    this.screen.rooms();
  }

  /** The slow fallback behind room:added, room:invited and room:removed (events missed while disconnected or
   * not delivered): the lists are read again. */
  async refresh(): Promise<void> {
    const startedAt = Date.now();
    let fresh: Room[];
    try {
      fresh = await chatApi.myRooms();
    } catch {
      return;
    }
    const rooms = this.state.rooms;
    const added = fresh.filter((r) => !rooms.has(r.id));
    const ids = new Set(fresh.map((r) => r.id));
    for (const id of [...rooms.keys()]) {
      if (ids.has(id) || (this.addedAt.get(id) ?? 0) >= startedAt) continue; // joined while the list was read
      rooms.delete(id); // left, kicked or deleted while this page was not listening
      if (this.state.current === id) this.deps.close();
    }
    for (const room of fresh) rooms.set(room.id, room);
    for (const room of added) {
      if (room.kind === "direct") await this.loadMembers(room.id).catch(() => undefined);
      if (this.deps.connected()) await this.deps.subscribe(room.id);
    }
    if (added.length) await this.loadUnread();
    await this.loadInvitations();
    this.screen.rooms();
  }

  async loadUnread(): Promise<void> {
    try {
      for (const u of await chatApi.unread())
        mergeUnread(this.state.room(u.room_id), u, this.screen.reading(u.room_id));
    } catch {
      // counts are a convenience; the rooms still work
    }
  }

  /** The member list, read again and kept for the room (names looked up before it is shown). */
  async loadMembers(roomId: string): Promise<Member[]> {
    const members = await chatApi.members(roomId);
    this.state.room(roomId).members = members;
    await this.users.ensure(members.map((m) => m.user_id)).catch(() => undefined);
    return members;
  }

  async loadInvitations(): Promise<void> {
    try {
      this.state.invitations = await chatApi.invitations();
      this.users.want(...this.state.invitations.map((i) => i.invited_by));
    } catch {
      this.state.invitations = [];
    }
    this.screen.invitations();
  }

  private async loadContacts(): Promise<void> {
    try {
      for (const c of await chatApi.contacts()) {
        if (c.username) {
          this.users.learn({ user_id: c.user_id, username: c.username, display_name: c.display_name ?? c.username });
        }
      }
    } catch {
      // names then show as short ids
    }
  }

  /** room:added: put in a room (a direct message opened with me, an invitation accepted, a join on another
   * device). */
  async added(e: { room_id: string; role: string; by: string | null }): Promise<void> {
    this.state.invitations = this.state.invitations.filter((i) => i.room.id !== e.room_id);
    this.screen.invitations();
    // Already here, or being added by this page (joined() subscribes itself).
    if (this.state.rooms.has(e.room_id) || Date.now() - (this.addedAt.get(e.room_id) ?? 0) < OWN_JOIN_MS) return;
    this.addedAt.set(e.room_id, Date.now());
    try {
      const room = await chatApi.room(e.room_id);
      this.state.rooms.set(room.id, room);
      if (room.kind === "direct") await this.loadMembers(room.id).catch(() => undefined);
      this.screen.rooms();
      await this.deps.subscribe(room.id);
      await this.loadUnread();
      this.screen.rooms();
      if (e.by && e.by !== this.state.me.id) {
        this.screen.announce(`${this.users.label(e.by)} added you to ${this.deps.roomName(room)}.`);
      }
    } catch {
      // the slow refresh will find it
    }
  }

  /** room:invited: read the invitations again. */
  invited(by: string): void {
    void this.loadInvitations().then(() => this.screen.announce(`${this.users.label(by)} invited you to a room.`));
  }

  /** room:event about a subscribed room: read the room (name, topic, count, my role) and its member list again,
   * at most once per 300 ms per room; events older than what is shown are ignored. */
  changed(e: RoomEvent): void {
    const room = this.state.rooms.get(e.room_id);
    if (!room || e.room_version <= room.version) return;
    if (e.type === "room.deleted") return; // room:removed follows
    if (e.user_id) this.users.want(e.user_id);
    if (this.rereads.has(e.room_id)) return;
    this.rereads.set(
      e.room_id,
      window.setTimeout(() => {
        this.rereads.delete(e.room_id);
        void this.reread(e.room_id);
      }, ROOM_EVENT_DEBOUNCE_MS),
    );
  }

  private async reread(roomId: string): Promise<void> {
    try {
      const fresh = await chatApi.room(roomId);
      if (!this.state.rooms.has(fresh.id)) return;
      this.state.rooms.set(fresh.id, fresh);
      if (this.state.room(fresh.id).members || fresh.kind === "direct") await this.loadMembers(fresh.id);
    } catch {
      return; // gone or no longer visible: room:removed or the slow refresh handles it
    }
    this.screen.rooms();
    if (this.state.current === roomId) {
      this.screen.header();
      this.screen.composerBar();
    }
  }

  /** Joined, created, accepted or opened a room here: add it, subscribe and open it. */
  async joined(roomId: string): Promise<void> {
    this.addedAt.set(roomId, Date.now());
    const room = await chatApi.room(roomId);
    this.state.rooms.set(room.id, room);
    if (room.kind === "direct") await this.loadMembers(room.id).catch(() => undefined);
    this.screen.rooms();
    await this.deps.subscribe(room.id);
    await this.deps.open(room.id);
  }

  async answer(room: Room, accept: boolean): Promise<void> {
    try {
      await chatApi.answerInvitation(room.id, accept);
      await this.loadInvitations();
      if (accept) await this.joined(room.id);
    } catch (e) {
      this.screen.announce(errorText(e), true);
    }
  }

  async leave(room: Room): Promise<void> {
    if (!window.confirm(`Leave ${this.deps.roomName(room)}?`)) return;
    try {
      await chatApi.leave(room.id);
      this.state.rooms.delete(room.id);
      this.deps.close();
    } catch (e) {
      this.screen.announce(errorText(e), true);
    }
  }
}
