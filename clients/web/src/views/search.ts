// Message search: a dialog with the words to look for and whether to look in the open room only or in all my
// rooms; the results newest first (each body through the safe Markdown renderer), "More results" for the next
// page, and a result opens its room at that message.

import { field, h, replace } from "../dom";
import { renderMessage } from "../markdown";
import { MAX_QUERY_CHARS, searchMessages } from "../search-api";
import type { Message, Room } from "../types";
import { errorText, time, type ViewContext } from "./common";
import { dialog } from "./dialogs";
import "./messages.css";

export interface SearchHost extends ViewContext {
  /** The room a result is in, when I am a member (for its name). */
  room(roomId: string): Room | undefined;
  /** Open the room at this message. */
  jump(roomId: string, seq: number): void;
}

export function searchDialog(host: SearchHost, current: Room | null): void {
  const input = h("input", {
    type: "search",
    name: "q",
    autocomplete: "off",
    maxlength: MAX_QUERY_CHARS,
    required: true,
    placeholder: "Words in the message",
  });
  const here = current ? h("input", { type: "checkbox", id: "search-here", checked: true }) : null;
  const status = h("p", { class: "muted", role: "status" });
  const results = h("ol", { class: "plain search-results", "aria-label": "Search results" });
  const more = h("button", { type: "button", class: "small", hidden: true }, "More results");
  let cursor: string | null = null;
  let query = "";
  let scope: string | null = null;

  const openResult = (m: Message): void => {
    box.close();
    host.jump(m.room_id, m.seq);
  };
  const result = (m: Message): HTMLElement => {
    const room = host.room(m.room_id);
    const open = h("button", { type: "button", class: "link", onclick: () => openResult(m) }, "Open");
    return h(
      "li",
      { class: "search-result", "data-seq": m.seq },
      h(
        "div",
        { class: "meta" },
        h("strong", null, m.sender_id === host.me.id ? "You" : host.name(m.sender_id)),
        room && !scope
          ? h("span", { class: "muted" }, "in ", room.kind === "direct" ? "@ " : "# ", host.roomName(room))
          : null,
        h("time", { datetime: m.created_at }, time(m.created_at)),
        open,
      ),
      h("div", { class: "body" }, renderMessage(m.body)),
    );
  };

  const load = async (first: boolean): Promise<void> => {
    try {
      status.textContent = "Searching…";
      const page = await searchMessages(query, scope, first ? null : cursor);
      if (first) replace(results);
      for (const m of page.items) results.appendChild(result(m));
      cursor = page.next_cursor;
      more.hidden = cursor === null;
      const shown = results.children.length;
      status.textContent =
        shown === 0
          ? "No messages match."
          : `${shown} message${shown === 1 ? "" : "s"} found${cursor ? ", more below" : ""}.`;
    } catch (e) {
      status.textContent = `Search failed: ${errorText(e)}`;
    }
  };

  const form = h(
    "form",
    { class: "search-form", role: "search" },
    field("Search messages", input),
    here && current ? h("label", { class: "check" }, here, ` Only in ${host.roomName(current)}`) : null,
    h("button", { type: "submit", class: "primary" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    query = input.value.trim();
    if (!query) return;
    scope = here?.checked && current ? current.id : null;
    void load(true);
  });
  more.addEventListener("click", () => void load(false));
  const box = dialog("Search messages", form, status, results, more);
  box.classList.add("search-dialog");
  input.focus();
}
