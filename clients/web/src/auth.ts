// Sign up, verify the email code, sign in (password, then the TOTP step when asked), Google / OIDC sign-in.

import { ApiError, api, type MfaRequired, setTokens, type Tokens } from "./api";
import { field, h, replace } from "./dom";

interface AuthInfo {
  oidc_enabled: boolean;
  oidc_provider: string | null;
}

type Done = () => void;

function errorBox(): HTMLElement {
  return h("p", { class: "error", role: "alert", hidden: true });
}

function showError(box: HTMLElement, error: unknown): void {
  box.hidden = false;
  if (error instanceof ApiError) {
    const wait = error.retryAfter ? ` Try again in ${Math.ceil(error.retryAfter)} s.` : "";
    box.textContent = `${error.message}${wait}`;
  } else {
    box.textContent = String(error);
  }
}

function busy<T>(form: HTMLFormElement, work: () => Promise<T>): Promise<T> {
  const buttons = Array.from(form.querySelectorAll("button"));
  const disable = (disabled: boolean) => {
    for (const button of buttons) button.disabled = disabled;
  };
  disable(true);
  form.setAttribute("aria-busy", "true");
  return work().finally(() => {
    disable(false);
    form.removeAttribute("aria-busy");
  });
}

function input(name: string, type: string, autocomplete: string, extra: Record<string, string> = {}): HTMLInputElement {
  return h("input", { name, type, autocomplete, required: true, ...extra });
}

/** On a dev-mode server (where `/dev/mailbox` exists) the code is also in its terminal and on its mailbox page,
 * which is where someone trying the product without a mail server finds it. Empty, and filled only once the server
 * says it is in dev mode. */
function devModeHint(address: string): HTMLElement {
  const hint = h("div", { class: "dev-hint", hidden: true });
  void fetch("/dev/mailbox", { cache: "no-store", credentials: "omit" })
    .then((response) => {
      if (!response.ok) return;
      replace(
        hint,
        h(
          "p",
          null,
          "This server runs in dev mode: the code is also printed in the terminal running ",
          h("code", null, "make run"),
          ", on a line like ",
          h("code", null, `code for ${address || "alice@example.com"}: 123456`),
          ", and listed on the ",
          h("a", { href: "/dev/mailbox", target: "_blank", rel: "noopener noreferrer" }, "dev mailbox page"),
          ".",
        ),
      );
      hint.hidden = false;
    })
    .catch(() => undefined); // no hint: the email it is
  return hint;
}

export class AuthScreen {
  private info: AuthInfo = { oidc_enabled: false, oidc_provider: null };

  constructor(
    private readonly root: HTMLElement,
    private readonly onSignedIn: Done,
  ) {}

  async start(notice?: string): Promise<void> {
    try {
      this.info = await api<AuthInfo>("GET", "/api/auth/");
    } catch {
      // the sign-in form works without it; only the provider button depends on it
    }
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (fragment.size) history.replaceState(null, "", location.pathname + location.search);
    const mfaToken = fragment.get("mfa_token");
    if (mfaToken) return this.totp(mfaToken);
    const linkToken = fragment.get("link_required");
    if (linkToken) return this.link(linkToken);
    const oidcError = fragment.get("oidc_error");
    this.signIn(
      oidcError ? `Sign-in with ${this.info.oidc_provider ?? "the provider"} failed (${oidcError}).` : notice,
    );
  }

  private screen(title: string, ...content: (HTMLElement | null)[]): void {
    const heading = h("h1", { tabindex: "-1" }, title);
    replace(
      this.root,
      h("main", { class: "auth" }, h("div", { class: "card" }, h("p", { class: "brand" }, "Chat"), heading, content)),
    );
    heading.focus();
  }

  private async finish(result: Tokens | MfaRequired): Promise<void> {
    if ("mfa_required" in result) return this.totp(result.mfa_token);
    setTokens(result);
    this.onSignedIn();
  }

  signIn(notice?: string): void {
    const identifier = input("identifier", "text", "username", { autocapitalize: "none", spellcheck: "false" });
    const password = input("password", "password", "current-password");
    const error = errorBox();
    const form = h(
      "form",
      { "aria-label": "Sign in" },
      notice ? h("p", { class: "notice", role: "status" }, notice) : null,
      field("Username or email", identifier),
      field("Password", password),
      error,
      h("button", { type: "submit", class: "primary" }, "Sign in"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(form, async () => {
        try {
          const result = await api<Tokens | MfaRequired>("POST", "/api/auth/login", {
            body: { identifier: identifier.value.trim(), password: password.value },
          });
          await this.finish(result);
        } catch (e) {
          showError(error, e);
        }
      });
    });
    const provider = this.info.oidc_enabled
      ? h(
          "a",
          { class: "button oidc", href: `/api/auth/oidc/start?return_to=${encodeURIComponent("/")}` },
          `Sign in with ${this.info.oidc_provider ?? "Google"}`,
        )
      : null;
    this.screen(
      "Sign in",
      form,
      provider,
      h(
        "p",
        { class: "switch" },
        "New here? ",
        h("button", { type: "button", class: "link", onclick: () => this.signUp() }, "Create an account"),
        " · ",
        h("button", { type: "button", class: "link", onclick: () => this.verify("") }, "I have a verification code"),
      ),
    );
  }

