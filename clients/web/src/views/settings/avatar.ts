// A person's picture: their uploaded avatar, else the first letter of their name on a coloured disc.

import type { Account } from "../../account-api";
import { h } from "../../dom";

export function avatar(account: Account, size: "small" | "large"): HTMLElement {
  const name = account.display_name || account.username;
  if (account.avatar_url) {
    // Decorative next to the name; alone (large, on the profile page) it says whose it is.
    return h("img", {
      class: `avatar ${size}`,
      src: account.avatar_url,
      alt: size === "large" ? `Your picture (${name})` : "",
      width: size === "large" ? 96 : 36,
      height: size === "large" ? 96 : 36,
    });
  }
  return h("span", { class: `avatar initial ${size}`, "aria-hidden": "true" }, Array.from(name)[0]?.toUpperCase());
}
