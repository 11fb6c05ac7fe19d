// Browser notifications for direct messages and mentions: off until the person turns them on from the sidebar's
// control (the browser then asks for permission), shown only while the tab is hidden, never for one's own
// messages (the rules are in rules.ts). The choice is kept in localStorage, per browser.

import { h, replace } from "../dom";
import type { Message, Room } from "../types";
import { notifies } from "./rules";

const STORAGE_KEY = "chat.notifications";

export interface NotifierDeps {
  me: string;
  room(roomId: string): Room | undefined;
  roomName(room: Room): string;
  name(userId: string): string;
  open(roomId: string): void;
}

type Support = "unsupported" | "denied" | "off" | "on";

export class Notifier {
  /** The sidebar's control: a toggle button and a line saying what it does. */
  readonly element = h("div", { class: "notify-control" });

  constructor(private readonly deps: NotifierDeps) {
    this.render();
  }

  private support(): Support {
    if (!("Notification" in window)) return "unsupported";
    if (Notification.permission === "denied") return "denied";
    return Notification.permission === "granted" && localStorage.getItem(STORAGE_KEY) === "on" ? "on" : "off";
  }

  private render(): void {
    const support = this.support();
    if (support === "unsupported") {
      replace(this.element);
      return;
    }
    if (support === "denied") {
      replace(this.element, h("small", { class: "muted" }, "Notifications are blocked in this browser's settings."));
      return;
    }
    const on = support === "on";
    replace(
      this.element,
      h(
        "button",
        { type: "button", class: "small", "aria-pressed": String(on), onclick: () => void this.toggle(on) },
        on ? "Notifications on" : "Turn on notifications",
      ),
      h("small", { class: "muted" }, "For direct messages and mentions, while this tab is hidden."),
    );
  }

  private async toggle(on: boolean): Promise<void> {
    if (on) localStorage.setItem(STORAGE_KEY, "off");
    else if ((await Notification.requestPermission()) === "granted") localStorage.setItem(STORAGE_KEY, "on");
    this.render();
  }

  /** A new message arrived: notify when the rules say so. */
  message(m: Message): void {
    if (this.support() !== "on") return;
    const room = this.deps.room(m.room_id);
    if (!room || !notifies(m, room, this.deps.me, document.hidden)) return;
    const sender = this.deps.name(m.sender_id);
    const title = room.kind === "direct" ? sender : `${sender} in ${this.deps.roomName(room)}`;
    const body = m.body.length > 200 ? `${m.body.slice(0, 200)}…` : m.body || "(an attachment)";
    const notification = new Notification(title, { body, tag: `chat-${m.room_id}` });
    notification.onclick = () => {
      window.focus();
      this.deps.open(m.room_id);
      notification.close();
    };
  }
}
