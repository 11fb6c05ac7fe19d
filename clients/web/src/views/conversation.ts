// The right-hand pane: a welcome when no room is open, else the room's header, its messages (kept in view at the
// end, paged back on scrolling up), who is typing, and the composer.

import { h, replace } from "../dom";
import { type Notice, othersPresent, type RoomState, rows } from "../state/room";
import type { Pending } from "../state/send-queue";
import type { Message, Room } from "../types";
import { plural, reconcile, time, type ViewContext } from "./common";
import { Composer, type ComposerActions } from "./composer";
import { AttachmentCache, type MessageActions, MessageRenderer, pendingLabel, queueSummary } from "./message";

export interface ConversationActions extends ComposerActions, MessageActions {
  back(): void;
  members(room: Room): void;
  search(room: Room): void;
  leave(room: Room): void;
  loadOlder(roomId: string): void;
  /** The list scrolled (the read marker may move). */
  scrolled(): void;
}

/** Rows that do not depend on data, made once per room view so that re-renders keep them (and their focus). */
class FixedRows {
  private readonly nodes = new Map<string, HTMLElement>();

  get(key: string, make: () => HTMLElement): HTMLElement {
    let node = this.nodes.get(key);
    if (!node) {
      node = make();
      this.nodes.set(key, node);
    }
    return node;
  }
}

export class ConversationView {
  readonly element = h("section", { class: "conversation", "aria-label": "Conversation" });
  readonly attachments = new AttachmentCache();
  composer: Composer | null = null;
  private list: HTMLElement | null = null;
  private header: HTMLElement | null = null;
  private typingLine: HTMLElement | null = null;
  private sendLine: HTMLElement | null = null;
  private slowedSaid = false;
  private messageNodes = new Map<string, { key: string; node: HTMLElement }>();
  private fixed = new FixedRows();
  private readonly renderer: MessageRenderer;
  /** Whether the list was at its end when last drawn: an image loading later keeps it there. */
  private stuckToEnd = true;

  constructor(
    private readonly ctx: ViewContext,
    private readonly actions: ConversationActions,
  ) {
    this.renderer = new MessageRenderer(ctx, actions, this.attachments, () => this.stuckToEnd && this.scrollToBottom());
  }

  empty(): void {
    this.list = null;
    this.header = null;
    this.typingLine = null;
    this.sendLine = null;
    this.composer = null;
    replace(
      this.element,
      h(
        "div",
        { class: "empty-state" },
        h("h1", null, "Welcome, ", this.ctx.me.username),
        h("p", null, "Pick a room on the left, browse the directory, or start a direct message."),
      ),
    );
  }

  /** A room's pane, fresh (no reply, edit or staged files carried over from another room). */
  show(roomId: string): void {
    this.messageNodes = new Map();
    this.fixed = new FixedRows();
    this.header = h("header", { class: "conv-header" });
    const list = h("ol", { class: "messages", "aria-label": "Messages", tabindex: "0" });
    list.addEventListener("scroll", () => {
      if (list.scrollTop < 120) this.actions.loadOlder(roomId);
      this.actions.scrolled();
    });
    this.list = list;
    this.typingLine = h("div", { class: "typing", "aria-live": "polite" });
    this.sendLine = h("div", { class: "send-status", hidden: true });
    this.composer = new Composer(this.ctx, this.actions, roomId);
    replace(this.element, this.header, list, this.typingLine, this.sendLine, this.composer.element);
  }

  renderHeader(room: Room, s: RoomState): void {
    if (!this.header) return;
    const { online } = othersPresent(s, this.ctx.me.id);
    const admin = room.my_role === "owner" || room.my_role === "admin";
    replace(
      this.header,
      h("button", { type: "button", class: "back small", onclick: () => this.actions.back() }, "← Rooms"),
      h(
        "div",
        { class: "title" },
        h("h1", { id: "room-title" }, room.kind === "direct" ? "@ " : "# ", this.ctx.roomName(room)),
        h(
          "small",
          { class: "muted" },
          room.topic ?? "",
          room.topic ? " · " : "",
          `${plural(s.members?.length ?? room.member_count, "member")}, ${online} other${online === 1 ? "" : "s"} online`,
        ),
      ),
      h("button", { type: "button", class: "small", onclick: () => this.actions.search(room) }, "Search"),
      h(
        "button",
        { type: "button", class: "small", onclick: () => this.actions.members(room) },
        admin ? "Members & moderation" : "Members",
      ),
      room.kind !== "direct"
        ? h("button", { type: "button", class: "small", onclick: () => this.actions.leave(room) }, "Leave")
        : null,
    );
  }

  renderTyping(names: string[]): void {
    if (!this.typingLine) return;
    const text =
      names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
    if (this.typingLine.textContent !== text) this.typingLine.textContent = text;
  }

  /** Brings a message into view and marks it for a moment (a search result opened); false when it is not shown. */
  highlight(seq: number): boolean {
    const node = this.list?.querySelector<HTMLElement>(`li.message[data-seq="${seq}"]`);
    if (!node) return false;
    node.scrollIntoView({ block: "center" });
    node.classList.add("found");
    node.setAttribute("tabindex", "-1");
    node.focus({ preventScroll: true });
    window.setTimeout(() => node.classList.remove("found"), 4000);
    return true;
  }

