// Who is who: user ids to names through the rooms service's user lookups, with a small cache. Lookups are
// batched (every id asked for within a few milliseconds goes in one GET of at most 100 ids) and the cache keeps
// the most recently used entries, re-asking about an entry after a while (names change).

import { ApiError, api } from "./api";

export interface UserInfo {
  user_id: string;
  username: string;
  display_name: string;
  avatar_url?: string | null;
}

const BATCH = 100;
const MAX_ENTRIES = 2000;
const FRESH_MS = 10 * 60_000;
const UNKNOWN_RETRY_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Entry {
  info: UserInfo | null; // null: not known to the server (yet), or a deleted account
  at: number;
}

export class UserDirectory {
  private readonly entries = new Map<string, Entry>();
  private readonly queued = new Set<string>();
  private readonly inFlight = new Set<string>();
  private timer: number | undefined;

  /** `changed` runs after a batch brought names, so the views showing ids can re-render. */
  constructor(private readonly changed: () => void) {}

  /** A name to show for `userId`: display name, else username, else a short id while the name is looked up. */
  label(userId: string): string {
    const info = this.get(userId);
    if (info) return info.display_name || info.username;
    return `user ${userId.slice(0, 8)}`;
  }

  /** What is known (asking the server in the background when it is missing or old). */
  get(userId: string): UserInfo | null {
    const entry = this.entries.get(userId);
    const now = Date.now();
    if (!entry || now - entry.at > (entry.info ? FRESH_MS : UNKNOWN_RETRY_MS)) this.want(userId);
    if (entry) {
      // most recently used last, so the oldest goes first when the cache is full
      this.entries.delete(userId);
      this.entries.set(userId, entry);
    }
    return entry?.info ?? null;
  }

  /** Names learnt elsewhere (my own profile, contacts, @mentions): shown at once, confirmed by the next lookup. */
  learn(info: UserInfo): void {
    const entry = this.entries.get(info.user_id);
    if (entry?.info && entry.at > 0) return; // the server's answer wins
    const display_name = info.display_name || entry?.info?.display_name || "";
    this.entries.set(info.user_id, { info: { ...entry?.info, ...info, display_name }, at: 0 });
  }

  /** My own profile as the server just answered it: newer than any lookup, so it replaces what is cached. */
  set(info: UserInfo): void {
    this.entries.set(info.user_id, { info, at: Date.now() });
  }

  /** Look up, and wait for, every id missing or old (for a view about to be drawn). */
  async ensure(userIds: string[]): Promise<void> {
    const now = Date.now();
    const missing = [...new Set(userIds)].filter((id) => {
      const entry = this.entries.get(id);
      return UUID.test(id) && (!entry || now - entry.at > (entry.info ? FRESH_MS : UNKNOWN_RETRY_MS));
    });
    if (missing.length) await this.lookup(missing);
  }

  known(): UserInfo[] {
    return [...this.entries.values()].flatMap((e) => (e.info ? [e.info] : []));
  }

  /** Ask now for every id not known yet (one request per 100). */
  want(...userIds: string[]): void {
    for (const id of userIds) if (UUID.test(id) && !this.inFlight.has(id)) this.queued.add(id);
    if (this.queued.size && this.timer === undefined) this.timer = window.setTimeout(() => void this.flush(), 10);
  }

  /** The user with this username (any case) or, given a user id, that user; throws `user_not_found`. */
  async resolve(text: string): Promise<UserInfo> {
    const wanted = text.trim().replace(/^@/, "");
    if (UUID.test(wanted)) {
      const [info] = await api<UserInfo[]>("GET", `/api/rooms/users?ids=${wanted}`);
      if (info) {
        this.put(info.user_id, info);
        return info;
      }
      // an id the rooms service has not heard of yet: let the action itself decide
      return { user_id: wanted, username: wanted, display_name: "" };
    }
    if (!wanted) throw new ApiError(422, "validation_failed", "Enter a username.");
    try {
      const info = await api<UserInfo>("GET", `/api/rooms/users/by-username/${encodeURIComponent(wanted)}`);
      this.put(info.user_id, info);
      return info;
    } catch (e) {
      if (e instanceof ApiError && e.code === "user_not_found")
        throw new ApiError(404, e.code, `Nobody is called ${wanted}.`);
      throw e;
    }
  }

  private put(userId: string, info: UserInfo | null): void {
    this.entries.delete(userId);
    this.entries.set(userId, { info, at: Date.now() });
    while (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    const ids = [...this.queued];
    this.queued.clear();
    if (await this.lookup(ids)) this.changed();
  }

  /** True when a name changed. */
  private async lookup(ids: string[]): Promise<boolean> {
    let learnt = false;
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      for (const id of batch) this.inFlight.add(id);
      try {
        const found = await api<UserInfo[]>("GET", `/api/rooms/users?ids=${batch.join(",")}`);
        const byId = new Map(found.map((u) => [u.user_id, u]));
        for (const id of batch) {
          const info = byId.get(id) ?? null;
          const before = this.entries.get(id)?.info;
          // An id not found keeps a name learnt elsewhere (the projection may lag behind a new account).
          this.put(id, info ?? before ?? null);
          if (info && (info.display_name !== before?.display_name || info.username !== before?.username)) learnt = true;
        }
      } catch {
        // names stay short ids for now; asked again on the next use after UNKNOWN_RETRY_MS
        for (const id of batch) if (!this.entries.has(id)) this.put(id, null);
      } finally {
        for (const id of batch) this.inFlight.delete(id);
      }
    }
    return learnt;
  }
}
