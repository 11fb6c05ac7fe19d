// "Jump to the first unread message": a button over the open room while the first message that was unread when
// the room was opened is above the visible part of the list (or not loaded yet). It pages back until that
// message is loaded, scrolls it to the top and focuses it. Once that message has been in view, the button stays
// away until the room is opened again.

import { h } from "../dom";
import type { RoomState } from "../state/room";
import "./attention.css";
import { firstUnreadSeq, unreadStartsEarlier } from "./rules";

/** At most this many pages are read back to reach the first unread message (50 messages each). */
const MAX_PAGES = 40;

export interface JumpDeps {
  me: string;
  /** The open room and its state, if any. */
  current(): { roomId: string; state: RoomState } | null;
  /** The open room's message list. */
  list(): HTMLElement | null;
  /** Read the page before the oldest message shown (and draw it). */
  older(roomId: string): Promise<void>;
}

export class JumpToUnread {
  readonly element = h(
    "button",
    { type: "button", class: "jump-unread", hidden: true, onclick: () => void this.jump() },
    "",
  );
  /** The room (and its read marker when opened) whose first unread message has been seen. */
  private seen: string | null = null;

  constructor(private readonly deps: JumpDeps) {}

  /** After drawing or scrolling the list: show or hide the button. */
  update(): void {
    const current = this.deps.current();
    const list = this.deps.list();
    if (!current || !list) {
      this.element.hidden = true;
      return;
    }
    const { roomId, state } = current;
    const key = `${roomId}:${state.dividerAfter}`;
    const first = firstUnreadSeq(state, this.deps.me);
    if (this.seen === key || (first === null && !unreadStartsEarlier(state))) {
      this.element.hidden = true;
      return;
    }
    const node = first === null ? null : this.node(list, first);
    if (node && !unreadStartsEarlier(state) && node.getBoundingClientRect().top >= list.getBoundingClientRect().top) {
      this.seen = key; // in view (or scrolled past from above): no need to jump
      this.element.hidden = true;
      return;
    }
    const count = this.unreadCount(state);
    this.element.textContent = `↑ Jump to the first unread message${count ? ` (${count} new)` : ""}`;
    this.element.hidden = false;
  }

  private unreadCount(state: RoomState): number {
    const after = state.dividerAfter ?? 0;
    let n = 0;
    for (const m of state.messages.values()) if (m.seq > after && m.sender_id !== this.deps.me) n += 1;
    return n;
  }

  private node(list: HTMLElement, seq: number): HTMLElement | null {
    return list.querySelector<HTMLElement>(`li.message[data-seq="${seq}"]`);
  }

  private async jump(): Promise<void> {
    const current = this.deps.current();
    if (!current) return;
    const { roomId, state } = current;
    for (let pages = 0; pages < MAX_PAGES && unreadStartsEarlier(state); pages++) {
      const before = state.messages.size;
      await this.deps.older(roomId);
      if (this.deps.current()?.roomId !== roomId) return;
      if (state.messages.size === before && !state.loading) break;
    }
    const first = firstUnreadSeq(state, this.deps.me);
    const list = this.deps.list();
    const node = first === null || !list ? null : this.node(list, first);
    if (!node) return;
    node.tabIndex = -1;
    node.scrollIntoView({ block: "start" });
    node.focus({ preventScroll: true });
    this.seen = `${roomId}:${state.dividerAfter}`;
    this.element.hidden = true;
  }
}
