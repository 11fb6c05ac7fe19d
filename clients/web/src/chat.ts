// The signed-in app. It keeps each room's state (state/room.ts) and the messages on their way (state/send-queue.ts),
// reads from the services (chat-api.ts) and listens on the socket (connection.ts); every answer or event updates the
// state, then the views (views/) draw it again.

import * as chatApi from "./chat-api";
import { Connection, type ConnectionState } from "./connection";
import { h, replace } from "./dom";
import { MAX_ROOMS_PER_SUBSCRIBE } from "./limits";
import {
  addSent,
  applyMarker,
  applyPresence,
  applySubscribed,
  markDelivered,
  markRead,
  mergeLatestPage,
  mergeOlderPage,
  mergeReactions,
  mergeUnread,
  newRoomState,
  oldestSeq,
  openDivider,
  patchMessage,
  type RoomState,
  receiveMessage,
  setMarkers,
  setTyping,
  storeMessage,
  typingNow,
} from "./state/room";
import { SendQueue } from "./state/send-queue";
import type { Invitation, Member, Message, Presence, Profile, Room, RoomEvent, SubscribeResult } from "./types";
import { UserDirectory } from "./users";
import { errorText } from "./views/common";
import type { Draft } from "./views/composer";
import { ConversationView } from "./views/conversation";
import { createDialog, type DialogHost, directDialog, directoryDialog, membersDialog } from "./views/dialogs";
import { Sidebar } from "./views/sidebar";
import { Announcer, StatusBar } from "./views/status";

const TYPING_RENEW_MS = 2000;
/** A slow fallback: room:added, room:invited and room:event keep the lists current while the socket is up. */
const ROOMS_POLL_MS = 60_000;
const ROOM_PATH = /^\/rooms\/([0-9a-f-]{36})$/;

function clientMsgId(): string {
  return `web-${crypto.randomUUID()}`;
}

export class ChatApp {
  private readonly rooms = new Map<string, Room>();
  private readonly states = new Map<string, RoomState>();
  private readonly users = new UserDirectory(() => this.namesChanged());
  private readonly sendQueue: SendQueue;
  private readonly conn: Connection;
  private invitations: Invitation[] = [];
  private current: string | null = null;
  private lastTypingSent = 0;
  private typingRoom: string | null = null;
  private readTimer: number | undefined;
  private readonly timers: number[] = [];
  private readonly roomRefresh = new Map<string, number>();
  /** When this page joined or was added to a room (its own join, or room:added), so the slow refresh keeps it. */
  private readonly addedAt = new Map<string, number>();

  private readonly host: DialogHost;
  private readonly status = new StatusBar();
  private readonly announcer = new Announcer();
  private readonly sidebar: Sidebar;
  private readonly view: ConversationView;

