// Security: change the password, and two-factor sign-in with an authenticator app — set up (QR code from the
// server, or the key typed by hand), confirm with a code, the recovery codes shown once, new recovery codes, and
// turning it off with a code or the password.

import * as accountApi from "../../account-api";
import { field, h, replace, uid } from "../../dom";
import { plural } from "../common";
import { groupSecret, recoveryCodesText, sixDigits } from "./format";
import { busy, form, type Outcome, outcome, section } from "./parts";
import type { Page, SettingsHost } from "./settings";

export function securityPage(host: SettingsHost): Page {
  const twoFactor = new TwoFactor(host);
  return {
    element: h("div", null, host.account().has_password ? passwordBlock() : null, twoFactor.element),
    dispose: () => twoFactor.dispose(),
  };
}

function passwordInput(name: string, autocomplete: string): HTMLInputElement {
  return h("input", { type: "password", name, autocomplete, required: true, maxlength: 1024 });
}

function passwordBlock(): HTMLElement {
  const result = outcome();
  const current = passwordInput("current_password", "current-password");
  const next = passwordInput("new_password", "new-password");
  const again = passwordInput("new_password_again", "new-password");
  const change = form(
    "Change password",
    result,
    async () => {
      if (next.value !== again.value) {
        result.failed("The new passwords differ. Type the same new password twice.");
        again.focus();
        return;
      }
      const { sessions_ended } = await accountApi.changePassword(current.value, next.value);
      change.reset();
      result.done(
        sessions_ended
          ? `Password changed. ${plural(sessions_ended, "other session")} signed out.`
          : "Password changed.",
      );
    },
    field("Current password", current),
    field("New password", next, "8 to 128 characters. Your other sessions will be signed out."),
    field("New password again", again),
  );
  return section("Password", change, result.element);
}

/** A code field for the authenticator app's six digits. */
function codeInput(label: string): HTMLInputElement {
  return h("input", {
    name: "code",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    maxlength: 12,
    required: true,
    "aria-label": label,
  });
}

/** The code as the server wants it, or a message (never sent: the server would count it as a wrong guess). */
function typedCode(input: HTMLInputElement, result: Outcome): string | null {
  const code = sixDigits(input.value);
  if (code === null) {
    result.failed("Enter the 6-digit code your authenticator app shows.");
    input.focus();
  }
  return code;
}

class TwoFactor {
  readonly element: HTMLElement;
  private readonly body = h("div", { class: "two-factor" });
  private readonly urls: string[] = [];

  constructor(private readonly host: SettingsHost) {
    this.element = section("Two-factor sign-in", this.body);
    void this.showStatus();
  }

  dispose(): void {
    for (const url of this.urls.splice(0)) URL.revokeObjectURL(url);
  }

  private async showStatus(notice?: string): Promise<void> {
    const result = outcome();
    if (notice) result.done(notice);
    let status: accountApi.TotpStatus;
    try {
      status = await accountApi.totpStatus();
      // Turned on or off elsewhere (another device): the header's account follows.
      if (this.host.account().totp_enabled !== status.enabled) this.host.changed(await accountApi.account());
    } catch (error) {
      result.failed(error);
      replace(this.body, result.element);
      return;
    }
    if (!status.enabled) {
      const start = h("button", { type: "button", class: "primary" }, "Set up two-factor sign-in");
      start.addEventListener("click", () =>
        busy(start, result, async () => this.showSetup(await accountApi.totpSetup())),
      );
      replace(
        this.body,
        h("p", { class: "totp-state" }, "Two-factor sign-in is off."),
        h(
          "p",
          { class: "muted" },
          "With it on, signing in also asks for a code from an authenticator app on your phone.",
        ),
        start,
        result.element,
      );
      return;
    }
    replace(
      this.body,
      h("p", { class: "totp-state on" }, "Two-factor sign-in is on."),
      h("p", { class: "muted" }, `${plural(status.recovery_codes_left, "recovery code")} left.`),
      result.element,
      this.newCodesForm(),
      this.disableForm(),
    );
  }

