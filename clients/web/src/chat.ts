// The signed-in app: room list, directory, room management, and the conversation view.

import { ApiError, api, request } from "./api";
import { Connection, type ConnectionState } from "./connection";
import { field, h, replace, type Child } from "./dom";
import { MAX_BODY_CHARS, MAX_ROOMS_PER_SUBSCRIBE } from "./limits";
import type {
  Attachment,
  Contact,
  Invitation,
  Member,
  Message,
  Page,
  Pending,
  Presence,
  Profile,
  Receipts,
  Room,
  SubscribeResult,
  RoomEvent,
  Unread,
} from "./types";
import { UserDirectory } from "./users";

const PAGE = 50;
const QUICK_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "👀"];
const TYPING_RENEW_MS = 2000;
/** A slow fallback: room:added, room:invited and room:event keep the lists current while the socket is up. */
const ROOMS_POLL_MS = 60_000;

interface RoomState {
  messages: Map<number, Message>;
  loaded: boolean;
  loading: boolean;
  hasMore: boolean;
  /** The newest seq this client has (the recovery point for room:subscribe_many). */
  lastSeq: number | null;
  unread: number;
  readSeq: number;
  deliveredSent: number;
  /** The read marker when the room was opened: the "new messages" divider goes after it. */
  dividerAfter: number | null;
  markers: Map<string, { read: number; delivered: number }>;
  presence: Map<string, Presence>;
  typing: Map<string, number>;
  members: Member[] | null;
}

