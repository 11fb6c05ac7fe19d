// Delete account: gone for good, so it asks twice — the username typed out, and the password (the server checks
// it; an account made through a provider sign-in has none).

import * as accountApi from "../../account-api";
import { field, h } from "../../dom";
import { form, outcome, section } from "./parts";
import type { Page, SettingsHost } from "./settings";

export function deletePage(host: SettingsHost): Page {
  const me = host.account();
  const result = outcome();
  const username = h("input", { name: "confirm_username", autocomplete: "off", required: true });
  const password = me.has_password
    ? h("input", { type: "password", name: "password", autocomplete: "current-password", required: true })
    : null;
  const remove = form(
    "Delete my account",
    result,
    async () => {
      if (username.value.trim().toLowerCase() !== me.username.toLowerCase()) {
        result.failed(`Type your username, ${me.username}, to confirm.`);
        username.focus();
        return;
      }
      await accountApi.deleteAccount(password ? password.value : null);
      host.signedOut("Your account is deleted.");
    },
    field("Type your username to confirm", username, `Your username is ${me.username}.`),
    password ? field("Your password", password) : null,
  );
  remove.querySelector("button[type=submit]")?.classList.replace("primary", "danger");
  return {
    element: section(
      "Delete your account",
      h(
        "p",
        null,
        "This signs you out everywhere, takes you out of every room (rooms you own pass to another member) and ",
        "deletes your account, your profile and your picture. It cannot be undone.",
      ),
      remove,
      result.element,
    ),
  };
}