  /** The new secret: its QR code (the server's SVG, shown as an image so nothing in it can run), the key in
   * groups of four for typing by hand, and the first code to turn it on. */
  private showSetup(setup: accountApi.TotpSetup): void {
    const result = outcome();
    const url = URL.createObjectURL(new Blob([setup.qr_svg], { type: "image/svg+xml" }));
    this.urls.push(url);
    const code = codeInput("Code from the app");
    const cancel = h("button", { type: "button", onclick: () => void this.showStatus() }, "Cancel");
    const confirm = form(
      "Turn on",
      result,
      async () => {
        const typed = typedCode(code, result);
        if (typed === null) return;
        const { recovery_codes } = await accountApi.totpConfirm(typed);
        this.host.changed(await accountApi.account());
        this.showRecoveryCodes(recovery_codes, "Two-factor sign-in is on.");
      },
      field("Code from the app", code, "The 6 digits the app shows for this account."),
    );
    confirm.querySelector(".settings-buttons")?.append(cancel);
    replace(
      this.body,
      h(
        "ol",
        { class: "steps" },
        h("li", null, "Open your authenticator app (Google Authenticator, Authy, 1Password, …) and add an account."),
        h(
          "li",
          null,
          "Scan this QR code:",
          h("img", {
            class: "qr",
            src: url,
            alt: "QR code for your authenticator app",
            width: 200,
            height: 200,
          }),
          h(
            "details",
            null,
            h("summary", null, "Can't scan it? Type this key instead"),
            h("code", { class: "secret", "aria-label": "Setup key" }, groupSecret(setup.secret)),
            h("small", { class: "hint" }, "Time-based, 6 digits, every 30 seconds."),
          ),
        ),
        h("li", null, "Enter the code the app shows:", confirm),
      ),
      result.element,
    );
    code.focus();
  }

  /** Shown once: the server keeps only their hashes. */
  private showRecoveryCodes(codes: string[], heading: string): void {
    const result = outcome();
    const text = recoveryCodesText(this.host.account().username, codes);
    const copy = h("button", { type: "button" }, "Copy");
    copy.addEventListener("click", () =>
      busy(copy, result, async () => {
        await navigator.clipboard.writeText(text);
        result.done("Copied.");
      }),
    );
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    this.urls.push(url);
    const done = h(
      "button",
      { type: "button", class: "primary", onclick: () => void this.showStatus() },
      "I have saved my codes",
    );
    replace(
      this.body,
      h("p", { class: "totp-state on" }, heading),
      h(
        "p",
        null,
        h("strong", null, "Save these recovery codes now. "),
        "Each one signs you in once if you lose your phone. They are not shown again.",
      ),
      h(
        "ol",
        { class: "recovery-codes", "aria-label": "Recovery codes" },
        codes.map((c) => h("li", null, h("code", null, c))),
      ),
      h(
        "div",
        { class: "settings-buttons" },
        copy,
        h("a", { class: "button", href: url, download: "chat-recovery-codes.txt" }, "Download"),
        done,
      ),
      result.element,
    );
    done.focus();
  }

  private newCodesForm(): HTMLElement {
    const result = outcome();
    const code = codeInput("Code for new recovery codes");
    return h(
      "div",
      { class: "settings-sub" },
      h("h4", null, "New recovery codes"),
      h("p", { class: "muted" }, "Replaces every recovery code you have. Needs a code from the app."),
      form(
        "Get new recovery codes",
        result,
        async () => {
          const typed = typedCode(code, result);
          if (typed === null) return;
          const { recovery_codes } = await accountApi.newRecoveryCodes(typed);
          this.showRecoveryCodes(recovery_codes, "New recovery codes: the old ones no longer work.");
        },
        field("Code from the app", code),
      ),
      result.element,
    );
  }

  private disableForm(): HTMLElement {
    const result = outcome();
    const hasPassword = this.host.account().has_password;
    const proof = h("input", {
      name: "proof",
      type: hasPassword ? "password" : "text",
      autocomplete: hasPassword ? "current-password" : "one-time-code",
      required: true,
    });
    const withCode = h("input", { type: "checkbox", name: "with_code", checked: !hasPassword, disabled: !hasPassword });
    proof.id = uid("proof");
    const label = h("label", { for: proof.id });
    const relabel = (): void => {
      proof.value = "";
      proof.type = withCode.checked ? "text" : "password";
      proof.inputMode = withCode.checked ? "numeric" : "text";
      label.textContent = withCode.checked ? "Code from the app" : "Your password";
    };
    withCode.addEventListener("change", relabel);
    relabel();
    return h(
      "div",
      { class: "settings-sub" },
      h("h4", null, "Turn off"),
      form(
        "Turn off two-factor sign-in",
        result,
        async () => {
          if (withCode.checked) {
            const typed = typedCode(proof, result);
            if (typed === null) return;
            await accountApi.totpDisable({ code: typed });
          } else {
            await accountApi.totpDisable({ password: proof.value });
          }
          this.host.changed(await accountApi.account());
          await this.showStatus("Two-factor sign-in is off.");
        },
        h("label", { class: "check" }, withCode, " Use a code from the app instead of my password"),
        h("div", { class: "field" }, label, proof),
      ),
      result.element,
    );
  }
}
