// The unread count in the tab's title, "(3) Chat", so a background tab says that something is waiting.

import { titleWith } from "./rules";

let base: string | null = null;

export function showUnreadInTitle(unread: number): void {
  base ??= document.title;
  const title = titleWith(unread, base);
  if (document.title !== title) document.title = title;
}

/** Signed out: the page's own title again. */
export function resetTitle(): void {
  if (base !== null) document.title = base;
}
