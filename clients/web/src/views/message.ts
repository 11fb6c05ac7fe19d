// One message in the conversation: author, time, receipt, reply quote, body (always text), attachments,
// reactions and its actions; and a message still on its way (pending).

import { quoteOf } from "../attention/rules";
import { download, type LoadedAttachment } from "../chat-api";
import { h, replace } from "../dom";
import { renderMessage } from "../markdown";
import { mentionsMe } from "../state/mentions";
import { type RoomState, receiptOf } from "../state/room";
import type { Pending } from "../state/send-queue";
import type { Message, Reaction, Room } from "../types";
import { time, type ViewContext } from "./common";
import "./messages.css";

/** The reaction picker's emoji: the usual quick ones first, then a small built-in set. */
export const PICKER_EMOJI = [
  ..."👍 ❤️ 😂 🎉 😮 👀".split(" "),
  ..."😀 😄 😊 🙂 😉 😍 🤔 😅 😢 😭 😡 😴 🤯 🥳 😎 🙃".split(" "),
  ..."👎 👏 🙌 🙏 💪 👋 🤝 ✌️ 👌 🤞".split(" "),
  ..."🔥 ✨ ⭐ 💯 ✅ ❌ ⚠️ 💡 🚀 🐛 ☕ 🍕".split(" "),
];
const QUICK_COUNT = 6;

