// Message search (docs/messages.md): every word of the query, in one room or all of mine, newest first, a page at
// a time (the cursor comes from the previous page).

import { api } from "./api";
import type { Message, Page } from "./types";

/** The most the server takes in `q`. */
export const MAX_QUERY_CHARS = 200;
const SEARCH_PAGE = 20;

export function searchMessages(q: string, roomId: string | null, cursor: string | null = null): Promise<Page<Message>> {
  const params = new URLSearchParams({ q, limit: String(SEARCH_PAGE) });
  if (roomId) params.set("room_id", roomId);
  if (cursor) params.set("cursor", cursor);
  return api<Page<Message>>("GET", `/api/messages/search?${params}`);
}