/** Make `parent`'s children exactly `nodes` without detaching the ones that stay (detaching loses focus). */
function reconcile(parent: HTMLElement, nodes: HTMLElement[]): void {
  const keep = new Set<Node>(nodes);
  for (const child of Array.from(parent.children)) if (!keep.has(child)) child.remove();
  let cursor: ChildNode | null = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(node, cursor);
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function clientMsgId(): string {
  return `web-${crypto.randomUUID()}`;
}

function time(iso: string): string {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function errorText(error: unknown): string {
  return error instanceof ApiError ? error.message : String(error);
}

export class ChatApp {
  private readonly rooms = new Map<string, Room>();
  private readonly state = new Map<string, RoomState>();
  private readonly pending = new Map<string, Pending[]>();
  private readonly users = new UserDirectory(() => this.namesChanged());
  private readonly attachmentUrls = new Map<string, Promise<{ url: string; type: string; name: string }>>();
  private readonly messageNodes = new Map<string, { key: string; node: HTMLElement }>();
  private invitations: Invitation[] = [];
  private current: string | null = null;
  private conn: Connection;
  private replyTo: Message | null = null;
  private editing: Message | null = null;
  private staged: Attachment[] = [];
  private lastTypingSent = 0;
  private typingRoom: string | null = null;
  private readTimer: number | undefined;

  // the page's fixed parts
  private readonly status = h("div", { class: "conn", role: "status", "aria-live": "polite" });
  private readonly roomList = h("ul", { class: "rooms", "aria-label": "Your rooms" });
  private readonly inviteList = h("div", { class: "invites" });
  private readonly conversation = h("section", { class: "conversation", "aria-label": "Conversation" });
  private readonly live = h("div", { class: "sr-only", "aria-live": "polite" });
  private list: HTMLElement | null = null;
  private typingLine: HTMLElement | null = null;
  private composer: HTMLTextAreaElement | null = null;
  private composerBar: HTMLElement | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly me: Profile,
    private readonly onSignOut: (notice?: string) => void,
  ) {
    this.users.learn({ user_id: me.id, username: me.username, display_name: me.display_name ?? me.username });
    this.conn = new Connection({
      state: (state, detail) => this.showState(state, detail),
      connected: () => void this.onConnected(),
      signedOut: (reason) => this.signOut(reason, false),
    });
    this.bindSocket();
    this.timers.push(
      window.setInterval(() => this.renderTyping(), 1000),
      window.setInterval(() => !document.hidden && void this.refreshRooms(), ROOMS_POLL_MS),
    );
    window.addEventListener("focus", this.onFocus);
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  private readonly timers: number[] = [];
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
    for (const found of this.attachmentUrls.values()) void found.then(({ url }) => URL.revokeObjectURL(url), () => undefined);
  }

  // ---------------------------------------------------------------- start-up and layout

  async start(): Promise<void> {
    this.layout();
    await Promise.all([this.loadRooms(), this.loadInvitations(), this.loadContacts()]);
    this.conn.start();
    const match = /^\/rooms\/([0-9a-f-]{36})$/.exec(location.pathname);
    if (match && this.rooms.has(match[1])) void this.open(match[1], false);
    else this.renderEmpty();
    window.addEventListener("popstate", () => {
      const m = /^\/rooms\/([0-9a-f-]{36})$/.exec(location.pathname);
      if (m && this.rooms.has(m[1])) void this.open(m[1], false);
      else this.closeRoom();
    });
  }

  private layout(): void {
    const verifiedNote = this.me.email_verified
      ? null
      : h("p", { class: "notice" }, "Verify your email address to create, join and post in rooms.");
    const sidebar = h(
      "nav",
      { class: "sidebar", "aria-label": "Rooms" },
      h(
        "header",
        { class: "me" },
        h("div", null, h("strong", null, this.me.username), h("small", { class: "muted" }, `@${this.me.username}`)),
        h("button", { type: "button", class: "small", onclick: () => this.signOut() }, "Sign out"),
      ),
      verifiedNote,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => this.directoryDialog() }, "Browse rooms"),
        h("button", { type: "button", onclick: () => this.createDialog() }, "New room"),
        h("button", { type: "button", onclick: () => this.directDialog() }, "Direct message"),
      ),
      this.inviteList,
      h("h2", { class: "section" }, "Rooms"),
      this.roomList,
    );
    replace(this.root, h("div", { class: "app" }, this.status, sidebar, h("main", { class: "main" }, this.conversation)), this.live);
  }

  private showState(state: ConnectionState, detail?: string): void {
    const text: Record<ConnectionState, string> = {
      connecting: "Connecting…",
      online: "Connected",
      reconnecting: "Reconnecting… messages you send will go out when the connection is back",
      offline: "Offline — messages you send will go out when you are back online",
    };
    this.status.dataset.state = state;
    replace(this.status, h("span", { class: "dot", "aria-hidden": "true" }), text[state] + (detail ? ` (${detail})` : ""));
    if (state !== "online") {
      for (const list of this.pending.values()) for (const p of list) if (p.state === "sending") this.waiting(p);
      this.renderMessages();
    }
  }

  private signOut(notice?: string, callServer = true): void {
    this.dispose();
    const done = () => this.onSignOut(notice);
    if (callServer) void api("POST", "/api/auth/logout").catch(() => undefined).finally(done);
    else done();
  }

  private roomState(roomId: string): RoomState {
    let s = this.state.get(roomId);
    if (!s) {
      s = {
        messages: new Map(),
        loaded: false,
        loading: false,
        hasMore: true,
        lastSeq: null,
        unread: 0,
        readSeq: 0,
        deliveredSent: 0,
        dividerAfter: null,
        markers: new Map(),
        presence: new Map(),
        typing: new Map(),
        members: null,
      };
      this.state.set(roomId, s);
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

  // ---------------------------------------------------------------- loading

  private async fetchMine(): Promise<Room[]> {
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

  private async loadRooms(): Promise<void> {
    this.rooms.clear();
    for (const room of await this.fetchMine()) this.rooms.set(room.id, room);
    await this.loadUnread();
    await Promise.all(
      [...this.rooms.values()].filter((r) => r.kind === "direct").map((r) => this.loadMembers(r.id).catch(() => undefined)),
    );
    this.renderRooms();
  }

  /** The slow fallback behind room:added, room:invited and room:removed (events missed while disconnected or
   * not delivered): the lists are re-read every minute and on window focus. */
  private async refreshRooms(): Promise<void> {
    const startedAt = Date.now();
    let rooms: Room[];
    try {
      rooms = await this.fetchMine();
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
      for (const u of await api<Unread[]>("GET", "/api/messages/unread")) {
        const s = this.roomState(u.room_id);
        s.readSeq = Math.max(s.readSeq, u.read_seq);
        // A message that arrived live while this answer was on its way is newer than the count: keep ours.
        if (u.last_seq < (s.lastSeq ?? 0)) continue;
        s.unread = u.room_id === this.current && this.atBottom() && !document.hidden ? 0 : u.unread;
        s.lastSeq ??= u.last_seq;
      }
    } catch {
      // counts are a convenience; the rooms still work
    }
  }

  private async loadMembers(roomId: string): Promise<Member[]> {
    const page = await api<Page<Member>>("GET", `/api/rooms/${roomId}/members?limit=100`);
    this.roomState(roomId).members = page.items;
    await this.users.ensure(page.items.map((m) => m.user_id)).catch(() => undefined);
    return page.items;
  }

  private async loadInvitations(): Promise<void> {
    try {
      this.invitations = await api<Invitation[]>("GET", "/api/rooms/invitations");
      this.users.want(...this.invitations.map((i) => i.invited_by));
    } catch {
      this.invitations = [];
    }
    this.renderInvitations();
  }

  private async loadContacts(): Promise<void> {
    try {
      for (const c of await api<Contact[]>("GET", "/api/rooms/contacts")) {
        if (c.username) this.users.learn({ user_id: c.user_id, username: c.username, display_name: c.display_name ?? c.username });
      }
    } catch {
      // names then show as short ids
    }
  }

  private learnNames(message: Message): void {
    for (const m of message.mentions) this.users.learn({ user_id: m.user_id, username: m.username, display_name: "" });
  }

  /** GET, retried a few times on 404: right after a join the messages service may not know the member yet
   * (it learns memberships from the rooms service's events). */
  private async read<T>(path: string): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await api<T>("GET", path);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404) || attempt >= 6) throw e;
        await new Promise((resolve) => setTimeout(resolve, 150 * attempt));
      }
    }
  }

  /** The newest page of a room (again, after `recovered: false` or on first open). */
  private async loadLatest(roomId: string): Promise<void> {
    const s = this.roomState(roomId);
    s.loading = true;
    try {
      const page = await this.read<Page<Message>>(`/api/messages/rooms/${roomId}/messages?limit=${PAGE}`);
      // Merged, never replacing: a message sent or received while this page was on its way stays.
      for (const m of page.items) this.store(m);
      s.hasMore = page.items.length === PAGE && Math.min(...page.items.map((m) => m.seq)) > 1;
      s.loaded = true;
      const newest = page.items.length ? Math.max(...page.items.map((m) => m.seq)) : 0;
      s.lastSeq = Math.max(s.lastSeq ?? 0, newest);
    } finally {
      s.loading = false;
    }
  }

  /** Infinite scroll: the page before the oldest message shown (the seq is the cursor). */
  private async loadOlder(roomId: string): Promise<void> {
    const s = this.roomState(roomId);
    if (s.loading || !s.hasMore || !s.messages.size) return;
    s.loading = true;
    const oldest = Math.min(...s.messages.keys());
    const list = this.list;
    const before = list ? list.scrollHeight - list.scrollTop : 0;
    try {
      const page = await api<Page<Message>>("GET", `/api/messages/rooms/${roomId}/messages?before_seq=${oldest}&limit=${PAGE}`);
      for (const m of page.items) this.store(m);
      s.hasMore = page.items.length === PAGE && Math.min(...page.items.map((m) => m.seq)) > 1;
    } catch (e) {
      this.announce(`Could not load older messages: ${errorText(e)}`);
    } finally {
      s.loading = false;
    }
    if (roomId === this.current && list) {
      this.renderMessages(false);
      list.scrollTop = list.scrollHeight - before;
    }
  }

  private async loadReceipts(roomId: string): Promise<void> {
    try {
      const receipts = await this.read<Receipts>(`/api/messages/rooms/${roomId}/receipts`);
      const s = this.roomState(roomId);
      for (const m of receipts.markers) s.markers.set(m.user_id, { read: m.read_seq, delivered: m.delivered_seq });
      if (roomId === this.current) this.renderMessages();
    } catch {
      // indicators stay at "sent"
    }
  }

  private store(message: Message): void {
    const s = this.roomState(message.room_id);
    const known = s.messages.get(message.seq);
    if (known && known.version > message.version) return;
    s.messages.set(message.seq, message);
    this.learnNames(message);
    s.lastSeq = Math.max(s.lastSeq ?? 0, message.seq);
  }

  // ---------------------------------------------------------------- socket

  private bindSocket(): void {
    const socket = this.conn.socket;
    socket.on("message:new", (m: Message) => this.onMessage(m));
    socket.on("message:edited", (e: { room_id: string; seq: number; body: string; edited_at: string; version: number }) =>
      this.patch(e.room_id, e.seq, e.version, (m) => ({ ...m, body: e.body, edited_at: e.edited_at })),
    );
    socket.on("message:deleted", (e: { room_id: string; seq: number; version: number }) =>
      this.patch(e.room_id, e.seq, e.version, (m) => ({ ...m, deleted: true, body: "", reactions: [], attachment_ids: [] })),
    );
    socket.on(
      "message:reaction",
      (e: { room_id: string; seq: number; emoji: string; user_id: string; action: string; counts: Record<string, number>; version: number }) =>
        this.patch(e.room_id, e.seq, e.version, (m) => ({ ...m, reactions: this.reactions(m, e.emoji, e.user_id, e.action, e.counts) })),
    );
    const marker = (kind: "read" | "delivered") => (e: { room_id: string; user_id: string; up_to_seq: number }) => {
      const s = this.roomState(e.room_id);
      const mark = s.markers.get(e.user_id) ?? { read: 0, delivered: 0 };
      mark[kind] = Math.max(mark[kind], e.up_to_seq);
      s.markers.set(e.user_id, mark);
      if (e.user_id === this.me.id && kind === "read") {
        s.readSeq = Math.max(s.readSeq, e.up_to_seq); // read on another device
        void this.loadUnread().then(() => this.renderRooms());
      }
      if (e.room_id === this.current) this.renderMessages();
    };
    socket.on("room:read", marker("read"));
    socket.on("room:delivered", marker("delivered"));
    socket.on("typing", (e: { room_id: string; user_id: string; typing: boolean; expires_at: string }) => {
      const s = this.roomState(e.room_id);
      if (e.typing) {
        const until = Date.parse(e.expires_at);
        s.typing.set(e.user_id, until > Date.now() ? until : Date.now() + 6000);
      } else s.typing.delete(e.user_id);
      if (e.room_id === this.current) this.renderTyping();
    });
    const presence = (roomId: string, changes: { user_id: string; status: Presence }[]): void => {
      const s = this.roomState(roomId);
      for (const change of changes) s.presence.set(change.user_id, change.status);
      // Someone new (there is no member-joined event on the socket): refresh the member list.
      if (s.members && changes.some((c) => !s.members?.some((m) => m.user_id === c.user_id))) {
        void this.loadMembers(roomId).then(() => roomId === this.current && this.renderHeader()).catch(() => undefined);
      }
      this.renderRooms();
      if (roomId === this.current) this.renderHeader();
    };
    socket.on("presence", (e: { room_id: string; user_id: string; status: Presence }) => presence(e.room_id, [e]));
    // Several members at once (a room whose members reconnect together): one event for all of them.
    socket.on("presence:changes", (e: { room_id: string; changes: { user_id: string; status: Presence }[] }) =>
      presence(e.room_id, e.changes),
    );
    socket.on("room:added", (e: { room_id: string; role: string; by: string | null }) => void this.onAdded(e));
    socket.on("room:invited", (e: { room_id: string; by: string }) => {
      void this.loadInvitations().then(() => this.announce(`${this.name(e.by)} invited you to a room.`));
    });
    socket.on("room:event", (e: RoomEvent) => this.onRoomEvent(e));
    socket.on("room:removed", (e: { room_id: string }) => {
      const room = this.rooms.get(e.room_id);
      this.rooms.delete(e.room_id);
      this.pending.delete(e.room_id);
      if (room) this.announce(`You are no longer a member of ${this.roomName(room)}.`);
      if (this.current === e.room_id) this.closeRoom();
      this.renderRooms();
    });
  }

  /** Put in a room (a direct message opened with me, an invitation accepted, a join on another device). */
  private async onAdded(e: { room_id: string; role: string; by: string | null }): Promise<void> {
    this.invitations = this.invitations.filter((i) => i.room.id !== e.room_id);
    this.renderInvitations();
    // Already here, or being added by this page (joined() subscribes itself).
    if (this.rooms.has(e.room_id) || Date.now() - (this.addedAt.get(e.room_id) ?? 0) < 10_000) return;
    this.addedAt.set(e.room_id, Date.now());
    try {
      const room = await api<Room>("GET", `/api/rooms/${e.room_id}`);
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

  private readonly roomRefresh = new Map<string, number>();

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
        void (async () => {
          try {
            const fresh = await api<Room>("GET", `/api/rooms/${e.room_id}`);
            if (!this.rooms.has(fresh.id)) return;
            this.rooms.set(fresh.id, fresh);
            if (this.roomState(fresh.id).members || fresh.kind === "direct") await this.loadMembers(fresh.id);
          } catch {
            return; // gone or no longer visible: room:removed or the slow refresh handles it
          }
          this.renderRooms();
          if (this.current === e.room_id) {
            this.renderHeader();
            this.renderComposerBar();
          }
        })();
      }, 300),
    );
  }

  private reactions(m: Message, emoji: string, userId: string, action: string, counts: Record<string, number>): Message["reactions"] {
    const users = new Map(m.reactions.map((r) => [r.emoji, new Set(r.user_ids)]));
    const set = users.get(emoji) ?? new Set<string>();
    if (action === "add") set.add(userId);
    else set.delete(userId);
    users.set(emoji, set);
    return Object.entries(counts).map(([e, count]) => ({ emoji: e, count, user_ids: [...(users.get(e) ?? [])] }));
  }

  private patch(roomId: string, seq: number, version: number, change: (m: Message) => Message): void {
    const m = this.roomState(roomId).messages.get(seq);
    if (!m || m.version >= version) return;
    this.roomState(roomId).messages.set(seq, { ...change(m), version });
    if (roomId === this.current) this.renderMessages();
  }

  private onMessage(m: Message): void {
    const s = this.roomState(m.room_id);
    const isNew = !s.messages.has(m.seq) && m.seq > (s.lastSeq ?? 0);
    this.store(m);
    this.removePending(m.room_id, m.client_msg_id);
    if (isNew && m.sender_id !== this.me.id && !m.deleted) {
      if (m.room_id === this.current && this.atBottom() && !document.hidden) this.maybeRead();
      else s.unread += 1;
      if (m.room_id === this.current) this.announce(`${this.name(m.sender_id)}: ${m.body}`);
      s.typing.delete(m.sender_id);
    }
    this.delivered(m.room_id);
    this.renderRooms();
    if (m.room_id === this.current) this.renderMessages();
  }

  private async onConnected(): Promise<void> {
    const ids = [...this.rooms.keys()];
    for (let i = 0; i < ids.length; i += MAX_ROOMS_PER_SUBSCRIBE) {
      const rooms = ids.slice(i, i + MAX_ROOMS_PER_SUBSCRIBE).map((room_id) => {
        const last = this.roomState(room_id).lastSeq;
        return last === null ? { room_id } : { room_id, last_seq: last };
      });
      const ack = await this.conn.emit<{ results: SubscribeResult[] }>("room:subscribe_many", { rooms });
      if (ack.ok) for (const result of ack.results) await this.subscribed(result);
    }
    this.flushPending();
    this.renderRooms();
    if (this.current) this.renderHeader();
  }

  private async subscribed(result: SubscribeResult): Promise<void> {
    if (result.error) return;
    const s = this.roomState(result.room_id);
    s.presence.clear();
    for (const p of result.presence ?? []) s.presence.set(p.user_id, p.status);
    if (result.recovered === false) {
      // Too much was missed to replay: reload what is shown and the counts.
      s.lastSeq = result.seq ?? s.lastSeq;
      s.messages.clear();
      s.loaded = false;
      if (result.room_id === this.current) {
        await this.loadLatest(result.room_id);
        this.renderMessages();
      }
      await this.loadUnread();
    } else if (result.recovered === null || result.recovered === undefined) {
      s.lastSeq ??= result.seq ?? null;
    }
    if (result.changes_recovered === false && result.room_id === this.current) {
      // Edits, deletions and markers made while away are not replayed: refresh the visible page.
      const page = await api<Page<Message>>("GET", `/api/messages/rooms/${result.room_id}/messages?limit=${PAGE}`).catch(() => null);
      if (page) for (const m of page.items) this.store(m);
      await this.loadReceipts(result.room_id);
      this.renderMessages();
    }
  }

  private async subscribeOne(roomId: string): Promise<void> {
    const ack = await this.conn.emit<SubscribeResult>("room:subscribe", { room_id: roomId });
    if (ack.ok) await this.subscribed({ ...ack, room_id: roomId });
  }

  // ---------------------------------------------------------------- sending: local echo, retries

  private removePending(roomId: string, id: string): void {
    const list = this.pending.get(roomId);
    if (!list) return;
    const rest = list.filter((p) => p.client_msg_id !== id);
    if (rest.length !== list.length) this.pending.set(roomId, rest);
  }

  private waiting(p: Pending): void {
    p.state = "waiting";
    p.attempt += 1; // an ack still on its way for the old attempt is ignored
  }

  private flushPending(): void {
    for (const list of this.pending.values()) for (const p of list) if (p.state === "waiting") void this.transmit(p);
  }

  private async transmit(p: Pending): Promise<void> {
    if (!this.conn.socket.connected) {
      this.waiting(p);
      if (p.room_id === this.current) this.renderMessages();
      return;
    }
    p.state = "sending";
    p.attempts += 1;
    const attempt = ++p.attempt;
    if (p.room_id === this.current) this.renderMessages();
    const payload: Record<string, unknown> = { room_id: p.room_id, client_msg_id: p.client_msg_id, body: p.body };
    if (p.reply_to) payload.reply_to = p.reply_to;
    if (p.attachment_ids.length) payload.attachment_ids = p.attachment_ids;
    const ack = await this.conn.emit<{ message_id: string; seq: number }>("message:send", payload);
    if (attempt !== p.attempt) return; // superseded (disconnected meanwhile; resent on reconnect)
    if (ack.ok) {
      const s = this.roomState(p.room_id);
      if (!s.messages.has(ack.seq)) {
        s.messages.set(ack.seq, {
          id: ack.message_id,
          room_id: p.room_id,
          seq: ack.seq,
          sender_id: this.me.id,
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
      this.removePending(p.room_id, p.client_msg_id);
      if (p.room_id === this.current) this.renderMessages();
      return;
    }
    const { code, message, retry_after } = ack.error;
    const retry = (ms: number) => {
      this.waiting(p);
      setTimeout(() => p.state === "waiting" && void this.transmit(p), ms);
    };
    if (code === "disconnected") this.waiting(p);
    else if (code === "timeout" || code === "unavailable" || code === "internal_error") retry(Math.min(8000, 500 * 2 ** Math.min(p.attempts, 4)));
    else if (code === "rate_limited") retry((retry_after ?? 1) * 1000);
    else if (code === "not_member" && p.attempts < 5) retry(1000); // a fresh join not yet known everywhere
    else {
      p.state = "failed";
      p.error = message;
    }
    if (p.room_id === this.current) this.renderMessages();
  }

  private send(): void {
    const roomId = this.current;
    const box = this.composer;
    if (!roomId || !box) return;
    const body = box.value.trim();
    if (this.editing) {
      const target = this.editing;
      this.editing = null;
      box.value = "";
      this.renderComposerBar();
      if (body && body !== target.body) {
        void this.conn.emit("message:edit", { room_id: roomId, message_id: target.id, body }).then((ack) => {
          if (!ack.ok) this.announce(`Edit failed: ${ack.error.message}`);
        });
      }
      return;
    }
    if (!body && !this.staged.length) return;
    const p: Pending = {
      client_msg_id: clientMsgId(),
      room_id: roomId,
      body,
      reply_to: this.replyTo?.id ?? null,
      attachment_ids: this.staged.map((a) => a.id),
      created_at: new Date().toISOString(),
      state: "sending",
      attempts: 0,
      attempt: 0,
    };
    this.pending.set(roomId, [...(this.pending.get(roomId) ?? []), p]);
    box.value = "";
    this.replyTo = null;
    this.staged = [];
    this.renderComposerBar();
    this.stopTyping();
    this.renderMessages(true);
    void this.transmit(p);
  }

  // ---------------------------------------------------------------- markers, typing

  private atBottom(): boolean {
    const list = this.list;
    return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  /** `room:read` up to the newest message when the room is in view and scrolled to the end. */
  private maybeRead(): void {
    window.clearTimeout(this.readTimer);
    this.readTimer = window.setTimeout(() => {
      const roomId = this.current;
      if (!roomId || document.hidden || !this.atBottom()) return;
      const s = this.roomState(roomId);
      const newest = Math.max(0, ...s.messages.keys());
      if (newest <= s.readSeq && s.unread === 0) return;
      s.unread = 0;
      this.renderRooms();
      if (newest > s.readSeq) {
        s.readSeq = newest;
        void this.conn.emit<{ seq: number }>("room:read", { room_id: roomId, seq: newest });
      }
    }, 300);
  }

  private delivered(roomId: string): void {
    const s = this.roomState(roomId);
    const newest = s.lastSeq ?? 0;
    if (newest <= s.deliveredSent) return;
    s.deliveredSent = newest;
    void this.conn.emit("room:delivered", { room_id: roomId, seq: newest });
  }

  private typed(): void {
    const roomId = this.current;
    if (!roomId || this.editing) return;
    if (!this.composer?.value.trim()) {
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

  // ---------------------------------------------------------------- rendering: sidebar

  private renderRooms(): void {
    const items = [...this.rooms.values()].sort((a, b) => this.roomName(a).localeCompare(this.roomName(b)));
    if (!items.length) {
      replace(this.roomList, h("li", { class: "muted empty" }, "No rooms yet. Browse the directory or create one."));
      return;
    }
    replace(
      this.roomList,
      items.map((room) => {
        const s = this.roomState(room.id);
        const online = [...s.presence.entries()].filter(([id, st]) => id !== this.me.id && st !== "offline");
        const presence = online.some(([, st]) => st === "online") ? "online" : online.length ? "away" : "offline";
        const label = room.kind === "direct" ? { online: "online", away: "away", offline: "offline" }[presence] : `${online.length} other${online.length === 1 ? "" : "s"} online`;
        const unread = s.unread > 0 ? h("span", { class: "badge", "aria-label": `${s.unread} unread` }, s.unread > 99 ? "99+" : s.unread) : null;
        return h(
          "li",
          null,
          h(
            "button",
            {
              type: "button",
              class: "room" + (room.id === this.current ? " active" : "") + (s.unread ? " has-unread" : ""),
              "aria-current": room.id === this.current ? "page" : null,
              "data-room": room.id,
              onclick: () => void this.open(room.id),
            },
            h("span", { class: `presence ${presence}`, title: label, "aria-label": label, role: "img" }),
            h("span", { class: "room-name" }, room.kind === "direct" ? "@ " : "# ", this.roomName(room)),
            room.kind === "password" ? h("span", { class: "muted", "aria-label": "password protected" }, "🔒") : null,
            room.kind === "private" ? h("span", { class: "muted", "aria-label": "private" }, "🔐") : null,
            unread,
          ),
        );
      }),
    );
  }

  private renderInvitations(): void {
    if (!this.invitations.length) {
      replace(this.inviteList);
      return;
    }
    replace(
      this.inviteList,
      h("h2", { class: "section" }, "Invitations"),
      h(
        "ul",
        { class: "plain" },
        this.invitations.map((inv) =>
          h(
            "li",
            { class: "invite" },
            h("span", null, inv.room.name ?? "A room", h("small", { class: "muted" }, ` from ${this.name(inv.invited_by)}`)),
            h("button", { type: "button", class: "small", onclick: () => void this.answerInvitation(inv.room, true) }, "Accept"),
            h("button", { type: "button", class: "small", onclick: () => void this.answerInvitation(inv.room, false) }, "Decline"),
          ),
        ),
      ),
    );
  }

  private async answerInvitation(room: Room, accept: boolean): Promise<void> {
    try {
      await api("POST", `/api/rooms/${room.id}/invitation/${accept ? "accept" : "decline"}`);
      await this.loadInvitations();
      if (accept) await this.joined(room.id);
    } catch (e) {
      this.announce(errorText(e), true);
    }
  }

  private readonly addedAt = new Map<string, number>();

  private async joined(roomId: string): Promise<void> {
    this.addedAt.set(roomId, Date.now());
    const room = await api<Room>("GET", `/api/rooms/${roomId}`);
    this.rooms.set(room.id, room);
    if (room.kind === "direct") await this.loadMembers(room.id).catch(() => undefined);
    this.renderRooms();
    await this.subscribeOne(room.id);
    await this.open(room.id);
  }

  // ---------------------------------------------------------------- rendering: conversation

  private renderEmpty(): void {
    document.body.classList.remove("in-room");
    replace(
      this.conversation,
      h("div", { class: "empty-state" }, h("h1", null, "Welcome, ", this.me.username), h("p", null, "Pick a room on the left, browse the directory, or start a direct message.")),
    );
  }

  private closeRoom(): void {
    this.stopTyping();
    this.current = null;
    this.list = null;
    if (location.pathname !== "/") history.pushState(null, "", "/");
    this.renderRooms();
    this.renderEmpty();
  }

  async open(roomId: string, push = true): Promise<void> {
    if (this.current !== roomId) this.stopTyping();
    this.current = roomId;
    this.replyTo = null;
    this.editing = null;
    this.staged = [];
    this.messageNodes.clear();
    this.fixedNodes.clear();
    if (push && location.pathname !== `/rooms/${roomId}`) history.pushState(null, "", `/rooms/${roomId}`);
    document.body.classList.add("in-room");
    const s = this.roomState(roomId);
    s.dividerAfter = s.unread > 0 ? s.readSeq : null;
    this.renderRooms();
    this.renderConversation();
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
    if (!s.members) void this.loadMembers(roomId).then(() => this.renderHeader()).catch(() => undefined);
    this.maybeRead();
    this.composer?.focus();
  }

  private renderConversation(): void {
    const roomId = this.current!;
    const header = h("header", { class: "conv-header" });
    this.list = h("ol", { class: "messages", "aria-label": "Messages", tabindex: "0" });
    this.list.addEventListener("scroll", () => {
      if (this.list && this.list.scrollTop < 120) void this.loadOlder(roomId);
      this.maybeRead();
    });
    this.typingLine = h("div", { class: "typing", "aria-live": "polite" });
    this.composerBar = h("div", { class: "composer-bar" });
    this.composer = h("textarea", {
      id: "composer",
      rows: 1,
      placeholder: "Write a message",
      "aria-label": "Message",
      maxlength: MAX_BODY_CHARS,
    });
    this.composer.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      } else if (event.key === "Escape") {
        this.replyTo = null;
        if (this.editing) this.composer!.value = "";
        this.editing = null;
        this.renderComposerBar();
      }
    });
    this.composer.addEventListener("input", () => this.typed());
    this.composer.addEventListener("blur", () => this.stopTyping());
    const fileInput = h("input", { type: "file", id: "attach", multiple: true, class: "sr-only" });
    fileInput.addEventListener("change", () => {
      const files = Array.from(fileInput.files ?? []);
      fileInput.value = "";
      void this.upload(roomId, files);
    });
    const form = h(
      "form",
      { class: "composer", "aria-label": "Send a message" },
      this.composerBar,
      h(
        "div",
        { class: "composer-row" },
        h("label", { for: "attach", class: "button icon", title: "Attach files" }, h("span", { "aria-hidden": "true" }, "+"), h("span", { class: "sr-only" }, "Attach files")),
        fileInput,
        this.composer,
        h("button", { type: "submit", class: "primary" }, "Send"),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    replace(this.conversation, header, this.list, this.typingLine, form);
    this.renderHeader();
    this.renderComposerBar();
  }

  private renderHeader(): void {
    const header = this.conversation.querySelector(".conv-header");
    const room = this.current ? this.rooms.get(this.current) : undefined;
    if (!header || !room) return;
    const s = this.roomState(room.id);
    const online = [...s.presence.entries()].filter(([id, st]) => id !== this.me.id && st !== "offline").length;
    const admin = room.my_role === "owner" || room.my_role === "admin";
    replace(
      header,
      h("button", { type: "button", class: "back small", onclick: () => this.closeRoom() }, "← Rooms"),
      h(
        "div",
        { class: "title" },
        h("h1", { id: "room-title" }, room.kind === "direct" ? "@ " : "# ", this.roomName(room)),
        h("small", { class: "muted" }, room.topic ?? "", room.topic ? " · " : "", `${plural(s.members?.length ?? room.member_count, "member")}, ${online} other${online === 1 ? "" : "s"} online`),
      ),
      h("button", { type: "button", class: "small", onclick: () => void this.membersDialog(room) }, admin ? "Members & moderation" : "Members"),
      room.kind !== "direct" ? h("button", { type: "button", class: "small", onclick: () => void this.leave(room) }, "Leave") : null,
    );
  }

  private renderTyping(): void {
    if (!this.current || !this.typingLine) return;
    const s = this.roomState(this.current);
    const now = Date.now();
    for (const [user, until] of s.typing) if (until < now) s.typing.delete(user);
    const who = [...s.typing.keys()].filter((u) => u !== this.me.id).map((u) => this.name(u));
    const text = who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…` : `${who.join(", ")} are typing…`;
    if (this.typingLine.textContent !== text) this.typingLine.textContent = text;
  }

  private renderComposerBar(): void {
    if (!this.composerBar) return;
    const parts: Child[] = [];
    if (this.editing) {
      parts.push(h("div", { class: "bar" }, "Editing your message", h("button", { type: "button", class: "link", onclick: () => this.cancelEdit() }, "Cancel (Esc)")));
    }
    if (this.replyTo) {
      const target = this.replyTo;
      parts.push(
        h(
          "div",
          { class: "bar" },
          `Replying to ${this.name(target.sender_id)}: `,
          h("q", null, target.body.slice(0, 80)),
          h("button", { type: "button", class: "link", onclick: () => ((this.replyTo = null), this.renderComposerBar()) }, "Cancel"),
        ),
      );
    }
    if (this.staged.length) {
      parts.push(
        h(
          "ul",
          { class: "staged", "aria-label": "Files to send" },
          this.staged.map((a) =>
            h(
              "li",
              null,
              a.filename,
              h("button", { type: "button", class: "link", "aria-label": `Remove ${a.filename}`, onclick: () => ((this.staged = this.staged.filter((x) => x !== a)), this.renderComposerBar()) }, "✕"),
            ),
          ),
        ),
      );
    }
    replace(this.composerBar, parts);
  }

  private cancelEdit(): void {
    this.editing = null;
    if (this.composer) this.composer.value = "";
    this.renderComposerBar();
  }

  private async upload(roomId: string, files: File[]): Promise<void> {
    for (const file of files) {
      try {
        const attachment = await api<Attachment>("POST", `/api/messages/rooms/${roomId}/attachments`, {
          raw: file,
          headers: { "X-Filename": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" },
        });
        if (this.current === roomId) this.staged.push(attachment);
        this.announce(`${file.name} is ready to send.`);
      } catch (e) {
        this.announce(`Could not upload ${file.name}: ${errorText(e)}`, true);
      }
    }
    this.renderComposerBar();
  }

  /** Attachments need the access token, so they are fetched and shown from memory (blob: URLs). */
  private attachment(roomId: string, id: string): Promise<{ url: string; type: string; name: string }> {
    let found = this.attachmentUrls.get(id);
    if (!found) {
      found = request("GET", `/api/messages/rooms/${roomId}/attachments/${id}`, { headers: { Accept: "*/*" } }).then(async (response) => {
        const disposition = response.headers.get("content-disposition") ?? "";
        const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
        const plain = /filename="?([^";]+)"?/i.exec(disposition);
        const name = star ? decodeURIComponent(star[1]) : plain ? plain[1] : "attachment";
        const blob = await response.blob();
        return { url: URL.createObjectURL(blob), type: blob.type, name };
      });
      found.catch(() => this.attachmentUrls.delete(id));
      this.attachmentUrls.set(id, found);
    }
    return found;
  }

  private renderAttachment(roomId: string, id: string): HTMLElement {
    const holder = h("div", { class: "attachment" }, h("span", { class: "muted" }, "Loading attachment…"));
    void this.attachment(roomId, id)
      .then(({ url, type, name }) => {
        if (type.startsWith("image/")) {
          replace(holder, h("a", { href: url, target: "_blank", rel: "noopener" }, h("img", { src: url, alt: `Image: ${name}`, loading: "lazy" })));
          // Keep the newest message in view once the image has its size.
          holder.querySelector("img")?.addEventListener("load", () => this.atBottomBeforeImage && this.scrollToBottom());
        } else {
          replace(holder, h("a", { href: url, download: name }, `📄 ${name}`));
        }
      })
      .catch(() => replace(holder, h("span", { class: "muted" }, "Attachment unavailable")));
    return holder;
  }

  private atBottomBeforeImage = true;

  private scrollToBottom(): void {
    if (this.list) this.list.scrollTop = this.list.scrollHeight;
  }

  private ownStatus(m: Message): { mark: string; label: string; title: string } {
    const status = this.receipt(m);
    const readers = [...this.roomState(m.room_id).markers].filter(([user, marker]) => user !== this.me.id && marker.read >= m.seq);
    return { ...status, title: readers.length ? `Read by ${readers.map(([user]) => this.name(user)).join(", ")}` : status.label };
  }

  private receipt(m: Message): { mark: string; label: string } {
    let delivered = false;
    let read = false;
    for (const [user, marker] of this.roomState(m.room_id).markers) {
      if (user === this.me.id) continue;
      if (marker.read >= m.seq) read = true;
      if (marker.delivered >= m.seq || marker.read >= m.seq) delivered = true;
    }
    return read ? { mark: "✓✓", label: "Read" } : delivered ? { mark: "✓✓", label: "Delivered" } : { mark: "✓", label: "Sent" };
  }

  private renderMessage(m: Message, room: Room): HTMLElement {
    const mine = m.sender_id === this.me.id;
    const status = mine ? this.ownStatus(m) : null;
    const parent = m.reply_to ? [...this.roomState(m.room_id).messages.values()].find((x) => x.id === m.reply_to) : undefined;
    const key = `${m.version}|${m.body}|${status?.title ?? ""}|${this.name(m.sender_id)}|${parent ? this.name(parent.sender_id) : ""}`;
    const cached = this.messageNodes.get(m.id);
    if (cached && cached.key === key) return cached.node;
    const admin = room.my_role === "owner" || room.my_role === "admin";
    const actions: HTMLElement[] = [];
    if (!m.deleted) {
      actions.push(h("button", { type: "button", class: "link", onclick: () => ((this.replyTo = m), this.renderComposerBar(), this.composer?.focus()) }, "Reply"));
      const picker = h("div", { class: "picker", role: "group", "aria-label": "Add a reaction", hidden: true });
      for (const emoji of QUICK_EMOJI) {
        picker.appendChild(h("button", { type: "button", class: "emoji", "aria-label": `React with ${emoji}`, onclick: () => ((picker.hidden = true), void this.react(m, emoji)) }, emoji));
      }
      const toggle = h("button", { type: "button", class: "link", "aria-expanded": "false" }, "React");
      toggle.addEventListener("click", () => {
        picker.hidden = !picker.hidden;
        toggle.setAttribute("aria-expanded", String(!picker.hidden));
      });
      actions.push(toggle, picker);
      if (mine) {
        actions.push(
          h("button", { type: "button", class: "link", onclick: () => this.startEdit(m) }, "Edit"),
        );
      }
      if (mine || admin) actions.push(h("button", { type: "button", class: "link", onclick: () => void this.remove(m) }, "Delete"));
    }
    const node = h(
      "li",
      { class: "message" + (mine ? " mine" : ""), "data-seq": m.seq, "data-id": m.id },
      h(
        "div",
        { class: "meta" },
        h("strong", null, mine ? "You" : this.name(m.sender_id)),
        h("time", { datetime: m.created_at }, time(m.created_at)),
        m.edited_at && !m.deleted ? h("span", { class: "muted" }, "(edited)") : null,
        status ? h("span", { class: "receipt " + status.label.toLowerCase(), title: status.title, "aria-label": status.label }, status.mark) : null,
      ),
      parent ? h("div", { class: "reply-to" }, `↪ ${this.name(parent.sender_id)}: `, parent.deleted ? "(deleted)" : parent.body.slice(0, 100)) : m.reply_to ? h("div", { class: "reply-to" }, "↪ an earlier message") : null,
      m.deleted ? h("p", { class: "body deleted" }, "This message was deleted.") : m.body ? h("p", { class: "body" }, m.body) : null,
      m.attachment_ids.map((id) => this.renderAttachment(m.room_id, id)),
      m.reactions.length
        ? h(
            "div",
            { class: "reactions" },
            m.reactions.map((r) => {
              const minePressed = r.user_ids.includes(this.me.id);
              return h(
                "button",
                { type: "button", class: "reaction", "aria-pressed": String(minePressed), "aria-label": `${r.emoji} ${r.count}, ${minePressed ? "remove yours" : "add yours"}`, onclick: () => void this.react(m, r.emoji) },
                `${r.emoji} ${r.count}`,
              );
            }),
          )
        : null,
      actions.length ? h("div", { class: "msg-actions" }, actions) : null,
    );
    this.messageNodes.set(m.id, { key, node });
    return node;
  }

  /** Rows that do not depend on data, made once per room view so re-renders keep them (and their focus). */
  private fixed(key: string, make: () => HTMLElement): HTMLElement {
    let node = this.fixedNodes.get(key);
    if (!node) {
      node = make();
      this.fixedNodes.set(key, node);
    }
    return node;
  }

  private readonly fixedNodes = new Map<string, HTMLElement>();

  private renderPending(p: Pending): HTMLElement {
    const cacheKey = `pending|${p.client_msg_id}|${p.state}|${p.error ?? ""}`;
    const cached = this.fixedNodes.get(cacheKey);
    if (cached) return cached;
    const node = this.renderPendingNode(p);
    this.fixedNodes.set(cacheKey, node);
    return node;
  }

  private renderPendingNode(p: Pending): HTMLElement {
    const label = p.state === "failed" ? `Not sent: ${p.error ?? "refused"}` : p.state === "waiting" ? "Waiting for the connection…" : "Sending…";
    return h(
      "li",
      { class: "message mine pending " + p.state, "data-client-msg-id": p.client_msg_id },
      h("div", { class: "meta" }, h("strong", null, "You"), h("span", { class: "receipt", "aria-label": label, title: label }, p.state === "failed" ? "!" : "…"), h("span", { class: "muted" }, label)),
      p.body ? h("p", { class: "body" }, p.body) : null,
      p.attachment_ids.length ? h("p", { class: "muted" }, `${p.attachment_ids.length} attachment(s)`) : null,
      p.state === "failed"
        ? h(
            "div",
            { class: "msg-actions" },
            h("button", { type: "button", class: "link", onclick: () => ((p.attempts = 0), void this.transmit(p)) }, "Retry"),
            h("button", { type: "button", class: "link", onclick: () => (this.removePending(p.room_id, p.client_msg_id), this.renderMessages()) }, "Discard"),
          )
        : null,
    );
  }

  private renderMessages(forceBottom = false): void {
    const roomId = this.current;
    const list = this.list;
    const room = roomId ? this.rooms.get(roomId) : undefined;
    if (!roomId || !list || !room) return;
    const s = this.roomState(roomId);
    const stick = forceBottom || this.atBottom();
    this.atBottomBeforeImage = stick;
    const messages = [...s.messages.values()].sort((a, b) => a.seq - b.seq);
    const nodes: HTMLElement[] = [];
    if (s.loading && !messages.length) nodes.push(this.fixed("loading", () => h("li", { class: "muted center" }, "Loading…")));
    else if (!s.hasMore && s.loaded) nodes.push(this.fixed("start", () => h("li", { class: "muted center" }, "This is the beginning of the room.")));
    else if (s.hasMore && s.loaded) {
      nodes.push(
        this.fixed("older", () =>
          h("li", { class: "center" }, h("button", { type: "button", class: "small", onclick: () => void this.loadOlder(roomId) }, "Load older messages")),
        ),
      );
    }
    let dividerShown = false;
    for (const m of messages) {
      if (!dividerShown && s.dividerAfter !== null && m.seq > s.dividerAfter && m.sender_id !== this.me.id) {
        nodes.push(this.fixed("divider", () => h("li", { class: "divider", role: "separator", "aria-label": "New messages" }, h("span", null, "New messages"))));
        dividerShown = true;
      }
      nodes.push(this.renderMessage(m, room));
    }
    for (const p of this.pending.get(roomId) ?? []) nodes.push(this.renderPending(p));
    reconcile(list, nodes);
    if (stick) this.scrollToBottom();
    this.renderTyping();
    // A page that does not fill the view cannot be scrolled up: fetch the next one straight away.
    if (s.hasMore && s.loaded && !s.loading && list.scrollHeight <= list.clientHeight) void this.loadOlder(roomId);
  }

  // ---------------------------------------------------------------- message actions

  private startEdit(m: Message): void {
    this.editing = m;
    this.replyTo = null;
    if (this.composer) {
      this.composer.value = m.body;
      this.composer.focus();
    }
    this.renderComposerBar();
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
    this.patch(m.room_id, m.seq, ack.version, (x) => ({ ...x, reactions: this.reactions(x, emoji, this.me.id, action, ack.counts) }));
  }

  private async leave(room: Room): Promise<void> {
    if (!window.confirm(`Leave ${this.roomName(room)}?`)) return;
    try {
      await api("POST", `/api/rooms/${room.id}/leave`);
      this.rooms.delete(room.id);
      this.closeRoom();
    } catch (e) {
      this.announce(errorText(e), true);
    }
  }

  // ---------------------------------------------------------------- dialogs

  private dialog(title: string, ...content: Child[]): HTMLDialogElement {
    const heading = h("h2", { id: "dialog-title" }, title);
    const dialog = h(
      "dialog",
      { "aria-labelledby": "dialog-title" },
      h("div", { class: "dialog-head" }, heading, h("button", { type: "button", class: "link", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
      content,
    );
    dialog.addEventListener("close", () => dialog.remove());
    document.body.appendChild(dialog);
    dialog.showModal();
    return dialog;
  }

  private directoryDialog(): void {
    const search = h("input", { type: "search", name: "q", autocomplete: "off", placeholder: "Room name" });
    const results = h("ul", { class: "plain directory", "aria-live": "polite" });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    let timer: number | undefined;
    const load = async () => {
      try {
        const q = search.value.trim();
        const page = await api<Page<Room>>("GET", `/api/rooms?limit=50${q ? `&q=${encodeURIComponent(q)}` : ""}`);
        if (!page.items.length) {
          replace(results, h("li", { class: "muted" }, "No rooms match."));
          return;
        }
        replace(
          results,
          page.items.map((room) => {
            const member = this.rooms.has(room.id);
            const password = room.password_protected ? h("input", { type: "password", "aria-label": `Password for ${room.name}`, placeholder: "Room password", autocomplete: "off" }) : null;
            const join = h("button", { type: "button", class: "small" }, member ? "Open" : "Join");
            join.addEventListener("click", () => {
              void (async () => {
                try {
                  if (!member) await api("POST", `/api/rooms/${room.id}/join`, { body: password ? { password: password.value } : {} });
                  dialog.close();
                  await this.joined(room.id);
                } catch (e) {
                  error.hidden = false;
                  error.textContent = errorText(e);
                }
              })();
            });
            return h(
              "li",
              { class: "dir-item" },
              h("div", null, h("strong", null, room.name ?? "Unnamed"), room.password_protected ? " 🔒" : "", h("br"), h("small", { class: "muted" }, `${plural(room.member_count, "member")}${room.topic ? " · " + room.topic : ""}`)),
              member ? null : password,
              join,
            );
          }),
        );
      } catch (e) {
        error.hidden = false;
        error.textContent = errorText(e);
      }
    };
    search.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => void load(), 250);
    });
    const dialog = this.dialog("Public rooms", field("Search rooms", search), error, results);
    void load();
  }

  private createDialog(): void {
    const name = h("input", { type: "text", name: "name", required: true, maxlength: 100, autocomplete: "off" });
    const topic = h("input", { type: "text", name: "topic", maxlength: 250, autocomplete: "off" });
    const kind = h(
      "select",
      { name: "kind" },
      h("option", { value: "public" }, "Public — listed, anyone can join"),
      h("option", { value: "password" }, "Password — listed, joining needs the password"),
      h("option", { value: "private" }, "Private — hidden, by invitation only"),
    );
    const password = h("input", { type: "password", name: "room-password", autocomplete: "new-password" });
    const passwordField = field("Room password", password);
    passwordField.hidden = true;
    kind.addEventListener("change", () => {
      passwordField.hidden = kind.value !== "password";
      password.required = kind.value === "password";
    });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const form = h("form", null, field("Name", name), field("Topic (optional)", topic), field("Kind", kind), passwordField, error, h("button", { type: "submit", class: "primary" }, "Create room"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void (async () => {
        try {
          const body: Record<string, string> = { kind: kind.value, name: name.value.trim() };
          if (topic.value.trim()) body.topic = topic.value.trim();
          if (kind.value === "password") body.password = password.value;
          const room = await api<Room>("POST", "/api/rooms", { body });
          dialog.close();
          await this.joined(room.id);
        } catch (e) {
          error.hidden = false;
          error.textContent = errorText(e);
        }
      })();
    });
    const dialog = this.dialog("New room", form);
    name.focus();
  }

  /** Opens (or finds) the direct room; errors reach the caller, which closes its dialog only on success. */
  private async openDirect(userId: string, dialog: HTMLDialogElement): Promise<void> {
    const room = await api<Room>("POST", "/api/rooms/direct", { body: { user_id: userId } });
    dialog.close();
    await this.joined(room.id);
  }

  private directDialog(): void {
    const user = h("input", { type: "text", name: "username", required: true, autocomplete: "off", maxlength: 64, spellcheck: "false" });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const contacts = this.users
      .known()
      .filter((u) => u.user_id !== this.me.id)
      .map((u) => [u.username, u.display_name || u.username] as const)
      .sort((a, b) => a[1].localeCompare(b[1]))
      .slice(0, 30);
    const form = h(
      "form",
      null,
      field("Username", user, "Their username (any case), or pick someone below."),
      error,
      h("button", { type: "submit", class: "primary" }, "Open conversation"),
      contacts.length
        ? h(
            "ul",
            { class: "plain", "aria-label": "People you know" },
            contacts.map(([username, name]) => h("li", null, h("button", { type: "button", class: "link", onclick: () => ((user.value = username), form.requestSubmit()) }, name))),
          )
        : null,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.users
        .resolve(user.value)
        .then((found) => this.openDirect(found.user_id, dialog))
        .catch((e: unknown) => {
          error.hidden = false;
          error.textContent = errorText(e);
        });
    });
    const dialog = this.dialog("Direct message", form);
    user.focus();
  }

  private async membersDialog(room: Room): Promise<void> {
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const list = h("ul", { class: "plain members" });
    const fail = (e: unknown) => {
      error.hidden = false;
      error.textContent = errorText(e);
    };
    const rank: Record<string, number> = { owner: 3, admin: 2, member: 1 };
    const myRank = rank[room.my_role ?? ""] ?? 0;
    const render = async () => {
      const members = await this.loadMembers(room.id);
      const presence = this.roomState(room.id).presence;
      replace(
        list,
        members.map((m) => {
          const status = m.user_id === this.me.id ? "online" : presence.get(m.user_id) ?? "offline";
          const canModerate = m.user_id !== this.me.id && myRank >= 2 && myRank > (rank[m.role] ?? 0) && room.kind !== "direct";
          const act = (label: string, work: () => Promise<unknown>) =>
            h("button", {
              type: "button",
              class: "small",
              onclick: () => {
                if (window.confirm(`${label} ${this.name(m.user_id)}?`)) void work().then(render).catch(fail);
              },
            }, label);
          return h(
            "li",
            { class: "member" },
            h("span", { class: `presence ${status}`, role: "img", "aria-label": status, title: status }),
            h("span", { class: "grow" }, m.user_id === this.me.id ? `${this.me.username} (you)` : this.name(m.user_id), h("small", { class: "muted" }, ` ${m.role}${this.users.get(m.user_id) ? ` · @${this.users.get(m.user_id)?.username}` : ""}`)),
            m.user_id !== this.me.id ? h("button", { type: "button", class: "small", onclick: () => void this.openDirect(m.user_id, dialog).catch(fail) }, "Message") : null,
            canModerate ? act("Kick", () => api("POST", `/api/rooms/${room.id}/members/${m.user_id}/kick`, { body: {} })) : null,
            canModerate && room.kind !== "group_dm" ? act("Ban", () => api("POST", `/api/rooms/${room.id}/bans`, { body: { user_id: m.user_id } })) : null,
          );
        }),
      );
    };
    const invite = h("input", { type: "text", name: "invite", autocomplete: "off", spellcheck: "false", maxlength: 64, required: true });
    const inviteForm = h("form", { class: "inline" }, field("Invite by username", invite), h("button", { type: "submit" }, "Invite"));
    inviteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.users
        .resolve(invite.value)
        .then(async (found) => {
          await api("POST", `/api/rooms/${room.id}/invitations`, { body: { user_id: found.user_id } });
          invite.value = "";
          this.announce(`Invitation sent to ${found.display_name || found.username}.`);
        })
        .catch(fail);
    });
    // Ban someone who is not (or no longer) a member, so that they cannot join.
    const banned = h("input", { type: "text", name: "ban", autocomplete: "off", spellcheck: "false", maxlength: 64, required: true });
    const banForm = h("form", { class: "inline" }, field("Ban by username", banned), h("button", { type: "submit" }, "Ban"));
    banForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.users
        .resolve(banned.value)
        .then(async (found) => {
          const who = found.display_name || found.username;
          if (!window.confirm(`Ban ${who}?`)) return;
          await api("POST", `/api/rooms/${room.id}/bans`, { body: { user_id: found.user_id } });
          banned.value = "";
          this.announce(`${who} is banned.`);
          await render();
        })
        .catch(fail);
    });
    const canInvite = room.kind === "group_dm" || myRank >= 2;
    const canBan = myRank >= 2 && room.kind !== "direct" && room.kind !== "group_dm";
    const dialog = this.dialog(
      `Members of ${this.roomName(room)}`,
      error,
      list,
      canInvite && room.kind !== "direct" ? inviteForm : null,
      canBan ? banForm : null,
    );
    await render().catch(fail);
  }

  private announce(text: string, error = false): void {
    this.live.textContent = text;
    if (error) {
      const toast = h("div", { class: "toast", role: "alert" }, text);
      document.body.appendChild(toast);
      setTimeout(() => toast.remove(), 5000);
    }
  }
}
