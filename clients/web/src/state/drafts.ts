// What was typed in each room's box and not sent yet, kept in localStorage so that a reload, a closed tab or a
// switch to another room does not lose it; cleared when it is sent. Keyed by account as well as room, so that
// someone else signing in on the same browser never sees it.

/** The part of Storage the drafts need (localStorage in the page, a Map in the tests). */
export type DraftStorage = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** Longer drafts are cut: a draft is a message being written, never more than a message can hold. */
const MAX_DRAFT_CHARS = 20_000;

export class DraftStore {
  constructor(
    private readonly storage: DraftStorage | null,
    private readonly userId: string,
  ) {}

  private key(roomId: string): string {
    return `chat.draft.${this.userId}.${roomId}`;
  }

  get(roomId: string): string {
    try {
      return this.storage?.getItem(this.key(roomId)) ?? "";
    } catch {
      return ""; // storage turned off: drafts live only as long as the box
    }
  }

  /** Keeps `text` as the room's draft; blank text removes it. */
  set(roomId: string, text: string): void {
    try {
      if (text.trim() === "") this.storage?.removeItem(this.key(roomId));
      else this.storage?.setItem(this.key(roomId), text.slice(0, MAX_DRAFT_CHARS));
    } catch {
      // Full or turned off: the draft is not kept across reloads, and typing goes on.
    }
  }

  clear(roomId: string): void {
    this.set(roomId, "");
  }
}

/** The page's localStorage, or null where it is refused (some privacy modes throw on access). */
export function browserStorage(): DraftStorage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
