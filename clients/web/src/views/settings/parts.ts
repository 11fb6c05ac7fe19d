// What every settings page shares: a line for the server's answer (its problem+json message on a failure), a
// button that stays disabled while its call runs, and an in-page "are you sure?" step.

import { type Child, h, replace } from "../../dom";
import { errorText } from "../common";

/** One line under a form: the server's message when a call failed, or what went right. */
export interface Outcome {
  readonly element: HTMLElement;
  failed(error: unknown): void;
  done(text: string): void;
  clear(): void;
}

export function outcome(): Outcome {
  const element = h("p", { class: "settings-outcome", role: "status", "aria-live": "polite", hidden: true });
  const show = (text: string, kind: "error" | "ok") => {
    element.hidden = false;
    element.className = `settings-outcome ${kind}`;
    element.setAttribute("role", kind === "error" ? "alert" : "status");
    element.textContent = text;
  };
  return {
    element,
    failed: (error) => show(errorText(error), "error"),
    done: (text) => show(text, "ok"),
    clear: () => {
      element.hidden = true;
      element.textContent = "";
    },
  };
}

/** Run `work` with `button` disabled (no double submits); a failure goes to `result`. */
export async function busy(button: HTMLButtonElement, result: Outcome, work: () => Promise<void>): Promise<void> {
  button.disabled = true;
  result.clear();
  try {
    await work();
  } catch (error) {
    result.failed(error);
  } finally {
    button.disabled = false;
  }
}

/** A form whose submit (button or Enter) runs `work` with its submit button busy. */
export function form(
  label: string,
  result: Outcome,
  work: (submit: HTMLButtonElement) => Promise<void>,
  ...children: Child[]
): HTMLFormElement {
  const submit = h("button", { type: "submit", class: "primary" }, label);
  const element = h("form", { class: "settings-form" }, children, h("div", { class: "settings-buttons" }, submit));
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, result, () => work(submit));
  });
  return element;
}

/** A button that asks first, in the page: the question with "confirm" and "Cancel" in place of the button. */
export function confirmButton(
  label: string,
  question: string,
  confirmLabel: string,
  result: Outcome,
  action: () => Promise<void>,
): HTMLElement {
  const box = h("div", { class: "settings-confirm" });
  const ask = (): void => {
    const yes = h("button", { type: "button", class: "danger" }, confirmLabel);
    const no = h("button", { type: "button", onclick: () => idle() }, "Cancel");
    yes.addEventListener("click", () => void busy(yes, result, action).then(() => no.isConnected && idle()));
    replace(box, h("p", null, question), h("div", { class: "settings-buttons" }, yes, no));
    yes.focus();
  };
  const idle = (): void => {
    replace(box, h("button", { type: "button", class: "danger-outline", onclick: ask }, label));
  };
  idle();
  return box;
}

/** A heading and its content, as one labelled region of a page. */
export function section(title: string, ...children: Child[]): HTMLElement {
  const heading = h("h3", null, title);
  heading.id = `settings-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return h("section", { class: "settings-block", "aria-labelledby": heading.id }, heading, children);
}