/** Who reacted with one emoji, in words: the people this client knows of, and how many more the count says. */
export function reactorsText(r: Reaction, name: (userId: string) => string, me: string): string {
  const names = r.user_ids.map((id) => (id === me ? "you" : name(id)));
  const more = r.count - names.length;
  if (more > 0) names.push(more === 1 ? "1 other" : `${more} others`);
  const list = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}` : names[0];
  return `${list ?? "nobody"} reacted with ${r.emoji}`;
}

export interface MessageActions {
  reply(m: Message): void;
  react(m: Message, emoji: string): void;
  startEdit(m: Message): void;
  remove(m: Message): void;
  retry(p: Pending): void;
  discard(p: Pending): void;
}

/** Attachments fetched once per page (they need the token) and kept as `blob:` URLs until sign-out. */
export class AttachmentCache {
  private readonly found = new Map<string, Promise<LoadedAttachment>>();

  get(roomId: string, id: string): Promise<LoadedAttachment> {
    let found = this.found.get(id);
    if (!found) {
      found = download(roomId, id);
      found.catch(() => this.found.delete(id));
      this.found.set(id, found);
    }
    return found;
  }

  dispose(): void {
    for (const found of this.found.values())
      void found.then(
        ({ url }) => URL.revokeObjectURL(url),
        () => undefined,
      );
  }
}

/** The receipt shown on one of my messages. Each state has its own mark, not only its own colour: one tick for
 * sent, two for delivered, two and the word "Read" for read; the label is for screen readers, the title names
 * who read it. */
export function ownStatus(ctx: ViewContext, s: RoomState, m: Message): { mark: string; label: string; title: string } {
  const { label, readers } = receiptOf(s, m, ctx.me.id);
  const mark = { Sent: "✓", Delivered: "✓✓", Read: "✓✓ Read" }[label];
  return { mark, label, title: readers.length ? `Read by ${readers.map((user) => ctx.name(user)).join(", ")}` : label };
}

/** What a message on its way is doing, in words (a rate limit says so, with its wait, as does a retry). */
export function pendingLabel(p: Pending, now: number): string {
  const wait = p.retryAt === null ? 0 : Math.max(1, Math.ceil((p.retryAt - now) / 1000));
  switch (p.state) {
    case "queued":
      return "Queued";
    case "sending":
      return "Sending…";
    case "waiting":
      return "Waiting for the connection…";
    case "slowed":
      return `Sending slowed: retrying in ${wait} s`;
    case "retrying":
      return `No answer yet: retrying in ${wait} s`;
    case "failed":
      return `Not sent: ${p.error ?? "refused"}`;
  }
}

/** One line for the room's queue when its first message is held up (a rate limit, a retry, no connection), so it
 * shows wherever the list is scrolled; empty otherwise. */
export function queueSummary(pending: readonly Pending[], now: number): string {
  const unsent = pending.filter((p) => p.state !== "failed");
  const head = unsent[0];
  if (!head || (head.state !== "slowed" && head.state !== "retrying" && head.state !== "waiting")) return "";
  return unsent.length > 1
    ? `${pendingLabel(head, now)} · ${unsent.length} messages to send, in order`
    : pendingLabel(head, now);
}

export class MessageRenderer {
  constructor(
    private readonly ctx: ViewContext,
    private readonly actions: MessageActions,
    private readonly attachments: AttachmentCache,
    /** An image finished loading: the list may need scrolling to keep the newest message in view. */
    private readonly imageLoaded: () => void,
  ) {}

  /** The cache key of a message's node: anything shown that can change. */
  key(m: Message, s: RoomState): string {
    const mine = m.sender_id === this.ctx.me.id;
    const status = mine ? ownStatus(this.ctx, s, m) : null;
    const parent = this.parent(m, s);
    const reactors = m.reactions.map((r) => r.user_ids.map((id) => this.ctx.name(id)).join(",")).join(";");
    return `${reactors}|${m.version}|${m.body}|${status?.title ?? ""}|${this.ctx.name(m.sender_id)}|${parent ? this.ctx.name(parent.sender_id) : ""}|${quoteOf(m, s)?.key ?? ""}`;
  }

  private parent(m: Message, s: RoomState): Message | undefined {
    return m.reply_to ? [...s.messages.values()].find((x) => x.id === m.reply_to) : undefined;
  }

  /** One message; `continued` when it carries on its author's block (the name and time are then for screen
   * readers and on hover only). */
  message(m: Message, room: Room, s: RoomState, continued = false): HTMLElement {
    const ctx = this.ctx;
    const mine = m.sender_id === ctx.me.id;
    const status = mine ? ownStatus(ctx, s, m) : null;
    const parent = this.parent(m, s);
    const admin = room.my_role === "owner" || room.my_role === "admin";
    return h(
      "li",
      {
        class: `message${mine ? " mine" : ""}${continued ? " continued" : ""}${mentionsMe(m, ctx.me.id) ? " mentions-me" : ""}`,
        "data-seq": m.seq,
        "data-id": m.id,
      },
      h(
        "div",
        { class: "meta" },
        h("strong", { class: continued ? "sr-only" : null }, mine ? "You" : ctx.name(m.sender_id)),
        h("time", { datetime: m.created_at }, time(m.created_at)),
        m.edited_at && !m.deleted ? h("span", { class: "muted" }, "(edited)") : null,
        status
          ? h(
              "span",
              { class: `receipt ${status.label.toLowerCase()}`, title: status.title, "aria-label": status.label },
              status.mark,
            )
          : null,
      ),
      parent
        ? h(
            "div",
            { class: "reply-to" },
            `↪ ${ctx.name(parent.sender_id)}: `,
            parent.deleted ? "(deleted)" : parent.body.slice(0, 100),
          )
        : m.reply_to
          ? h("div", { class: "reply-to" }, "↪ an earlier message")
          : null,
      m.deleted ? h("div", { class: "body deleted" }, "This message was deleted.") : m.body ? this.body(m.body) : null,
      m.attachment_ids.map((id) => this.attachment(m.room_id, id)),
      m.reactions.length
        ? h(
            "div",
            { class: "reactions" },
            m.reactions.map((r) => this.reaction(m, r)),
          )
        : null,
      m.deleted ? null : h("div", { class: "msg-actions" }, this.messageActions(m, mine || admin)),
    );
  }

  /** The body through the safe Markdown subset (markdown.ts): elements and text nodes only, never parsed HTML;
   * mentions of me are marked so they stand out. */
  private body(text: string): HTMLElement {
    const body = h("div", { class: "body" }, renderMessage(text));
    const me = this.ctx.me.username.toLowerCase();
    for (const mention of body.querySelectorAll<HTMLElement>(".mention"))
      if (mention.dataset.username === me) mention.classList.add("mention-me");
    return body;
  }

  /** A reaction: pressing it adds or removes mine; who reacted shows on hover or keyboard focus, and on a long
   * press (a touch screen's context menu) or a right click. */
  private reaction(m: Message, r: Reaction): HTMLElement {
    const ctx = this.ctx;
    const minePressed = r.user_ids.includes(ctx.me.id);
    const who = reactorsText(r, (id) => ctx.name(id), ctx.me.id);
    const tip = h("span", { class: "who", role: "tooltip" }, who);
    tip.id = `who-${m.id}-${[...r.emoji].map((c) => c.codePointAt(0)?.toString(16)).join("-")}`;
    const button = h(
      "button",
      {
        type: "button",
        class: "reaction",
        "aria-pressed": String(minePressed),
        "aria-label": `${r.emoji} ${r.count}, ${minePressed ? "remove yours" : "add yours"}`,
        "aria-describedby": tip.id,
        onclick: () => this.actions.react(m, r.emoji),
      },
      `${r.emoji} ${r.count}`,
    );
    const wrap = h("span", { class: "reaction-wrap" }, button, tip);
    button.addEventListener("contextmenu", (event) => {
      event.preventDefault();
      wrap.classList.toggle("show-who");
    });
    button.addEventListener("blur", () => wrap.classList.remove("show-who"));
    return wrap;
  }

  private messageActions(m: Message, mayDelete: boolean): HTMLElement[] {
    const actions: HTMLElement[] = [];
    actions.push(h("button", { type: "button", class: "link", onclick: () => this.actions.reply(m) }, "Reply"));
    const picker = h("div", { class: "picker", role: "group", "aria-label": "Add a reaction", hidden: true });
    const more = h("div", { class: "picker-more", hidden: true });
    PICKER_EMOJI.forEach((emoji, i) => {
      const react = () => {
        picker.hidden = true;
        this.actions.react(m, emoji);
      };
      (i < QUICK_COUNT ? picker : more).appendChild(
        h("button", { type: "button", class: "emoji", "aria-label": `React with ${emoji}`, onclick: react }, emoji),
      );
    });
    const moreToggle = h(
      "button",
      { type: "button", class: "emoji more", "aria-label": "More emoji", "aria-expanded": "false" },
      "…",
    );
    moreToggle.addEventListener("click", () => {
      more.hidden = !more.hidden;
      moreToggle.setAttribute("aria-expanded", String(!more.hidden));
    });
    picker.append(moreToggle, more);
    const toggle = h("button", { type: "button", class: "link", "aria-expanded": "false" }, "React");
    toggle.addEventListener("click", () => {
      picker.hidden = !picker.hidden;
      toggle.setAttribute("aria-expanded", String(!picker.hidden));
    });
    actions.push(toggle, picker);
    if (m.sender_id === this.ctx.me.id)
      actions.push(h("button", { type: "button", class: "link", onclick: () => this.actions.startEdit(m) }, "Edit"));
    if (mayDelete)
      actions.push(h("button", { type: "button", class: "link", onclick: () => this.actions.remove(m) }, "Delete"));
    return actions;
  }

  private attachment(roomId: string, id: string): HTMLElement {
    const holder = h("div", { class: "attachment" }, h("span", { class: "muted" }, "Loading attachment…"));
    void this.attachments
      .get(roomId, id)
      .then(({ url, type, name }) => {
        if (type.startsWith("image/")) {
          replace(
            holder,
            h(
              "a",
              { href: url, target: "_blank", rel: "noopener" },
              h("img", { src: url, alt: `Image: ${name}`, loading: "lazy" }),
            ),
          );
          holder.querySelector("img")?.addEventListener("load", () => this.imageLoaded());
        } else {
          replace(holder, h("a", { href: url, download: name }, `📄 ${name}`));
        }
      })
      .catch(() => replace(holder, h("span", { class: "muted" }, "Attachment unavailable")));
    return holder;
  }

  pending(p: Pending, label: string): HTMLElement {
    return h(
      "li",
      { class: `message mine pending ${p.state}`, "data-client-msg-id": p.client_msg_id },
      h(
        "div",
        { class: "meta" },
        h("strong", null, "You"),
        h("span", { class: "receipt", "aria-label": label, title: label }, p.state === "failed" ? "!" : "…"),
        h("span", { class: "muted" }, label),
      ),
      p.body ? h("div", { class: "body" }, renderMessage(p.body)) : null,
      p.attachment_ids.length ? h("p", { class: "muted" }, `${p.attachment_ids.length} attachment(s)`) : null,
      p.state === "failed"
        ? h(
            "div",
            { class: "msg-actions" },
            h("button", { type: "button", class: "link", onclick: () => this.actions.retry(p) }, "Retry"),
            h("button", { type: "button", class: "link", onclick: () => this.actions.discard(p) }, "Discard"),
          )
        : null,
    );
  }
}
