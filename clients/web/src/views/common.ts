// What every view shares: how names, times and errors are written, and what a view may ask of the app.

import { ApiError } from "../api";
import type { Profile, Room } from "../types";

/** The app as the views see it: who I am, how people and rooms are named, and the live region. */
export interface ViewContext {
  readonly me: Profile;
  name(userId: string): string;
  roomName(room: Room): string;
  /** Said to screen readers; an error also shows as a toast. */
  announce(text: string, error?: boolean): void;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function time(iso: string): string {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function errorText(error: unknown): string {
  return error instanceof ApiError ? error.message : String(error);
}

/** Make `parent`'s children exactly `nodes` without detaching the ones that stay (detaching loses focus). */
export function reconcile(parent: HTMLElement, nodes: HTMLElement[]): void {
  const keep = new Set<Node>(nodes);
  for (const child of Array.from(parent.children)) if (!keep.has(child)) child.remove();
  let cursor: ChildNode | null = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(node, cursor);
  }
}
