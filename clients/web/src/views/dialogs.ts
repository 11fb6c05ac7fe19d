// The modal dialogs: the room directory (join, with a password where needed), a new room, a direct message, and
// a room's members with moderation (kick, ban, invite).

import * as chatApi from "../chat-api";
import { type Child, field, h, replace } from "../dom";
import type { Member, Presence, Room } from "../types";
import type { UserDirectory } from "../users";
import { errorText, plural, type ViewContext } from "./common";

export interface DialogHost extends ViewContext {
  readonly users: UserDirectory;
  isMember(roomId: string): boolean;
  /** Joined, created or opened a room here: add it, subscribe and open it. */
  joined(roomId: string): Promise<void>;
  /** The member list, read again (and kept for the room). */
  members(roomId: string): Promise<Member[]>;
  presence(roomId: string): Map<string, Presence>;
}

/** A native modal dialog (focus kept inside, Esc closes), removed from the page once closed. */
export function dialog(title: string, ...content: Child[]): HTMLDialogElement {
  const heading = h("h2", { id: "dialog-title" }, title);
  const box = h(
    "dialog",
    { "aria-labelledby": "dialog-title" },
    h(
      "div",
      { class: "dialog-head" },
      heading,
      h("button", { type: "button", class: "link", "aria-label": "Close", onclick: () => box.close() }, "✕"),
    ),
    content,
  );
  box.addEventListener("close", () => box.remove());
  document.body.appendChild(box);
  box.showModal();
  return box;
}

function errorLine(): { element: HTMLElement; show: (e: unknown) => void } {
  const element = h("p", { class: "error", role: "alert", hidden: true });
  return {
    element,
    show: (e: unknown) => {
      element.hidden = false;
      element.textContent = errorText(e);
    },
  };
}

export function directoryDialog(host: DialogHost): void {
  const search = h("input", { type: "search", name: "q", autocomplete: "off", placeholder: "Room name" });
  const results = h("ul", { class: "plain directory", "aria-live": "polite" });
  const error = errorLine();
  let timer: number | undefined;
  const item = (room: Room): HTMLElement => {
    const member = host.isMember(room.id);
    const password = room.password_protected
      ? h("input", {
          type: "password",
          "aria-label": `Password for ${room.name}`,
          placeholder: "Room password",
          autocomplete: "off",
        })
      : null;
    // A form per room, so Enter in the password field joins.
    const form = h(
      "form",
      { class: "dir-item" },
      h(
        "div",
        null,
        h("strong", null, room.name ?? "Unnamed"),
        room.password_protected ? " 🔒" : "",
        h("br"),
        h("small", { class: "muted" }, `${plural(room.member_count, "member")}${room.topic ? ` · ${room.topic}` : ""}`),
      ),
      member ? null : password,
      h("button", { type: "submit", class: "small" }, member ? "Open" : "Join"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!member && password && !password.value) {
        // Asked for, never sent empty: the server would count an empty password as a wrong guess.
        error.show("Enter the room's password.");
        password.focus();
        return;
      }
      void (async () => {
        try {
          if (!member) await chatApi.join(room.id, password ? password.value : null);
          box.close();
          await host.joined(room.id);
        } catch (e) {
          error.show(e);
        }
      })();
    });
    return h("li", null, form);
  };
  const load = async () => {
    try {
      const page = await chatApi.directory(search.value.trim());
      if (!page.items.length) replace(results, h("li", { class: "muted" }, "No rooms match."));
      else replace(results, page.items.map(item));
    } catch (e) {
      error.show(e);
    }
  };
  search.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void load(), 250);
  });
  const box = dialog("Public rooms", field("Search rooms", search), error.element, results);
  void load();
}

export function createDialog(host: DialogHost): void {
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
  const error = errorLine();
  const form = h(
    "form",
    null,
    field("Name", name),
    field("Topic (optional)", topic),
    field("Kind", kind),
    passwordField,
    error.element,
    h("button", { type: "submit", class: "primary" }, "Create room"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void (async () => {
      try {
        const body: Record<string, string> = { kind: kind.value, name: name.value.trim() };
        if (topic.value.trim()) body.topic = topic.value.trim();
        if (kind.value === "password") body.password = password.value;
        const room = await chatApi.createRoom(body);
        box.close();
        await host.joined(room.id);
      } catch (e) {
        error.show(e);
      }
    })();
  });
  const box = dialog("New room", form);
  name.focus();
}

/** Opens (or finds) the direct room; errors reach the caller, which closes its dialog only on success. */
async function openDirect(host: DialogHost, userId: string, box: HTMLDialogElement): Promise<void> {
  const room = await chatApi.openDirect(userId);
  box.close();
  await host.joined(room.id);
}

