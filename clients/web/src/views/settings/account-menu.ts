// Who I am, at the top of the room list: my picture, display name and @username, with Settings and Sign out.
// It re-reads my account on start (the boot profile has no picture) and after every change made in Settings.

import { type Account, account as readAccount } from "../../account-api";
import { h, replace } from "../../dom";
import type { Profile } from "../../types";
import { avatar } from "./avatar";
import "./settings.css";
import { openSettings, type SettingsHost } from "./settings";

export interface AccountActions {
  signOut(): void;
  /** The session is over (ended here, everywhere, or the account deleted): leave without calling the server. */
  signedOut(notice: string): void;
  /** My name or picture changed: show it wherever I am named. */
  changed(account: Account): void;
}

export class AccountMenu {
  readonly element = h("header", { class: "me account" });
  private current: Account;
  private dialog: HTMLDialogElement | null = null;

  constructor(
    me: Profile,
    private readonly actions: AccountActions,
  ) {
    this.current = {
      ...me,
      display_name: me.display_name ?? me.username,
      avatar_url: null,
      totp_enabled: false,
      has_password: true,
      created_at: "",
    };
    this.render();
  }

  /** Signed out (from here or elsewhere): an open Settings dialog goes with the app. */
  dispose(): void {
    this.dialog?.close();
  }

  /** Read my account (picture, two-factor state) from the server. */
  async load(): Promise<void> {
    this.update(await readAccount());
  }

  private update(next: Account): void {
    this.current = next;
    this.render();
    this.actions.changed(next);
  }

  private render(): void {
    const me = this.current;
    replace(
      this.element,
      avatar(me, "small"),
      h(
        "div",
        { class: "who" },
        h("strong", { class: "display-name" }, me.display_name || me.username),
        h("small", { class: "muted" }, `@${me.username}`),
      ),
      h(
        "div",
        { class: "account-buttons" },
        h("button", { type: "button", class: "small", onclick: () => this.open() }, "Settings"),
        h("button", { type: "button", class: "small", onclick: () => this.actions.signOut() }, "Sign out"),
      ),
    );
  }

  private open(): void {
    const host: SettingsHost = {
      account: () => this.current,
      changed: (next) => this.update(next),
      signedOut: (notice) => this.actions.signedOut(notice),
    };
    this.dialog = openSettings(host);
    this.dialog.addEventListener("close", () => {
      this.dialog = null;
    });
  }
}
