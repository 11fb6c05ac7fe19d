// Sessions: every device signed in to this account, with how it signed in and when it was last used; end one,
// end all the others, or log out everywhere (this device too).

import * as accountApi from "../../account-api";
import { logout } from "../../chat-api";
import { h, replace } from "../../dom";
import { plural } from "../common";
import { describeDevice, orderSessions, signInMethod, timeAgo } from "./format";
import { confirmButton, type Outcome, outcome, section } from "./parts";
import type { Page, SettingsHost } from "./settings";

export function sessionsPage(host: SettingsHost): Page {
  const result = outcome();
  const list = h("ul", { class: "plain sessions", "aria-label": "Signed-in devices", "aria-busy": "true" });
  const load = async (): Promise<void> => {
    try {
      const found = orderSessions(await accountApi.sessions());
      replace(
        list,
        found.map((s) => sessionItem(s, host, result, load)),
      );
    } catch (error) {
      result.failed(error);
    } finally {
      list.removeAttribute("aria-busy");
    }
  };
  void load();
  const everywhere = confirmButton(
    "Log out everywhere",
    "Sign out every device, this one included?",
    "Yes, log out everywhere",
    result,
    async () => {
      await accountApi.logoutEverywhere();
      host.signedOut("You are signed out on every device.");
    },
  );
  const others = confirmButton(
    "End all other sessions",
    "Sign out every other device? This one stays signed in.",
    "Yes, end the others",
    result,
    async () => {
      const { sessions_ended } = await accountApi.endOtherSessions();
      result.done(`${plural(sessions_ended, "other session")} ended.`);
      await load();
    },
  );
  return {
    element: h(
      "div",
      null,
      section(
        "Where you are signed in",
        h("p", { class: "muted" }, "Each sign-in is a session. End any you do not recognise."),
        list,
        result.element,
      ),
      section("Everywhere", h("div", { class: "settings-buttons" }, others, everywhere)),
    ),
  };
}

function sessionItem(
  s: accountApi.Session,
  host: SettingsHost,
  result: Outcome,
  reload: () => Promise<void>,
): HTMLElement {
  const device = describeDevice(s.user_agent);
  const now = Date.now();
  const end = confirmButton(
    s.current ? "Sign out here" : "End session",
    s.current ? "Sign out of this device?" : `Sign out ${device}?`,
    s.current ? "Yes, sign out" : "Yes, end it",
    result,
    async () => {
      if (s.current) {
        // The ordinary sign-out: it ends this session and also clears the refresh cookie.
        await logout();
        host.signedOut("You signed out of this device.");
        return;
      }
      await accountApi.endSession(s.id);
      result.done(`Ended the session on ${device}.`);
      await reload();
    },
  );
  return h(
    "li",
    { class: `session${s.current ? " current" : ""}`, "data-session": s.id },
    h(
      "div",
      { class: "session-what" },
      h("strong", null, device),
      s.current ? h("span", { class: "this-device" }, "This device") : null,
      h(
        "small",
        { class: "muted", title: s.user_agent },
        `Last used ${timeAgo(s.last_used_at, now).toLowerCase()} · signed in ${timeAgo(s.created_at, now).toLowerCase()} with ${signInMethod(s.auth_method)} · ${s.ip}`,
      ),
    ),
    end,
  );
}
