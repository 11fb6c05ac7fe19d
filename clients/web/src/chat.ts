// The signed-in app: it puts the pieces together and handles what the person does. The state lives in state/
// (ChatState, each room's RoomState, the SendQueue). sync/ keeps the state in step with the server: MyRooms (rooms
// and invitations), History (pages of messages) and LiveEvents (the socket). views/ draws the state. This file
// opens and closes rooms, sends, edits and reacts, sends the read marker and typing, and redraws.

import { JumpToUnread } from "./attention/jump";
import { Notifier } from "./attention/notifications";
import { resetTitle } from "./attention/title";
import * as chatApi from "./chat-api";
import { Connection, type ConnectionState } from "./connection";
import { h, replace } from "./dom";
import { ChatState } from "./state/chat-state";
import type { Candidate } from "./state/mentions";
import { addNotice, addSent, markRead, mergeReactions, openDivider, typingNow } from "./state/room";
import { SendQueue } from "./state/send-queue";
import { History } from "./sync/history";
import { LiveEvents } from "./sync/live";
import { MyRooms } from "./sync/rooms";
import type { Screen } from "./sync/screen";
import type { Message, Profile, Room, RoomEvent } from "./types";
import { UserDirectory } from "./users";
import { errorText } from "./views/common";
import type { Draft } from "./views/composer";
import { ConversationView } from "./views/conversation";
import { createDialog, type DialogHost, directDialog, directoryDialog, membersDialog } from "./views/dialogs";
import { searchDialog } from "./views/search";
import { AccountMenu } from "./views/settings/account-menu";
import { Sidebar } from "./views/sidebar";
import { Announcer, StatusBar } from "./views/status";

const TYPING_RENEW_MS = 2000;
/** A slow fallback: room:added, room:invited and room:event keep the lists current while the socket is up. */
const ROOMS_POLL_MS = 60_000;
/** `room:read` waits for the list to settle (scrolling, a burst of messages). */
const READ_DELAY_MS = 300;
const ROOM_PATH = /^\/rooms\/([0-9a-f-]{36})$/;

function clientMsgId(): string {
  return `web-${crypto.randomUUID()}`;
}

export class ChatApp {
  private readonly state: ChatState;
  private readonly users = new UserDirectory(() => this.namesChanged());
  private readonly conn: Connection;
  private readonly sendQueue: SendQueue;
  private readonly history: History;
  private readonly myRooms: MyRooms;
  private readonly live: LiveEvents;

  private readonly host: DialogHost;
  private readonly status = new StatusBar();
  private readonly announcer = new Announcer();
  private readonly sidebar: Sidebar;
  private readonly account: AccountMenu;
  private readonly view: ConversationView;
  private readonly notifier: Notifier;
  private readonly jump: JumpToUnread;