  constructor(
    private readonly root: HTMLElement,
    private readonly me: Profile,
    private readonly onSignOut: (notice?: string) => void,
  ) {
    this.users.learn({ user_id: me.id, username: me.username, display_name: me.display_name ?? me.username });
    this.host = {
      me,
      users: this.users,
      name: (userId) => this.users.label(userId),
      roomName: (room) => this.roomName(room),
      announce: (text, error) => this.announcer.say(text, error),
      isMember: (roomId) => this.rooms.has(roomId),
      joined: (roomId) => this.joined(roomId),
      members: (roomId) => this.loadMembers(roomId),
      presence: (roomId) => this.roomState(roomId).presence,
    };
    this.sidebar = new Sidebar(this.host, {
      signOut: () => this.signOut(),
      browse: () => directoryDialog(this.host),
      create: () => createDialog(this.host),
      direct: () => directDialog(this.host),
      open: (roomId) => void this.open(roomId),
      answer: (room, accept) => void this.answerInvitation(room, accept),
    });
    this.view = new ConversationView(this.host, {
      back: () => this.closeRoom(),
      members: (room) => void membersDialog(this.host, room),
      leave: (room) => void this.leave(room),
      loadOlder: (roomId) => void this.loadOlder(roomId),
      scrolled: () => this.maybeRead(),
      send: (draft) => this.send(draft),
      saveEdit: (target, body) => this.saveEdit(target, body),
      typed: (hasText) => this.typed(hasText),
      stopTyping: () => this.stopTyping(),
      upload: (roomId, file) => chatApi.upload(roomId, file),
      reply: (m) => this.view.composer?.reply(m),
      startEdit: (m) => this.view.composer?.startEdit(m),
      react: (m, emoji) => void this.react(m, emoji),
      remove: (m) => void this.remove(m),
      retry: (p) => this.sendQueue.retry(p),
      discard: (p) => this.sendQueue.discard(p),
    });
    this.sendQueue = new SendQueue({
      send: (payload) => this.conn.emit<{ message_id: string; seq: number }>("message:send", payload),
      connected: () => this.conn.socket.connected,
      stored: (p, ack) => addSent(this.roomState(p.room_id), p, ack, this.me.id),
      changed: (roomId) => roomId === this.current && this.renderMessages(),
    });
    this.conn = new Connection({
      state: (state, detail) => this.showState(state, detail),
      connected: () => void this.onConnected(),
      signedOut: (reason) => this.signOut(reason, false),
    });
    this.bindSocket();
    this.timers.push(
      window.setInterval(() => this.tick(), 1000),
      window.setInterval(() => !document.hidden && void this.refreshRooms(), ROOMS_POLL_MS),
    );
    window.addEventListener("focus", this.onFocus);
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  private readonly onFocus = (): void => void this.refreshRooms();
  private readonly onVisibility = (): void => {
    // Away while the tab is hidden; back online (and reading) when it is shown again.
    void this.conn.emit("presence:set", { status: document.hidden ? "away" : "online" });
    this.maybeRead();
  };

  private dispose(): void {
    this.conn.stop();
    for (const timer of this.timers) window.clearInterval(timer);
    window.removeEventListener("focus", this.onFocus);
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.clearTimeout(this.readTimer);
    for (const timer of this.roomRefresh.values()) window.clearTimeout(timer);
    this.view.attachments.dispose();
  }

  // ---------------------------------------------------------------- start-up and layout

  async start(): Promise<void> {
    replace(
      this.root,
      h(
        "div",
        { class: "app" },
        this.status.element,
        this.sidebar.element,
        h("main", { class: "main" }, this.view.element),
      ),
      this.announcer.element,
    );
    await Promise.all([this.loadRooms(), this.loadInvitations(), this.loadContacts()]);
    this.conn.start();
    const match = ROOM_PATH.exec(location.pathname);
    if (match && this.rooms.has(match[1])) void this.open(match[1], false);
    else this.showEmpty();
    window.addEventListener("popstate", () => {
      const m = ROOM_PATH.exec(location.pathname);
      if (m && this.rooms.has(m[1])) void this.open(m[1], false);
      else this.closeRoom();
    });
  }

  private showState(state: ConnectionState, detail?: string): void {
    this.status.show(state, detail);
    if (state !== "online") {
      this.sendQueue.disconnected();
      this.renderMessages();
    }
  }

  private signOut(notice?: string, callServer = true): void {
    this.dispose();
    const done = () => this.onSignOut(notice);
    if (callServer)
      void chatApi
        .logout()
        .catch(() => undefined)
        .finally(done);
    else done();
  }

  private roomState(roomId: string): RoomState {
    let s = this.states.get(roomId);
    if (!s) {
      s = newRoomState();
      this.states.set(roomId, s);
    }
    return s;
  }

  private name(userId: string): string {
    return this.users.label(userId);
  }

  /** Names arrived from a lookup: redraw what shows people. */
  private namesChanged(): void {
    this.renderRooms();
    this.renderInvitations();
    if (!this.current) return;
    this.renderHeader();
    this.renderTyping();
    this.renderMessages();
  }

  private roomName(room: Room): string {
    if (room.name) return room.name;
    if (room.kind === "direct") {
      const other = this.roomState(room.id).members?.find((m) => m.user_id !== this.me.id);
      return other ? this.name(other.user_id) : "Direct message";
    }
    return "Unnamed room";
  }

  /** The room is open, scrolled to its end and visible: what arrives is read at once. */
  private reading(roomId: string): boolean {
    return roomId === this.current && this.view.atBottom() && !document.hidden;
  }

  private announce(text: string, error = false): void {
    this.announcer.say(text, error);
  }

  // ---------------------------------------------------------------- loading

  private async loadRooms(): Promise<void> {
    this.rooms.clear();
    for (const room of await chatApi.myRooms()) this.rooms.set(room.id, room);
    await this.loadUnread();
    await Promise.all(
      [...this.rooms.values()]
        .filter((r) => r.kind === "direct")
        .map((r) => this.loadMembers(r.id).catch(() => undefined)),
    );
    this.renderRooms();
  }

  /** The slow fallback behind room:added, room:invited and room:removed (events missed while disconnected or
   * not delivered): the lists are re-read every minute and on window focus. */
  private async refreshRooms(): Promise<void> {
    const startedAt = Date.now();
    let rooms: Room[];
    try {
      rooms = await chatApi.myRooms();
    } catch {
      return;
    }
    const added = rooms.filter((r) => !this.rooms.has(r.id));
    const ids = new Set(rooms.map((r) => r.id));
    for (const id of [...this.rooms.keys()]) {
      if (ids.has(id) || (this.addedAt.get(id) ?? 0) >= startedAt) continue; // joined while the list was read
      this.rooms.delete(id); // left, kicked or deleted while this page was not listening
      if (this.current === id) this.closeRoom();
    }
    for (const room of rooms) this.rooms.set(room.id, room);
    for (const room of added) {
      if (room.kind === "direct") await this.loadMembers(room.id).catch(() => undefined);
      if (this.conn.socket.connected) await this.subscribeOne(room.id);
    }
    if (added.length) await this.loadUnread();
    await this.loadInvitations();
    this.renderRooms();
  }

  private async loadUnread(): Promise<void> {
    try {
      for (const u of await chatApi.unread()) mergeUnread(this.roomState(u.room_id), u, this.reading(u.room_id));
    } catch {
      // counts are a convenience; the rooms still work
    }
  }

  private async loadMembers(roomId: string): Promise<Member[]> {
    const members = await chatApi.members(roomId);
    this.roomState(roomId).members = members;
    await this.users.ensure(members.map((m) => m.user_id)).catch(() => undefined);
    return members;
  }

  private async loadInvitations(): Promise<void> {
    try {
      this.invitations = await chatApi.invitations();
      this.users.want(...this.invitations.map((i) => i.invited_by));
    } catch {
      this.invitations = [];
    }
    this.renderInvitations();
  }

  private async loadContacts(): Promise<void> {
    try {
      for (const c of await chatApi.contacts()) {
        if (c.username)
          this.users.learn({ user_id: c.user_id, username: c.username, display_name: c.display_name ?? c.username });
      }
    } catch {
      // names then show as short ids
    }
  }

  /** Mentions carry usernames: shown at once, before any lookup. */
  private learnNames(messages: Message[]): void {
    for (const message of messages) {
      for (const m of message.mentions)
        this.users.learn({ user_id: m.user_id, username: m.username, display_name: "" });
    }
  }

  /** The newest page of a room (again, after `recovered: false`, or on first open). */
  private async loadLatest(roomId: string): Promise<void> {
    const s = this.roomState(roomId);
    s.loading = true;
    try {
      const page = await chatApi.latestPage(roomId);
      this.learnNames(page.items);
      mergeLatestPage(s, page.items, chatApi.PAGE);
    } finally {
      s.loading = false;
    }
  }

  /** Infinite scroll: the page before the oldest message shown. */
  private async loadOlder(roomId: string): Promise<void> {
    const s = this.roomState(roomId);
    const oldest = oldestSeq(s);
    if (s.loading || !s.hasMore || oldest === null) return;
    s.loading = true;
    const restore = this.view.keepScrollPosition();
    try {
      const page = await chatApi.historyPage(roomId, oldest);
      this.learnNames(page.items);
      mergeOlderPage(s, page.items, chatApi.PAGE);
    } catch (e) {
      this.announce(`Could not load older messages: ${errorText(e)}`);
    } finally {
      s.loading = false;
    }
    if (roomId === this.current) {
      this.renderMessages(false);
      restore();
    }
  }

  private async loadReceipts(roomId: string): Promise<void> {
    try {
      setMarkers(this.roomState(roomId), (await chatApi.receipts(roomId)).markers);
      if (roomId === this.current) this.renderMessages();
    } catch {
      // indicators stay at "sent"
    }
  }

  // ---------------------------------------------------------------- socket

  private bindSocket(): void {
    const socket = this.conn.socket;
    socket.on("message:new", (m: Message) => this.onMessage(m));
    socket.on(
      "message:edited",
      (e: { room_id: string; seq: number; body: string; edited_at: string; version: number }) =>
        this.patch(e.room_id, e.seq, e.version, (m) => ({ ...m, body: e.body, edited_at: e.edited_at })),
    );
    socket.on("message:deleted", (e: { room_id: string; seq: number; version: number }) =>
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
    const marker = (kind: "read" | "delivered") => (e: { room_id: string; user_id: string; up_to_seq: number }) => {
      if (applyMarker(this.roomState(e.room_id), kind, e.user_id, e.up_to_seq, this.me.id)) {
        void this.loadUnread().then(() => this.renderRooms()); // read on another device
      }
      if (e.room_id === this.current) this.renderMessages();
    };
    socket.on("room:read", marker("read"));
    socket.on("room:delivered", marker("delivered"));
    socket.on("typing", (e: { room_id: string; user_id: string; typing: boolean; expires_at: string }) => {
      setTyping(this.roomState(e.room_id), e.user_id, e.typing, e.expires_at, Date.now());
      if (e.room_id === this.current) this.renderTyping();
    });
    socket.on("presence", (e: { room_id: string; user_id: string; status: Presence }) =>
      this.onPresence(e.room_id, [e]),
    );
    // Several members at once (a room whose members reconnect together): one event for all of them.
    socket.on("presence:changes", (e: { room_id: string; changes: { user_id: string; status: Presence }[] }) =>
      this.onPresence(e.room_id, e.changes),
    );
    socket.on("room:added", (e: { room_id: string; role: string; by: string | null }) => void this.onAdded(e));
    socket.on("room:invited", (e: { room_id: string; by: string }) => {
      void this.loadInvitations().then(() => this.announce(`${this.name(e.by)} invited you to a room.`));
    });
    socket.on("room:event", (e: RoomEvent) => this.onRoomEvent(e));
    socket.on("room:removed", (e: { room_id: string }) => {
      const room = this.rooms.get(e.room_id);
      this.rooms.delete(e.room_id);
      this.sendQueue.drop(e.room_id);
      if (room) this.announce(`You are no longer a member of ${this.roomName(room)}.`);
      if (this.current === e.room_id) this.closeRoom();
      this.renderRooms();
    });
  }

  private onPresence(roomId: string, changes: { user_id: string; status: Presence }[]): void {
    if (applyPresence(this.roomState(roomId), changes)) {
      // Someone new (there is no member-joined event on the socket): read the member list again.
      void this.loadMembers(roomId)
        .then(() => roomId === this.current && this.renderHeader())
        .catch(() => undefined);
    }
    this.renderRooms();
    if (roomId === this.current) this.renderHeader();
  }

  /** Put in a room (a direct message opened with me, an invitation accepted, a join on another device). */
  private async onAdded(e: { room_id: string; role: string; by: string | null }): Promise<void> {
    this.invitations = this.invitations.filter((i) => i.room.id !== e.room_id);
    this.renderInvitations();
    // Already here, or being added by this page (joined() subscribes itself).
    if (this.rooms.has(e.room_id) || Date.now() - (this.addedAt.get(e.room_id) ?? 0) < 10_000) return;
    this.addedAt.set(e.room_id, Date.now());
    try {
      const room = await chatApi.room(e.room_id);
      this.rooms.set(room.id, room);
      if (room.kind === "direct") await this.loadMembers(room.id).catch(() => undefined);
      this.renderRooms();
      await this.subscribeOne(room.id);
      await this.loadUnread();
      this.renderRooms();
      if (e.by && e.by !== this.me.id) this.announce(`${this.name(e.by)} added you to ${this.roomName(room)}.`);
    } catch {
      // the 60-second refresh will find it
    }
  }

  /** A chat.rooms.events event about a subscribed room: re-read the room (name, topic, count, my role) and its
   * member list, at most once per 300 ms per room; events older than what is shown are ignored. */
  private onRoomEvent(e: RoomEvent): void {
    const room = this.rooms.get(e.room_id);
    if (!room || e.room_version <= room.version) return;
    if (e.type === "room.deleted") return; // room:removed follows
    if (e.user_id) this.users.want(e.user_id);
    if (this.roomRefresh.has(e.room_id)) return;
    this.roomRefresh.set(
      e.room_id,
      window.setTimeout(() => {
        this.roomRefresh.delete(e.room_id);
        void this.rereadRoom(e.room_id);
      }, 300),
    );
  }

  private async rereadRoom(roomId: string): Promise<void> {
    try {
      const fresh = await chatApi.room(roomId);
      if (!this.rooms.has(fresh.id)) return;
      this.rooms.set(fresh.id, fresh);
      if (this.roomState(fresh.id).members || fresh.kind === "direct") await this.loadMembers(fresh.id);
    } catch {
      return; // gone or no longer visible: room:removed or the slow refresh handles it
    }
    this.renderRooms();
    if (this.current === roomId) {
      this.renderHeader();
      this.view.composer?.renderBar();
    }
  }

  private patch(roomId: string, seq: number, version: number, change: (m: Message) => Message): void {
    if (patchMessage(this.roomState(roomId), seq, version, change) && roomId === this.current) this.renderMessages();
  }

  private onMessage(m: Message): void {
    const reading = this.reading(m.room_id);
    const { isNew } = receiveMessage(this.roomState(m.room_id), m, this.me.id, reading);
    this.learnNames([m]);
    this.sendQueue.delivered(m.room_id, m.client_msg_id);
    if (isNew) {
      if (reading) this.maybeRead();
      if (m.room_id === this.current) this.announce(`${this.name(m.sender_id)}: ${m.body}`);
    }
    this.delivered(m.room_id);
    this.renderRooms();
    if (m.room_id === this.current) this.renderMessages();
  }

  private async onConnected(): Promise<void> {
    // What waited for the connection goes first (the status bar now says Connected), each room's queue in order;
    // the resubscription's replay brings its message:new like any other.
    this.sendQueue.reconnected();
    const ids = [...this.rooms.keys()];
    for (let i = 0; i < ids.length; i += MAX_ROOMS_PER_SUBSCRIBE) {
      const rooms = ids.slice(i, i + MAX_ROOMS_PER_SUBSCRIBE).map((room_id) => {
        const last = this.roomState(room_id).lastSeq;
        return last === null ? { room_id } : { room_id, last_seq: last };
      });
      const ack = await this.conn.emit<{ results: SubscribeResult[] }>("room:subscribe_many", { rooms });
      if (ack.ok) for (const result of ack.results) await this.subscribed(result);
    }
    this.renderRooms();
    if (this.current) this.renderHeader();
  }

  private async subscribed(result: SubscribeResult): Promise<void> {
    if (result.error) return;
    const roomId = result.room_id;
    const { reload, refreshChanges } = applySubscribed(this.roomState(roomId), result);
    if (reload) {
      // Too much was missed to replay: reload what is shown and the counts.
      if (roomId === this.current) {
        await this.loadLatest(roomId);
        this.renderMessages();
      }
      await this.loadUnread();
    }
    if (refreshChanges && roomId === this.current) {
      // Edits, deletions and markers made while away are not replayed: refresh the visible page.
      const page = await chatApi.historyPage(roomId).catch(() => null);
      if (page) {
        this.learnNames(page.items);
        for (const m of page.items) storeMessage(this.roomState(roomId), m);
      }
      await this.loadReceipts(roomId);
      this.renderMessages();
    }
  }

  private async subscribeOne(roomId: string): Promise<void> {
    const ack = await this.conn.emit<SubscribeResult>("room:subscribe", { room_id: roomId });
    if (ack.ok) await this.subscribed({ ...ack, room_id: roomId });
  }

  // ---------------------------------------------------------------- sending and editing

  private send(draft: Draft): void {
    const roomId = this.current;
    if (!roomId) return;
    this.stopTyping();
    this.sendQueue.enqueue({
      client_msg_id: clientMsgId(),
      room_id: roomId,
      body: draft.body,
      reply_to: draft.replyTo,
      attachment_ids: draft.attachmentIds,
      created_at: new Date().toISOString(),
    });
    this.renderMessages(true);
  }

  private saveEdit(target: Message, body: string): void {
    void this.conn.emit("message:edit", { room_id: target.room_id, message_id: target.id, body }).then((ack) => {
      if (!ack.ok) this.announce(`Edit failed: ${ack.error.message}`);
    });
  }

  private async remove(m: Message): Promise<void> {
    if (!window.confirm("Delete this message for everyone?")) return;
    const ack = await this.conn.emit("message:delete", { room_id: m.room_id, message_id: m.id });
    if (!ack.ok) this.announce(`Delete failed: ${ack.error.message}`, true);
  }

  private async react(m: Message, emoji: string): Promise<void> {
    const current = this.roomState(m.room_id).messages.get(m.seq) ?? m;
    const mine = current.reactions.some((r) => r.emoji === emoji && r.user_ids.includes(this.me.id));
    const action = mine ? "remove" : "add";
    const ack = await this.conn.emit<{ version: number; counts: Record<string, number> }>("message:react", {
      room_id: m.room_id,
      message_id: m.id,
      emoji,
      action,
    });
    if (!ack.ok) {
      this.announce(`Reaction failed: ${ack.error.message}`, true);
      return;
    }
    this.patch(m.room_id, m.seq, ack.version, (x) => ({
      ...x,
      reactions: mergeReactions(x, emoji, this.me.id, action, ack.counts),
    }));
  }

  // ---------------------------------------------------------------- markers, typing

  /** `room:read` up to the newest message when the room is in view and scrolled to the end. */
  private maybeRead(): void {
    window.clearTimeout(this.readTimer);
    this.readTimer = window.setTimeout(() => {
      const roomId = this.current;
      if (!roomId || document.hidden || !this.view.atBottom()) return;
      const { changed, seq } = markRead(this.roomState(roomId));
      if (changed) this.renderRooms();
      if (seq !== null) void this.conn.emit<{ seq: number }>("room:read", { room_id: roomId, seq });
    }, 300);
  }

  private delivered(roomId: string): void {
    const seq = markDelivered(this.roomState(roomId));
    if (seq !== null) void this.conn.emit("room:delivered", { room_id: roomId, seq });
  }

  private typed(hasText: boolean): void {
    const roomId = this.current;
    if (!roomId) return;
    if (!hasText) {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_RENEW_MS && this.typingRoom === roomId) return;
    this.lastTypingSent = now;
    this.typingRoom = roomId;
    void this.conn.emit("typing:start", { room_id: roomId });
  }

  private stopTyping(): void {
    if (!this.typingRoom) return;
    void this.conn.emit("typing:stop", { room_id: this.typingRoom });
    this.typingRoom = null;
    this.lastTypingSent = 0;
  }

  // ---------------------------------------------------------------- rooms: join, open, leave

  private async answerInvitation(room: Room, accept: boolean): Promise<void> {
    try {
      await chatApi.answerInvitation(room.id, accept);
      await this.loadInvitations();
      if (accept) await this.joined(room.id);
    } catch (e) {
      this.announce(errorText(e), true);
    }
  }

  private async joined(roomId: string): Promise<void> {
    this.addedAt.set(roomId, Date.now());
    const room = await chatApi.room(roomId);
    this.rooms.set(room.id, room);
    if (room.kind === "direct") await this.loadMembers(room.id).catch(() => undefined);
    this.renderRooms();
    await this.subscribeOne(room.id);
    await this.open(room.id);
  }

  private async leave(room: Room): Promise<void> {
    if (!window.confirm(`Leave ${this.roomName(room)}?`)) return;
    try {
      await chatApi.leave(room.id);
      this.rooms.delete(room.id);
      this.closeRoom();
    } catch (e) {
      this.announce(errorText(e), true);
    }
  }

  private showEmpty(): void {
    document.body.classList.remove("in-room");
    this.view.empty();
  }

  private closeRoom(): void {
    this.stopTyping();
    this.current = null;
    if (location.pathname !== "/") history.pushState(null, "", "/");
    this.renderRooms();
    this.showEmpty();
  }

  async open(roomId: string, push = true): Promise<void> {
    if (this.current !== roomId) this.stopTyping();
    this.current = roomId;
    if (push && location.pathname !== `/rooms/${roomId}`) history.pushState(null, "", `/rooms/${roomId}`);
    document.body.classList.add("in-room");
    const s = this.roomState(roomId);
    openDivider(s);
    this.renderRooms();
    this.view.show(roomId);
    this.renderHeader();
    if (!s.loaded) {
      try {
        await this.loadLatest(roomId);
      } catch (e) {
        this.announce(`Could not load the history: ${errorText(e)}`, true);
      }
    }
    if (this.current !== roomId) return;
    this.renderMessages(true);
    void this.loadReceipts(roomId);
    if (!s.members)
      void this.loadMembers(roomId)
        .then(() => this.renderHeader())
        .catch(() => undefined);
    this.maybeRead();
    this.view.composer?.focus();
  }

  // ---------------------------------------------------------------- drawing

  private renderRooms(): void {
    this.sidebar.renderRooms([...this.rooms.values()], (roomId) => this.roomState(roomId), this.current);
  }

  private renderInvitations(): void {
    this.sidebar.renderInvitations(this.invitations);
  }

  private renderHeader(): void {
    const room = this.current ? this.rooms.get(this.current) : undefined;
    if (room) this.view.renderHeader(room, this.roomState(room.id));
  }

  /** Every second: typing indicators expire, and a message waiting out a rate limit counts down. */
  private tick(): void {
    this.renderTyping();
    if (this.current && this.sendQueue.list(this.current).some((p) => p.retryAt !== null)) this.renderMessages();
  }

  private renderTyping(): void {
    if (!this.current) return;
    this.view.renderTyping(typingNow(this.roomState(this.current), Date.now(), this.me.id).map((u) => this.name(u)));
  }

  private renderMessages(forceBottom = false): void {
    const roomId = this.current;
    const room = roomId ? this.rooms.get(roomId) : undefined;
    if (!roomId || !room) return;
    const short = this.view.renderMessages(room, this.roomState(roomId), this.sendQueue.list(roomId), forceBottom);
    this.renderTyping();
    // A page that does not fill the view cannot be scrolled up: fetch the next one straight away.
    if (short) void this.loadOlder(roomId);
  }
}
