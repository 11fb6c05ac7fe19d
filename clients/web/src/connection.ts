// The Socket.IO connection: the access token in the `auth` payload, a visible state, token refresh on
// `auth:expiring`, and reconnection after refused connects and ended sessions (docs/protocol.md).

import { io, type Socket } from "socket.io-client";
import { refresh, type Tokens, token } from "./api";
import type { Ack } from "./types";

export type ConnectionState = "connecting" | "online" | "reconnecting" | "offline";

export interface ConnectionEvents {
  state(state: ConnectionState, detail?: string): void;
  connected(): void;
  signedOut(reason: string): void;
}

const ACK_TIMEOUT_MS = 12_000;

export class Connection {
  readonly socket: Socket;
  state: ConnectionState = "connecting";
  private stopped = false;

  constructor(private readonly events: ConnectionEvents) {
    this.socket = io({
      path: "/socket.io/",
      autoConnect: false,
      // A function, so every reconnect presents the newest access token.
      auth: (cb) => cb({ token: token() ?? "" }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    const s = this.socket;
    s.on("connect", () => {
      this.set("online");
      this.events.connected();
    });
    s.on("disconnect", (reason) => {
      if (this.stopped) return;
      this.set(navigator.onLine ? "reconnecting" : "offline");
      // The server closed it (ended session, slow consumer): socket.io does not retry those by itself.
      if (reason === "io server disconnect") this.later(500);
    });
    s.io.on("reconnect_attempt", () => this.set(navigator.onLine ? "reconnecting" : "offline"));
    s.on("connect_error", (error: Error & { data?: { code?: string; retry_after?: number } }) => {
      const code = error.data?.code;
      if (!code) {
        this.set(navigator.onLine ? "reconnecting" : "offline"); // transport error: socket.io retries
        return;
      }
      // session_revoked: the refresh fails too, and that signs out rather than reconnecting forever.
      if (code === "unauthenticated" || code === "session_revoked" || code.startsWith("token_")) {
        void refresh().then(
          (tokens) => (tokens ? this.later(0) : this.events.signedOut("Your session has ended. Sign in again.")),
          () => this.later(2000), // the server is unreachable: try again
        );
      } else {
        this.set("reconnecting", error.message);
        this.later(Math.max(1000, (error.data?.retry_after ?? 3) * 1000));
      }
    });
    s.on("session:ended", (data: { reason: string }) => {
      // token_key_withdrawn: the session lives on; a refreshed token is signed by the key that took over.
      if (data.reason === "token_expired" || data.reason === "token_key_withdrawn") {
        void refresh().then(
          (tokens) => (tokens ? undefined : this.events.signedOut("Your session has expired. Sign in again.")),
          () => undefined, // reconnecting presents a token; a refused one is refreshed then
        );
      } else if (data.reason !== "slow_consumer" && data.reason !== "frame_too_large") {
        this.stop();
        this.events.signedOut(`You were signed out (${data.reason.replace(/_/g, " ")}).`);
      }
    });
    s.on("auth:expiring", () => void this.refreshToken());
    // The browser knows first when the network goes: show it and stop waiting for a dead socket.
    window.addEventListener("offline", this.wentOffline);
    window.addEventListener("online", this.cameOnline);
  }

  private readonly wentOffline = (): void => {
    if (this.stopped) return;
    this.socket.disconnect();
    this.set("offline");
  };

  private readonly cameOnline = (): void => {
    if (this.stopped) return;
    this.set("reconnecting");
    this.socket.connect();
  };

  private later(ms: number): void {
    setTimeout(() => {
      if (!this.stopped && !this.socket.connected && navigator.onLine) this.socket.connect();
    }, ms);
  }

  private set(state: ConnectionState, detail?: string): void {
    this.state = state;
    this.events.state(state, detail);
  }

  start(): void {
    this.set("connecting");
    this.socket.connect();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener("offline", this.wentOffline);
    window.removeEventListener("online", this.cameOnline);
    this.socket.disconnect();
  }

  /** `auth:expiring`: a new access token over HTTP (the refresh cookie), then `auth:refresh` on this socket. */
  async refreshToken(): Promise<void> {
    let tokens: Tokens | null;
    try {
      tokens = await refresh();
    } catch {
      return; // unreachable now; the next auth:expiring or a reconnect tries again
    }
    if (!tokens) {
      this.events.signedOut("Your session has ended. Sign in again.");
      return;
    }
    const ack = await this.emit<{ expires_at: string }>("auth:refresh", { token: tokens.access_token });
    if (!ack.ok) this.socket.disconnect().connect(); // reconnect with the new token instead
  }

  /** An event with its ack; a missing ack becomes a `timeout` error ack, so callers handle one shape. */
  async emit<T>(event: string, payload: unknown): Promise<Ack<T>> {
    if (!this.socket.connected) return { ok: false, error: { code: "disconnected", message: "Not connected" } };
    try {
      return (await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload)) as Ack<T>;
    } catch {
      return { ok: false, error: { code: "timeout", message: "No answer in time" } };
    }
  }
}