  private lastTypingSent = 0;
  private typingRoom: string | null = null;
  private readTimer: number | undefined;
  private readPending: string | null = null;
  private readonly timers: number[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly me: Profile,
    private readonly onSignOut: (notice?: string) => void,
  ) {
    this.state = new ChatState(me);
    this.users.learn({ user_id: me.id, username: me.username, display_name: me.display_name ?? me.username });
    const screen: Screen = {
      rooms: () => this.renderRooms(),
      invitations: () => this.sidebar.renderInvitations(this.state.invitations),
      header: () => this.renderHeader(),
      messages: (forceBottom) => this.renderMessages(forceBottom),
      typing: () => this.renderTyping(),
      composerBar: () => this.view.composer?.renderBar(),
      announce: (text, error) => this.announcer.say(text, error),
      reading: (roomId) => this.reading(roomId),
      keepScrollPosition: () => this.view.keepScrollPosition(),
    };
    this.conn = new Connection({
      state: (state, detail) => this.showState(state, detail),
      connected: () => void this.live.connected(),
      signedOut: (reason) => this.signOut(reason, false),
    });
    this.sendQueue = new SendQueue({
      send: (payload) => this.conn.emit<{ message_id: string; seq: number }>("message:send", payload),
      connected: () => this.conn.socket.connected,
      stored: (p, ack) => addSent(this.state.room(p.room_id), p, ack, me.id),
      changed: (roomId) => roomId === this.state.current && this.renderMessages(),
    });
    this.history = new History(this.state, this.users, screen);
    this.myRooms = new MyRooms(this.state, this.users, screen, {
      subscribe: (roomId) => this.live.subscribe(roomId),
      connected: () => this.conn.socket.connected,
      open: (roomId) => this.open(roomId),
      close: () => this.closeRoom(),
      roomName: (room) => this.roomName(room),
    });
    this.live = new LiveEvents(this.state, this.users, screen, this.conn, this.sendQueue, this.history, this.myRooms, {
      maybeRead: () => this.maybeRead(),
      close: () => this.closeRoom(),
      roomName: (room) => this.roomName(room),
      away: () => document.hidden,
      arrived: (m) => this.notifier.message(m),
    });
    this.notifier = new Notifier({
      me: me.id,
      room: (roomId) => this.state.rooms.get(roomId),
      roomName: (room) => this.roomName(room),
      name: (userId) => this.users.label(userId),
      open: (roomId) => void this.open(roomId),
    });
    this.jump = new JumpToUnread({
      me: me.id,
      current: () =>
        this.state.current ? { roomId: this.state.current, state: this.state.room(this.state.current) } : null,
      list: () => this.view.element.querySelector<HTMLElement>("ol.messages"),
      older: (roomId) => this.history.older(roomId),
    });

    this.host = {
      me,
      users: this.users,
      name: (userId) => this.users.label(userId),
      roomName: (room) => this.roomName(room),
      announce: (text, error) => this.announcer.say(text, error),
      isMember: (roomId) => this.state.rooms.has(roomId),
      joined: (roomId) => this.myRooms.joined(roomId),
      members: (roomId) => this.myRooms.loadMembers(roomId),
      presence: (roomId) => this.state.room(roomId).presence,
    };
    this.sidebar = new Sidebar(this.host, {
      signOut: () => this.signOut(),
      browse: () => directoryDialog(this.host),
      create: () => createDialog(this.host),
      direct: () => directDialog(this.host),
      open: (roomId) => void this.open(roomId),
      answer: (room, accept) => void this.myRooms.answer(room, accept),
    });
    this.account = new AccountMenu(me, {
      signOut: () => this.signOut(),
      signedOut: (notice) => this.signOut(notice, false),
      changed: (account) => {
        this.users.set({ user_id: account.id, username: account.username, display_name: account.display_name });
        this.namesChanged();
      },
    });
    this.sidebar.showNotificationsControl(this.notifier.element);
    this.view = new ConversationView(this.host, {
      back: () => this.closeRoom(),
      members: (room) => void membersDialog(this.host, room),
      search: (room) =>
        searchDialog(
          {
            ...this.host,
            room: (roomId) => this.state.rooms.get(roomId),
            jump: (roomId, seq) => void this.jumpTo(roomId, seq),
          },
          room,
        ),
      leave: (room) => void this.myRooms.leave(room),
      loadOlder: (roomId) => void this.history.older(roomId),
      scrolled: () => {
        this.maybeRead();
        this.jump.update();
      },
      send: (draft) => this.send(draft),
      saveEdit: (target, body) => this.saveEdit(target, body),
      typed: (hasText) => this.typed(hasText),
      stopTyping: () => this.stopTyping(),
      upload: (roomId, file) => chatApi.upload(roomId, file),
      mentionCandidates: (roomId) => this.mentionCandidates(roomId),
      reply: (m) => this.view.composer?.reply(m),
      startEdit: (m) => this.view.composer?.startEdit(m),
      react: (m, emoji) => void this.react(m, emoji),
      remove: (m) => void this.remove(m),
      retry: (p) => this.sendQueue.retry(p),
      discard: (p) => this.sendQueue.discard(p),
    });

    this.live.bind();
    this.conn.socket.on("room:event", (e: RoomEvent) => this.notice(e));
    this.timers.push(
      window.setInterval(() => this.tick(), 1000),
      window.setInterval(() => !document.hidden && void this.myRooms.refresh(), ROOMS_POLL_MS),
    );
    window.addEventListener("focus", this.onFocus);
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  private readonly onFocus = (): void => void this.myRooms.refresh();
  private readonly onVisibility = (): void => {
    // Away while the tab is hidden; back online (and reading) when it is shown again.
    void this.conn.emit("presence:set", { status: document.hidden ? "away" : "online" });
    this.maybeRead();
  };

  private dispose(): void {
    this.conn.stop();
    this.account.dispose();
    for (const timer of this.timers) window.clearInterval(timer);
    window.removeEventListener("focus", this.onFocus);
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.clearTimeout(this.readTimer);
    this.myRooms.dispose();
    this.view.attachments.dispose();
    resetTitle();
  }

  // ---------------------------------------------------------------- start-up, connection, sign-out

  async start(): Promise<void> {
    replace(
      this.root,
      h(
        "div",
        { class: "app" },
        this.status.element,
        this.sidebar.element,
        h("main", { class: "main" }, this.jump.element, this.view.element),
      ),
      this.announcer.element,
    );
    // Who I am, with Settings, in place of the room list's plain name.
    this.sidebar.element.querySelector("header.me")?.replaceWith(this.account.element);
    await this.myRooms.load();
    void this.account.load().catch(() => undefined);
    this.conn.start();
    const match = ROOM_PATH.exec(location.pathname);
    if (match && this.state.rooms.has(match[1])) void this.open(match[1], false);
    else this.showEmpty();
    window.addEventListener("popstate", () => {
      const m = ROOM_PATH.exec(location.pathname);
      if (m && this.state.rooms.has(m[1])) void this.open(m[1], false);
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

  // ---------------------------------------------------------------- names

  private roomName(room: Room): string {
    if (room.name) return room.name;
    if (room.kind === "direct") {
      const other = this.state.room(room.id).members?.find((m) => m.user_id !== this.me.id);
      return other ? this.users.label(other.user_id) : "Direct message";
    }
    return "Unnamed room";
  }

  /** Names arrived from a lookup: redraw what shows people. */
  private namesChanged(): void {
    this.renderRooms();
    this.sidebar.renderInvitations(this.state.invitations);
    if (!this.state.current) return;
    this.renderHeader();
    this.renderTyping();
    this.renderMessages();
  }

  // ---------------------------------------------------------------- opening and closing rooms

  private showEmpty(): void {
    document.body.classList.remove("in-room");
    this.view.empty();
  }

  private closeRoom(): void {
    this.readNow();
    this.stopTyping();
    this.state.current = null;
    if (location.pathname !== "/") history.pushState(null, "", "/");
    this.renderRooms();
    this.showEmpty();
    this.jump.update();
  }

  async open(roomId: string, push = true): Promise<void> {
    if (this.state.current !== roomId) {
      this.readNow();
      this.stopTyping();
    }
    this.state.current = roomId;
    if (push && location.pathname !== `/rooms/${roomId}`) history.pushState(null, "", `/rooms/${roomId}`);
    document.body.classList.add("in-room");
    const s = this.state.room(roomId);
    openDivider(s);
    this.renderRooms();
    this.view.show(roomId);
    this.renderHeader();
    if (!s.loaded) {
      try {
        await this.history.latest(roomId);
      } catch (e) {
        this.announcer.say(`Could not load the history: ${errorText(e)}`, true);
      }
    }
    if (this.state.current !== roomId) return;
    this.renderMessages(true);
    void this.history.receipts(roomId);
    if (!s.members) {
      void this.myRooms
        .loadMembers(roomId)
        .then(() => this.renderHeader())
        .catch(() => undefined);
    }
    this.maybeRead();
    this.view.composer?.focus();
  }

  /** A search result: open its room and page back until the message is there (at most 20 pages), then show it. */
  private async jumpTo(roomId: string, seq: number): Promise<void> {
    if (!this.state.rooms.has(roomId)) return;
    await this.open(roomId);
    const s = this.state.room(roomId);
    for (let pages = 0; pages < 20 && !s.messages.has(seq) && this.state.current === roomId; pages++) {
      if (s.loading) await new Promise((resolve) => window.setTimeout(resolve, 100));
      else if (s.hasMore) await this.history.older(roomId);
      else break;
    }
    if (this.state.current === roomId && !this.view.highlight(seq))
      this.announcer.say("That message is no longer in the room's history.");
  }

  /** The room is open, scrolled to its end and visible: what arrives is read at once. */
  private reading(roomId: string): boolean {
    return roomId === this.state.current && this.view.atBottom() && !document.hidden;
  }

  /** A join, leave, kick, ban or rename becomes a line in the room's timeline (sync/rooms.ts re-reads the room). */
  private notice(e: RoomEvent): void {
    const room = this.state.rooms.get(e.room_id);
    if (!room || !addNotice(this.state.room(e.room_id), e, room.version, room.name, new Date().toISOString())) return;
    if (e.user_id) this.users.want(e.user_id);
    if (e.by) this.users.want(e.by);
    if (e.room_id === this.state.current) this.renderMessages();
  }

  /** The room's members as the @-autocomplete offers them (names as far as the lookups know them). */
  private mentionCandidates(roomId: string): Candidate[] {
    const candidates: Candidate[] = [];
    for (const member of this.state.room(roomId).members ?? []) {
      const info = this.users.get(member.user_id);
      if (info?.username)
        candidates.push({ userId: member.user_id, username: info.username, displayName: info.display_name ?? "" });
      else this.users.want(member.user_id);
    }
    return candidates;
  }

  // ---------------------------------------------------------------- sending, editing, reacting

  private send(draft: Draft): void {
    const roomId = this.state.current;
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
      if (!ack.ok) this.announcer.say(`Edit failed: ${ack.error.message}`);
    });
  }

  private async remove(m: Message): Promise<void> {
    if (!window.confirm("Delete this message for everyone?")) return;
    const ack = await this.conn.emit("message:delete", { room_id: m.room_id, message_id: m.id });
    if (!ack.ok) this.announcer.say(`Delete failed: ${ack.error.message}`, true);
  }

  private async react(m: Message, emoji: string): Promise<void> {
    const current = this.state.room(m.room_id).messages.get(m.seq) ?? m;
    const mine = current.reactions.some((r) => r.emoji === emoji && r.user_ids.includes(this.me.id));
    const action = mine ? "remove" : "add";
    const ack = await this.conn.emit<{ version: number; counts: Record<string, number> }>("message:react", {
      room_id: m.room_id,
      message_id: m.id,
      emoji,
      action,
    });
    if (!ack.ok) {
      this.announcer.say(`Reaction failed: ${ack.error.message}`, true);
      return;
    }
    this.live.patch(m.room_id, m.seq, ack.version, (x) => ({
      ...x,
      reactions: mergeReactions(x, emoji, this.me.id, action, ack.counts),
    }));
  }

  // ---------------------------------------------------------------- read marker, typing

  /** `room:read` up to the newest message when the room is in view and scrolled to the end, a moment later (or at
   * once when another room opens first: the room read so far must not stay unread). */
  private maybeRead(): void {
    window.clearTimeout(this.readTimer);
    const roomId = this.state.current;
    this.readPending = roomId && !document.hidden && this.view.atBottom() ? roomId : null;
    this.readTimer = window.setTimeout(() => this.readNow(), READ_DELAY_MS);
  }

  /** Send the read marker the last `maybeRead()` asked for, unless the person has since scrolled up in that room
   * or hidden the tab. */
  private readNow(): void {
    window.clearTimeout(this.readTimer);
    const roomId = this.readPending;
    this.readPending = null;
    if (!roomId || document.hidden) return;
    if (roomId === this.state.current && !this.view.atBottom()) return;
    const { changed, seq } = markRead(this.state.room(roomId));
    if (changed) this.renderRooms();
    if (seq !== null) void this.conn.emit<{ seq: number }>("room:read", { room_id: roomId, seq });
  }

  private typed(hasText: boolean): void {
    const roomId = this.state.current;
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

  // ---------------------------------------------------------------- drawing

  /** Every second: typing indicators expire, and a message waiting out a rate limit counts down. */
  private tick(): void {
    this.renderTyping();
    const current = this.state.current;
    if (current && this.sendQueue.list(current).some((p) => p.retryAt !== null)) this.renderMessages();
  }

  private renderRooms(): void {
    this.sidebar.renderRooms([...this.state.rooms.values()], (roomId) => this.state.room(roomId), this.state.current);
  }

  private renderHeader(): void {
    const room = this.state.current ? this.state.rooms.get(this.state.current) : undefined;
    if (room) this.view.renderHeader(room, this.state.room(room.id));
  }

  private renderTyping(): void {
    if (!this.state.current) return;
    const typing = typingNow(this.state.room(this.state.current), Date.now(), this.me.id);
    this.view.renderTyping(typing.map((u) => this.users.label(u)));
  }

  private renderMessages(forceBottom = false): void {
    const roomId = this.state.current;
    const room = roomId ? this.state.rooms.get(roomId) : undefined;
    if (!roomId || !room) return;
    const short = this.view.renderMessages(room, this.state.room(roomId), this.sendQueue.list(roomId), forceBottom);
    this.renderTyping();
    this.jump.update();
    // A page that does not fill the view cannot be scrolled up: fetch the next one straight away.
    if (short) void this.history.older(roomId);
  }
}
