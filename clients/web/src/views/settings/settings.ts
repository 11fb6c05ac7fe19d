// The Settings dialog: Profile, Security, Sessions and Delete account, one page at a time beside a list of them.
// A native modal <dialog> (focus stays inside, Esc closes). Each page reads what it shows when it opens, and
// every failure shows the server's own message under the form that caused it.

import type { Account } from "../../account-api";
import { h, replace } from "../../dom";
import { deletePage } from "./delete";
import { profilePage } from "./profile";
import { securityPage } from "./security";
import { sessionsPage } from "./sessions";

/** What the pages may ask of the app. */
export interface SettingsHost {
  account(): Account;
  /** The server answered a changed account (name, picture, two-factor state). */
  changed(account: Account): void;
  /** The session is over; the app leaves for the sign-in page with `notice`. */
  signedOut(notice: string): void;
}

/** A page: its content, and what to release when the dialog closes or another page opens. */
export interface Page {
  element: HTMLElement;
  dispose?(): void;
}

const PAGES: { id: string; title: string; build: (host: SettingsHost) => Page }[] = [
  { id: "profile", title: "Profile", build: profilePage },
  { id: "security", title: "Security", build: securityPage },
  { id: "sessions", title: "Sessions", build: sessionsPage },
  { id: "delete", title: "Delete account", build: deletePage },
];

export function openSettings(host: SettingsHost, first = "profile"): HTMLDialogElement {
  const panel = h("div", { class: "settings-panel", role: "region" });
  const tabs = h("ul", { class: "settings-nav plain" });
  let open: Page | null = null;
  const show = (id: string): void => {
    const page = PAGES.find((p) => p.id === id) ?? PAGES[0];
    open?.dispose?.();
    open = page.build(host);
    panel.setAttribute("aria-label", page.title);
    replace(panel, h("h2", { class: "settings-title", tabindex: "-1" }, page.title), open.element);
    for (const button of tabs.querySelectorAll("button")) {
      const current = button.dataset.page === page.id;
      button.classList.toggle("active", current);
      if (current) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
  };
  replace(
    tabs,
    PAGES.map((page) =>
      h(
        "li",
        null,
        h(
          "button",
          { type: "button", class: "settings-tab", "data-page": page.id, onclick: () => show(page.id) },
          page.title,
        ),
      ),
    ),
  );
  const box = h(
    "dialog",
    { class: "settings", "aria-labelledby": "settings-heading" },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: "settings-heading" }, "Settings"),
      h("button", { type: "button", class: "link", "aria-label": "Close settings", onclick: () => box.close() }, "✕"),
    ),
    h("div", { class: "settings-body" }, h("nav", { "aria-label": "Settings pages" }, tabs), panel),
  );
  box.addEventListener("close", () => {
    open?.dispose?.();
    box.remove();
  });
  document.body.appendChild(box);
  box.showModal();
  show(first);
  return box;
}
