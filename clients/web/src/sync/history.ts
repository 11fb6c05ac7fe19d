// A room's history from the messages service, merged into its timeline: the newest page on opening (again after
// `recovered: false`), older pages on scrolling up, each with the joins, leaves and renames placed among its
// messages, the visible page again after edits that were not replayed, and the receipt markers.

import * as chatApi from "../chat-api";
import type { ChatState } from "../state/chat-state";
import {
  type ActivityWindow,
  activityWindow,
  mergeActivity,
  mergeLatestPage,
  mergeOlderPage,
  oldestSeq,
  setMarkers,
  storeMessage,
} from "../state/room";
import type { Activity, Message } from "../types";
import type { UserDirectory } from "../users";
import { errorText } from "../views/common";
import type { Screen } from "./screen";

/** Mentions carry usernames: names shown at once, before any lookup. */
export function learnNames(users: UserDirectory, messages: Message[]): void {
  for (const message of messages) {
    for (const m of message.mentions) users.learn({ user_id: m.user_id, username: m.username, display_name: "" });
  }
}

export class History {
  constructor(
    private readonly state: ChatState,
    private readonly users: UserDirectory,
    private readonly screen: Screen,
  ) {}

  /** The newest page (on first open, or again after `recovered: false`); a fresh join's 404s are waited out. */
  async latest(roomId: string): Promise<void> {
    const s = this.state.room(roomId);
    s.loading = true;
    try {
      const page = await chatApi.latestPage(roomId);
      learnNames(this.users, page.items);
      mergeLatestPage(s, page.items, chatApi.PAGE);
      await this.activity(roomId, activityWindow(s, page.items));
    } finally {
      s.loading = false;
    }
  }

  /** Infinite scroll: the page before the oldest message shown. */
  async older(roomId: string): Promise<void> {
    const s = this.state.room(roomId);
    const oldest = oldestSeq(s);
    if (s.loading || !s.hasMore || oldest === null) return;
    s.loading = true;
    const restore = this.screen.keepScrollPosition();
    try {
      const page = await chatApi.historyPage(roomId, oldest);
      learnNames(this.users, page.items);
      mergeOlderPage(s, page.items, chatApi.PAGE);
      await this.activity(roomId, activityWindow(s, page.items, oldest));
    } catch (e) {
      this.screen.announce(`Could not load older messages: ${errorText(e)}`);
    } finally {
      s.loading = false;
    }
    if (roomId === this.state.current) {
      this.screen.messages(false);
      restore();
    }
  }

  /** The joins, leaves, removals, bans and renames of a page's seqs, among the notices seen live; whoever they
   * name is looked up like for a live notice. Without them the page still shows. */
  private async activity(roomId: string, window: ActivityWindow): Promise<void> {
    let items: Activity[];
    try {
      items = await chatApi.activity(roomId, window);
    } catch {
      return; // the messages are there; the notices come with the next page or reload
    }
    const direct = this.state.rooms.get(roomId)?.kind === "direct";
    if (!mergeActivity(this.state.room(roomId), items, direct)) return;
    const named = items.flatMap((a) => [a.user_id, a.by]).filter((id): id is string => id !== null);
    if (named.length) this.users.want(...new Set(named));
  }

  /** Edits, deletions and markers made while away were not replayed: the visible page and receipts again. */
  async refreshVisible(roomId: string): Promise<void> {
    const page = await chatApi.historyPage(roomId).catch(() => null);
    if (page) {
      learnNames(this.users, page.items);
      for (const m of page.items) storeMessage(this.state.room(roomId), m);
    }
    await this.receipts(roomId);
    this.screen.messages();
  }

  async receipts(roomId: string): Promise<void> {
    try {
      setMarkers(this.state.room(roomId), (await chatApi.receipts(roomId)).markers);
      if (roomId === this.state.current) this.screen.messages();
    } catch {
      // indicators stay at "sent"
    }
  }
}
