// The message box of an open room: what is being replied to or edited, the files staged to send, Enter to send.

import { type Child, h, replace } from "../dom";
import { MAX_BODY_CHARS } from "../limits";
import { browserStorage, DraftStore } from "../state/drafts";
import type { Candidate } from "../state/mentions";
import type { Attachment, Message } from "../types";
import { errorText, type ViewContext } from "./common";
import { MentionPicker } from "./mention-picker";

export interface Draft {
  body: string;
  replyTo: string | null;
  attachmentIds: string[];
}

export interface ComposerActions {
  send(draft: Draft): void;
  saveEdit(target: Message, body: string): void;
  /** The text changed (not while editing): `hasText` says whether there is any. */
  typed(hasText: boolean): void;
  stopTyping(): void;
  upload(roomId: string, file: File): Promise<Attachment>;
  /** The room's members, for the @-autocomplete. */
  mentionCandidates(roomId: string): Candidate[];
}

export class Composer {
  readonly element: HTMLFormElement;
  private readonly box: HTMLTextAreaElement;
  private readonly bar = h("div", { class: "composer-bar" });
  private replyTo: Message | null = null;
  private editing: Message | null = null;
  private staged: Attachment[] = [];
  private readonly drafts: DraftStore;
  private readonly mentions: MentionPicker;

  constructor(
    private readonly ctx: ViewContext,
    private readonly actions: ComposerActions,
    private readonly roomId: string,
  ) {
    this.box = h("textarea", {
      id: "composer",
      rows: 1,
      placeholder: "Write a message",
      "aria-label": "Message",
      maxlength: MAX_BODY_CHARS,
    });
    this.drafts = new DraftStore(browserStorage(), ctx.me.id);
    this.box.value = this.drafts.get(roomId);
    this.mentions = new MentionPicker(
      this.box,
      ctx.me.id,
      () => actions.mentionCandidates(roomId),
      () => this.drafts.set(roomId, this.box.value),
    );
    this.box.addEventListener("keydown", (event) => {
      if (this.mentions.key(event)) {
        event.preventDefault();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      } else if (event.key === "Escape") {
        this.replyTo = null;
        if (this.editing) this.box.value = this.drafts.get(this.roomId);
        this.editing = null;
        this.renderBar();
      }
    });
    this.box.addEventListener("input", () => {
      if (this.editing) return;
      this.drafts.set(this.roomId, this.box.value);
      actions.typed(this.box.value.trim() !== "");
    });
    this.box.addEventListener("blur", () => actions.stopTyping());
    const fileInput = h("input", { type: "file", id: "attach", multiple: true, class: "sr-only" });
    fileInput.addEventListener("change", () => {
      const files = Array.from(fileInput.files ?? []);
      fileInput.value = "";
      void this.upload(files);
    });
    this.element = h(
      "form",
      { class: "composer", "aria-label": "Send a message" },
      this.bar,
      this.mentions.element,
      h(
        "div",
        { class: "composer-row" },
        h(
          "label",
          { for: "attach", class: "button icon", title: "Attach files" },
          h("span", { "aria-hidden": "true" }, "+"),
          h("span", { class: "sr-only" }, "Attach files"),
        ),
        fileInput,
        this.box,
        h("button", { type: "submit", class: "primary" }, "Send"),
      ),
    );
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.renderBar();
  }

  focus(): void {
    this.box.focus();
  }

  reply(m: Message): void {
    this.replyTo = m;
    this.renderBar();
    this.box.focus();
  }

  startEdit(m: Message): void {
    this.editing = m;
    this.replyTo = null;
    this.box.value = m.body;
    this.box.focus();
    this.renderBar();
  }

  private cancelReply(): void {
    this.replyTo = null;
    this.renderBar();
  }

  private unstage(file: Attachment): void {
    this.staged = this.staged.filter((x) => x !== file);
    this.renderBar();
  }

  private cancelEdit(): void {
    this.editing = null;
    this.box.value = this.drafts.get(this.roomId);
    this.renderBar();
  }

  private submit(): void {
    const body = this.box.value.trim();
    if (this.editing) {
      const target = this.editing;
      this.editing = null;
      this.box.value = this.drafts.get(this.roomId);
      this.renderBar();
      if (body && body !== target.body) this.actions.saveEdit(target, body);
      return;
    }
    if (!body && !this.staged.length) return;
    const draft: Draft = { body, replyTo: this.replyTo?.id ?? null, attachmentIds: this.staged.map((a) => a.id) };
    this.box.value = "";
    this.drafts.clear(this.roomId);
    this.replyTo = null;
    this.staged = [];
    this.renderBar();
    this.actions.send(draft);
  }

  private async upload(files: File[]): Promise<void> {
    for (const file of files) {
      try {
        this.staged.push(await this.actions.upload(this.roomId, file));
        this.ctx.announce(`${file.name} is ready to send.`);
      } catch (e) {
        this.ctx.announce(`Could not upload ${file.name}: ${errorText(e)}`, true);
      }
    }
    this.renderBar();
  }

  /** What is being edited or replied to, and the staged files, above the box. */
  renderBar(): void {
    const parts: Child[] = [];
    if (this.editing) {
      parts.push(
        h(
          "div",
          { class: "bar" },
          "Editing your message",
          h("button", { type: "button", class: "link", onclick: () => this.cancelEdit() }, "Cancel (Esc)"),
        ),
      );
    }
    if (this.replyTo) {
      const target = this.replyTo;
      parts.push(
        h(
          "div",
          { class: "bar" },
          `Replying to ${this.ctx.name(target.sender_id)}: `,
          h("q", null, target.body.slice(0, 80)),
          h("button", { type: "button", class: "link", onclick: () => this.cancelReply() }, "Cancel"),
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
              h(
                "button",
                { type: "button", class: "link", "aria-label": `Remove ${a.filename}`, onclick: () => this.unstage(a) },
                "✕",
              ),
            ),
          ),
        ),
      );
    }
    replace(this.bar, parts);
  }
}