export function directDialog(host: DialogHost): void {
  const user = h("input", {
    type: "text",
    name: "username",
    required: true,
    autocomplete: "off",
    maxlength: 64,
    spellcheck: "false",
  });
  const error = errorLine();
  const contacts = host.users
    .known()
    .filter((u) => u.user_id !== host.me.id)
    .map((u) => [u.username, u.display_name || u.username] as const)
    .sort((a, b) => a[1].localeCompare(b[1]))
    .slice(0, 30);
  const form = h(
    "form",
    null,
    field("Username", user, "Their username (any case), or pick someone below."),
    error.element,
    h("button", { type: "submit", class: "primary" }, "Open conversation"),
    contacts.length
      ? h(
          "ul",
          { class: "plain", "aria-label": "People you know" },
          contacts.map(([username, name]) =>
            h("li", null, h("button", { type: "button", class: "link", onclick: () => pick(username) }, name)),
          ),
        )
      : null,
  );
  function pick(username: string): void {
    user.value = username;
    form.requestSubmit();
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void host.users
      .resolve(user.value)
      .then((found) => openDirect(host, found.user_id, box))
      .catch(error.show);
  });
  const box = dialog("Direct message", form);
  user.focus();
}

const RANK: Record<string, number> = { owner: 3, admin: 2, member: 1 };

export async function membersDialog(host: DialogHost, room: Room): Promise<void> {
  const error = errorLine();
  const list = h("ul", { class: "plain members" });
  const myRank = RANK[room.my_role ?? ""] ?? 0;
  const me = host.me.id;
  const row = (m: Member): HTMLElement => {
    const status = m.user_id === me ? "online" : (host.presence(room.id).get(m.user_id) ?? "offline");
    const canModerate = m.user_id !== me && myRank >= 2 && myRank > (RANK[m.role] ?? 0) && room.kind !== "direct";
    const act = (label: string, work: () => Promise<unknown>) =>
      h(
        "button",
        {
          type: "button",
          class: "small",
          onclick: () => {
            if (window.confirm(`${label} ${host.name(m.user_id)}?`)) void work().then(render).catch(error.show);
          },
        },
        label,
      );
    const username = host.users.get(m.user_id)?.username;
    return h(
      "li",
      { class: "member" },
      h("span", { class: `presence ${status}`, role: "img", "aria-label": status, title: status }),
      h(
        "span",
        { class: "grow" },
        m.user_id === me ? `${host.name(m.user_id)} (you)` : host.name(m.user_id),
        h("small", { class: "muted" }, ` ${m.role}${username ? ` · @${username}` : ""}`),
      ),
      m.user_id !== me
        ? h(
            "button",
            { type: "button", class: "small", onclick: () => void openDirect(host, m.user_id, box).catch(error.show) },
            "Message",
          )
        : null,
      canModerate ? act("Kick", () => chatApi.kick(room.id, m.user_id)) : null,
      canModerate && room.kind !== "group_dm" ? act("Ban", () => chatApi.ban(room.id, m.user_id)) : null,
    );
  };
  const render = async () => replace(list, (await host.members(room.id)).map(row));
  const invite = h("input", {
    type: "text",
    name: "invite",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: 64,
    required: true,
  });
  // Said on screen too (not only to screen readers): the inviter sees that the invitation went out.
  const inviteSent = h("p", { class: "invite-sent", role: "status", hidden: true });
  const inviteForm = h(
    "form",
    { class: "inline" },
    field("Invite by username", invite),
    h("button", { type: "submit" }, "Invite"),
  );
  inviteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    inviteSent.hidden = true;
    void host.users
      .resolve(invite.value)
      .then(async (found) => {
        await chatApi.invite(room.id, found.user_id);
        invite.value = "";
        const said = `Invitation sent to ${found.display_name || found.username}.`;
        inviteSent.textContent = `✓ ${said}`;
        inviteSent.hidden = false;
        host.announce(said);
      })
      .catch(error.show);
  });
  // Ban someone who is not (or no longer) a member, so that they cannot join.
  const banned = h("input", {
    type: "text",
    name: "ban",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: 64,
    required: true,
  });
  const banForm = h(
    "form",
    { class: "inline" },
    field("Ban by username", banned),
    h("button", { type: "submit" }, "Ban"),
  );
  banForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void host.users
      .resolve(banned.value)
      .then(async (found) => {
        const who = found.display_name || found.username;
        if (!window.confirm(`Ban ${who}?`)) return;
        await chatApi.ban(room.id, found.user_id);
        banned.value = "";
        host.announce(`${who} is banned.`);
        await render();
      })
      .catch(error.show);
  });
  const canInvite = room.kind === "group_dm" || myRank >= 2;
  const canBan = myRank >= 2 && room.kind !== "direct" && room.kind !== "group_dm";
  const box = dialog(
    `Members of ${host.roomName(room)}`,
    error.element,
    list,
    canInvite && room.kind !== "direct" ? inviteForm : null,
    canInvite && room.kind !== "direct" ? inviteSent : null,
    canBan ? banForm : null,
  );
  await render().catch(error.show);
}