  atBottom(): boolean {
    const list = this.list;
    return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  scrollToBottom(): void {
    if (this.list) this.list.scrollTop = this.list.scrollHeight;
  }

  /** Before prepending older messages: returns what keeps the same message under the reader's eyes after. */
  keepScrollPosition(): () => void {
    const list = this.list;
    const fromEnd = list ? list.scrollHeight - list.scrollTop : 0;
    return () => {
      if (list) list.scrollTop = list.scrollHeight - fromEnd;
    };
  }

  /** Draws the timeline and the pending messages; true when the page does not fill the view (so it cannot be
   * scrolled up, and the next page should be read at once). */
  renderMessages(room: Room, s: RoomState, pending: readonly Pending[], forceBottom: boolean): boolean {
    const list = this.list;
    if (!list) return false;
    const stick = forceBottom || this.atBottom();
    this.stuckToEnd = stick;
    const timelineRows = rows(s);
    const nodes: HTMLElement[] = [];
    if (s.loading && !s.messages.size)
      nodes.push(this.fixed.get("loading", () => h("li", { class: "muted center" }, "Loading…")));
    else if (!s.hasMore && s.loaded)
      nodes.push(
        this.fixed.get("start", () => h("li", { class: "muted center" }, "This is the beginning of the room.")),
      );
    else if (s.hasMore && s.loaded) {
      nodes.push(
        this.fixed.get("older", () =>
          h(
            "li",
            { class: "center" },
            h(
              "button",
              { type: "button", class: "small", onclick: () => this.actions.loadOlder(room.id) },
              "Load older messages",
            ),
          ),
        ),
      );
    }
    let dividerShown = false;
    for (const row of timelineRows) {
      if (row.kind === "notice") {
        const text = noticeText(row.notice, (id) => this.ctx.name(id));
        nodes.push(this.fixed.get(`notice|${row.notice.id}|${text}`, () => this.noticeNode(row.notice, text)));
        continue;
      }
      const m = row.message;
      let continued = row.continued;
      if (!dividerShown && s.dividerAfter !== null && m.seq > s.dividerAfter && m.sender_id !== this.ctx.me.id) {
        continued = false;
        nodes.push(
          this.fixed.get("divider", () =>
            h(
              "li",
              { class: "divider", role: "separator", "aria-label": "New messages" },
              h("span", null, "New messages"),
            ),
          ),
        );
        dividerShown = true;
      }
      nodes.push(this.messageNode(m, room, s, continued));
    }
    const now = Date.now();
    for (const p of pending) {
      const label = pendingLabel(p, now);
      nodes.push(
        this.fixed.get(`pending|${p.client_msg_id}|${p.state}|${label}`, () => this.renderer.pending(p, label)),
      );
    }
    reconcile(list, nodes);
    this.renderSendLine(pending, now);
    if (stick) this.scrollToBottom();
    return s.hasMore && s.loaded && !s.loading && list.scrollHeight <= list.clientHeight;
  }

  /** A join, leave, kick, ban or rename between the messages, in words. */
  private noticeNode(notice: Notice, text: string): HTMLElement {
    return h("li", { class: "room-notice", role: "note" }, text, " · ", time(notice.at));
  }

  private renderSendLine(pending: readonly Pending[], now: number): void {
    if (!this.sendLine) return;
    // The countdown is not a live region (it would be read out every second): screen readers hear once per burst
    // of sending that the rate limit holds it up.
    const head = pending.find((p) => p.state !== "failed");
    if (head?.state === "slowed" && !this.slowedSaid) {
      this.slowedSaid = true;
      this.ctx.announce("Sending slowed by the server's rate limit; your messages will go out in order.");
    } else if (!head) this.slowedSaid = false;
    const text = queueSummary(pending, now);
    this.sendLine.hidden = !text;
    if (this.sendLine.textContent !== text) this.sendLine.textContent = text;
  }

  private messageNode(m: Message, room: Room, s: RoomState, continued: boolean): HTMLElement {
    const key = `${this.renderer.key(m, s)}|${continued}`;
    const cached = this.messageNodes.get(m.id);
    if (cached && cached.key === key) return cached.node;
    const node = this.renderer.message(m, room, s, continued);
    this.messageNodes.set(m.id, { key, node });
    return node;
  }
}

/** What a notice says: "bob joined", "ada removed bob", "ada renamed the room to lounge". */
export function noticeText(notice: Notice, name: (userId: string) => string): string {
  const who = notice.userId ? name(notice.userId) : "someone";
  const by = notice.by ? name(notice.by) : "someone";
  switch (notice.kind) {
    case "joined":
      return notice.by && notice.by !== notice.userId ? `${by} added ${who}` : `${who} joined`;
    case "left":
      return `${who} left`;
    case "kicked":
      return `${by} removed ${who}`;
    case "banned":
      return `${by} banned ${who}`;
    case "renamed":
      return notice.name ? `${by} renamed the room to ${notice.name}` : `${by} removed the room's name`;
  }
}
