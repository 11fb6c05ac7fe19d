// The @-autocomplete of the message box: while the caret ends an `@word`, a list of the room's members that match
// (state/mentions.ts ranks them); arrows move, Enter or Tab picks, Esc closes, a click picks too. It follows the
// ARIA combobox pattern: the box keeps focus and points at the highlighted option.

import { h, replace, uid } from "../dom";
import { type Candidate, completeMention, mentionQuery, ROOM_MENTIONS, rankMentions } from "../state/mentions";

export class MentionPicker {
  readonly element: HTMLUListElement;
  private options: Candidate[] = [];
  private active = 0;
  private start = 0;

  constructor(
    private readonly box: HTMLTextAreaElement,
    private readonly me: string,
    private readonly candidates: () => Candidate[],
    /** The box's text changed by a pick (the draft and typing follow it). */
    private readonly picked: () => void,
  ) {
    this.element = h("ul", { class: "mention-picker", role: "listbox", id: uid("mentions"), "aria-label": "People" });
    this.element.hidden = true;
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", this.element.id);
    box.addEventListener("input", () => this.update());
    box.addEventListener("click", () => this.update());
    box.addEventListener("blur", () => this.close());
  }

  get open(): boolean {
    return !this.element.hidden;
  }

  /** A key in the box: true when the picker used it (the composer must not also act on it). */
  key(event: KeyboardEvent): boolean {
    if (!this.open || event.isComposing) return false;
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp": {
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.active = (this.active + step + this.options.length) % this.options.length;
        this.draw();
        return true;
      }
      case "Enter":
      case "Tab":
        this.pick(this.options[this.active]);
        return true;
      case "Escape":
        this.close();
        return true;
      default:
        return false;
    }
  }

  private update(): void {
    const caret = this.box.selectionStart ?? this.box.value.length;
    const found = this.box.selectionStart === this.box.selectionEnd ? mentionQuery(this.box.value, caret) : null;
    if (!found) {
      this.close();
      return;
    }
    const q = found.query.toLowerCase();
    const everyone = q
      ? ROOM_MENTIONS.filter((word) => word.startsWith(q)).map((word) => ({
          userId: `@${word}`,
          username: word,
          displayName: "everyone in the room",
        }))
      : [];
    this.options = [...rankMentions(found.query, this.candidates(), this.me), ...everyone];
    this.start = found.start;
    this.active = 0;
    if (!this.options.length) this.close();
    else this.draw();
  }

  private draw(): void {
    this.element.hidden = false;
    this.box.setAttribute("aria-expanded", "true");
    replace(
      this.element,
      this.options.map((c, i) => {
        const option = h(
          "li",
          { role: "option", id: `${this.element.id}-${i}`, "aria-selected": String(i === this.active) },
          h("strong", null, `@${c.username}`),
          c.displayName && c.displayName !== c.username ? h("span", { class: "muted" }, ` ${c.displayName}`) : null,
        );
        // mousedown, not click: the box keeps its focus (a blur would close the list first).
        option.addEventListener("mousedown", (event) => {
          event.preventDefault();
          this.pick(c);
        });
        return option;
      }),
    );
    this.box.setAttribute("aria-activedescendant", `${this.element.id}-${this.active}`);
  }

  private pick(c: Candidate): void {
    const caret = this.box.selectionStart ?? this.box.value.length;
    const done = completeMention(this.box.value, caret, this.start, c.username);
    this.box.value = done.text;
    this.box.setSelectionRange(done.caret, done.caret);
    this.close();
    this.picked();
  }

  close(): void {
    this.element.hidden = true;
    this.box.setAttribute("aria-expanded", "false");
    this.box.removeAttribute("aria-activedescendant");
  }
}