  signUp(): void {
    const email = input("email", "email", "email");
    const username = input("username", "text", "username", {
      autocapitalize: "none",
      spellcheck: "false",
      minlength: "3",
      maxlength: "32",
    });
    const password = input("password", "password", "new-password", { minlength: "8", maxlength: "128" });
    const error = errorBox();
    const form = h(
      "form",
      { "aria-label": "Create an account" },
      field("Email", email, "We email a 6-digit code to this address to confirm it."),
      field("Username", username, "3–32 letters, digits, dots, dashes or underscores; shown to others."),
      field("Password", password, "At least 8 characters."),
      error,
      h("button", { type: "submit", class: "primary" }, "Create account"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(form, async () => {
        try {
          await api("POST", "/api/auth/register", {
            body: { email: email.value.trim(), username: username.value.trim(), password: password.value },
          });
          this.verify(email.value.trim(), { identifier: username.value.trim(), password: password.value });
        } catch (e) {
          showError(error, e);
        }
      });
    });
    this.screen(
      "Create an account",
      form,
      h(
        "p",
        { class: "switch" },
        "Already registered? ",
        h("button", { type: "button", class: "link", onclick: () => this.signIn() }, "Sign in"),
      ),
    );
  }

  /** The emailed six-digit code; signs in straight after when the password is still at hand. */
  verify(address: string, credentials?: { identifier: string; password: string }): void {
    const email = input("email", "email", "email", { value: address });
    const code = input("code", "text", "one-time-code", { inputmode: "numeric", pattern: "[0-9]{6}", maxlength: "6" });
    const error = errorBox();
    const status = h(
      "p",
      { class: "notice", role: "status" },
      address ? `We sent a 6-digit code to ${address}.` : "Enter the 6-digit code we emailed you.",
      " Look in your inbox, and in the spam folder if it is not there.",
    );
    const form = h(
      "form",
      { "aria-label": "Verify your email" },
      status,
      devModeHint(address),
      address ? null : field("Email", email),
      field("Verification code", code, "Six digits, valid for 10 minutes."),
      error,
      h("button", { type: "submit", class: "primary" }, "Verify"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(form, async () => {
        try {
          await api("POST", "/api/auth/email/verify", { body: { email: email.value.trim(), code: code.value.trim() } });
          if (credentials) {
            await this.finish(await api<Tokens | MfaRequired>("POST", "/api/auth/login", { body: credentials }));
          } else {
            this.signIn("Your email address is verified. Sign in to continue.");
          }
        } catch (e) {
          showError(error, e);
        }
      });
    });
    const resend = h("button", { type: "button", class: "link" }, "Send a new code");
    resend.addEventListener("click", () => {
      void api("POST", "/api/auth/email/resend", { body: { email: email.value.trim() } })
        .then(() => (status.textContent = "If that address has an unverified account, a new code is on its way."))
        .catch((e: unknown) => showError(error, e));
    });
    this.screen(
      "Verify your email",
      form,
      h(
        "p",
        { class: "switch" },
        resend,
        " · ",
        h("button", { type: "button", class: "link", onclick: () => this.signIn() }, "Back to sign in"),
      ),
    );
    (address ? code : email).focus();
  }

  /** The second factor: an authenticator code, or one of the recovery codes. */
  totp(mfaToken: string): void {
    const code = input("code", "text", "one-time-code", { inputmode: "numeric", maxlength: "32" });
    const recovery = h("input", { type: "checkbox", id: "use-recovery" });
    const error = errorBox();
    const form = h(
      "form",
      { "aria-label": "Two-factor authentication" },
      h("p", { class: "notice" }, "Enter the 6-digit code from your authenticator app."),
      field("Authentication code", code),
      h("div", { class: "check" }, recovery, h("label", { for: "use-recovery" }, "Use a recovery code instead")),
      error,
      h("button", { type: "submit", class: "primary" }, "Continue"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(form, async () => {
        try {
          const value = code.value.trim();
          const body = recovery.checked
            ? { mfa_token: mfaToken, recovery_code: value }
            : { mfa_token: mfaToken, code: value };
          await this.finish(await api<Tokens>("POST", "/api/auth/login/totp", { body }));
        } catch (e) {
          showError(error, e);
        }
      });
    });
    this.screen(
      "Two-factor authentication",
      form,
      h(
        "p",
        { class: "switch" },
        h("button", { type: "button", class: "link", onclick: () => this.signIn() }, "Start over"),
      ),
    );
    code.focus();
  }

  /** A provider identity whose email has a password account here: the password proves it is the same person. */
  link(linkToken: string): void {
    const password = input("password", "password", "current-password");
    const error = errorBox();
    const form = h(
      "form",
      { "aria-label": "Link your account" },
      h(
        "p",
        { class: "notice" },
        `An account with this email already exists. Enter its password to link ${this.info.oidc_provider ?? "the provider"} sign-in to it.`,
      ),
      field("Password", password),
      error,
      h("button", { type: "submit", class: "primary" }, "Link and sign in"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(form, async () => {
        try {
          await this.finish(
            await api<Tokens | MfaRequired>("POST", "/api/auth/oidc/link", {
              body: { link_token: linkToken, password: password.value },
            }),
          );
        } catch (e) {
          showError(error, e);
        }
      });
    });
    this.screen("Link your account", form);
  }
}
