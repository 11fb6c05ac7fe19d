// The "@" badge next to a room's unread count when unread messages there mention me (state/mentions.ts counts
// them), so a mention stands out from ordinary traffic.

import { h } from "../dom";
import { unreadMentions } from "../state/mentions";
import type { RoomState } from "../state/room";
import "./messages.css";

export function mentionBadge(s: RoomState, me: string): HTMLElement | null {
  const n = unreadMentions(s, me);
  if (n === 0) return null;
  const label = n === 1 ? "1 mention of you" : `${n} mentions of you`;
  return h("span", { class: "badge mention-badge", "aria-label": label, title: label }, `@${n > 9 ? "9+" : n}`);
}
