// The left column: who I am, the actions, the notifications toggle, my invitations and my rooms with unread badges
// and presence dots; the total unread count also goes in the tab's title.

import { totalUnread } from "../attention/rules";
import { showUnreadInTitle } from "../attention/title";
import { h, replace } from "../dom";
import { othersPresent, type RoomState } from "../state/room";
import type { Invitation, Room } from "../types";
import type { ViewContext } from "./common";
import { mentionBadge } from "./mention-badge";

export interface SidebarActions {
  signOut(): void;
  browse(): void;
  create(): void;
  direct(): void;
  open(roomId: string): void;
  answer(room: Room, accept: boolean): void;
}

export class Sidebar {
  private readonly roomList = h("ul", { class: "rooms", "aria-label": "Your rooms" });
  private readonly inviteList = h("div", { class: "invites" });
  private readonly notifySlot = h("div");
  readonly element: HTMLElement;

  constructor(
    private readonly ctx: ViewContext,
    private readonly actions: SidebarActions,
  ) {
    const me = ctx.me;
    const verifiedNote = me.email_verified
      ? null
      : h("p", { class: "notice" }, "Verify your email address to create, join and post in rooms.");
    this.element = h(
      "nav",
      { class: "sidebar", "aria-label": "Rooms" },
      h(
        "header",
        { class: "me" },
        h(
          "div",
          null,
          h("strong", null, me.display_name || me.username),
          h("small", { class: "muted" }, `@${me.username}`),
        ),
        h("button", { type: "button", class: "small", onclick: () => actions.signOut() }, "Sign out"),
      ),
      verifiedNote,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => actions.browse() }, "Browse rooms"),
        h("button", { type: "button", onclick: () => actions.create() }, "New room"),
        h("button", { type: "button", onclick: () => actions.direct() }, "Direct message"),
      ),
      this.notifySlot,
      this.inviteList,
      h("h2", { class: "section" }, "Rooms"),
      this.roomList,
    );
  }

  /** The browser-notifications toggle (attention/notifications.ts), under the actions. */
  showNotificationsControl(control: HTMLElement): void {
    replace(this.notifySlot, control);
  }

  renderRooms(rooms: Room[], stateOf: (roomId: string) => RoomState, current: string | null): void {
    showUnreadInTitle(totalUnread(rooms.map((room) => stateOf(room.id))));
    const items = [...rooms].sort((a, b) => this.ctx.roomName(a).localeCompare(this.ctx.roomName(b)));
    if (!items.length) {
      replace(this.roomList, h("li", { class: "muted empty" }, "No rooms yet. Browse the directory or create one."));
      return;
    }
    replace(
      this.roomList,
      items.map((room) => this.roomItem(room, stateOf(room.id), room.id === current)),
    );
  }

  private roomItem(room: Room, s: RoomState, active: boolean): HTMLElement {
    const { online, dot } = othersPresent(s, this.ctx.me.id);
    const label = room.kind === "direct" ? dot : `${online} other${online === 1 ? "" : "s"} online`;
    const unread =
      s.unread > 0
        ? h("span", { class: "badge", "aria-label": `${s.unread} unread` }, s.unread > 99 ? "99+" : s.unread)
        : null;
    return h(
      "li",
      null,
      h(
        "button",
        {
          type: "button",
          class: `room${active ? " active" : ""}${s.unread ? " has-unread" : ""}`,
          "aria-current": active ? "page" : null,
          "data-room": room.id,
          onclick: () => this.actions.open(room.id),
        },
        h("span", { class: `presence ${dot}`, title: label, "aria-label": label, role: "img" }),
        h("span", { class: "room-name" }, room.kind === "direct" ? "@ " : "# ", this.ctx.roomName(room)),
        room.kind === "password" ? h("span", { class: "muted", "aria-label": "password protected" }, "🔒") : null,
        room.kind === "private" ? h("span", { class: "muted", "aria-label": "private" }, "🔐") : null,
        unread,
        mentionBadge(s, this.ctx.me.id),
      ),
    );
  }

  renderInvitations(invitations: Invitation[]): void {
    if (!invitations.length) {
      replace(this.inviteList);
      return;
    }
    replace(
      this.inviteList,
      h("h2", { class: "section" }, "Invitations"),
      h(
        "ul",
        { class: "plain" },
        invitations.map((inv) =>
          h(
            "li",
            { class: "invite" },
            h(
              "span",
              null,
              inv.room.name ?? "A room",
              h("small", { class: "muted" }, ` from ${this.ctx.name(inv.invited_by)}`),
            ),
            h(
              "button",
              { type: "button", class: "small", onclick: () => this.actions.answer(inv.room, true) },
              "Accept",
            ),
            h(
              "button",
              { type: "button", class: "small", onclick: () => this.actions.answer(inv.room, false) },
              "Decline",
            ),
          ),
        ),
      ),
    );
  }
}
