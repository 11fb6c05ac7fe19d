// The connection status bar, and the live region that tells screen readers what happened (errors also as a toast).

import type { ConnectionState } from "../connection";
import { h, replace } from "../dom";

const STATE_TEXT: Record<ConnectionState, string> = {
  connecting: "Connecting…",
  online: "Connected",
  reconnecting: "Reconnecting… messages you send will go out when the connection is back",
  offline: "Offline — messages you send will go out when you are back online",
};

export class StatusBar {
  readonly element = h("div", { class: "conn", role: "status", "aria-live": "polite" });

  show(state: ConnectionState, detail?: string): void {
    this.element.dataset.state = state;
    replace(
      this.element,
      h("span", { class: "dot", "aria-hidden": "true" }),
      STATE_TEXT[state] + (detail ? ` (${detail})` : ""),
    );
  }
}

export class Announcer {
  readonly element = h("div", { class: "sr-only", "aria-live": "polite" });

  say(text: string, error = false): void {
    this.element.textContent = text;
    if (!error) return;
    const toast = h("div", { class: "toast", role: "alert" }, text);
    document.body.appendChild(toast);
    setTimeout(() => toast.remove(), 5000);
  }
}
