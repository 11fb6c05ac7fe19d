// The auth service's calls for my own account (docs/auth.md): profile, avatar, password, two-factor sign-in,
// sessions and deleting the account. Every failure is an ApiError carrying the server's problem+json message.

import { api } from "./api";
import type { Profile } from "./types";

/** `GET /api/auth/me`: the profile with what only its owner sees. */
export interface Account extends Profile {
  display_name: string;
  /** Same-origin path with a version, so a new upload is a new URL; null without an avatar. */
  avatar_url: string | null;
  totp_enabled: boolean;
  /** False for an account made through a provider sign-in: deleting it then needs no password. */
  has_password: boolean;
  created_at: string;
}

export interface Session {
  id: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  user_agent: string;
  ip: string;
  auth_method: string;
  current: boolean;
}

export interface TotpStatus {
  enabled: boolean;
  recovery_codes_left: number;
}

export interface TotpSetup {
  /** Base32, for typing into the app by hand. */
  secret: string;
  otpauth_uri: string;
  /** The URI as a QR code: a standalone SVG document. */
  qr_svg: string;
}

export const account = (): Promise<Account> => api<Account>("GET", "/api/auth/me");

export const rename = (displayName: string): Promise<Account> =>
  api<Account>("PATCH", "/api/auth/me", { body: { display_name: displayName } });

/** The raw bytes: the server decides the type from them (PNG, JPEG, GIF or WebP). */
export const uploadAvatar = (file: Blob): Promise<Account> =>
  api<Account>("PUT", "/api/auth/me/avatar", { raw: file, headers: { "Content-Type": "application/octet-stream" } });

export const removeAvatar = (): Promise<Account> => api<Account>("DELETE", "/api/auth/me/avatar");

/** Ends every other session; answers how many. */
export const changePassword = (current: string, next: string): Promise<{ sessions_ended: number }> =>
  api("POST", "/api/auth/password/change", { body: { current_password: current, new_password: next } });

export const totpStatus = (): Promise<TotpStatus> => api<TotpStatus>("GET", "/api/auth/totp");

export const totpSetup = (): Promise<TotpSetup> => api<TotpSetup>("POST", "/api/auth/totp/setup");

/** Turns two-factor sign-in on; the recovery codes come only in this answer. */
export const totpConfirm = (code: string): Promise<{ recovery_codes: string[] }> =>
  api("POST", "/api/auth/totp/confirm", { body: { code } });

export const totpDisable = (proof: { code: string } | { password: string }): Promise<void> =>
  api<void>("POST", "/api/auth/totp/disable", { body: proof });

export const newRecoveryCodes = (code: string): Promise<{ recovery_codes: string[] }> =>
  api("POST", "/api/auth/totp/recovery-codes", { body: { code } });

export const sessions = (): Promise<Session[]> => api<Session[]>("GET", "/api/auth/sessions");

export const endSession = (id: string): Promise<void> => api<void>("DELETE", `/api/auth/sessions/${id}`);

export const endOtherSessions = (): Promise<{ sessions_ended: number }> => api("POST", "/api/auth/sessions/end-others");

export const logoutEverywhere = (): Promise<void> => api<void>("POST", "/api/auth/logout-all");

/** Password accounts must send the password; provider-only accounts send nothing. */
export const deleteAccount = (password: string | null): Promise<void> =>
  api<void>("POST", "/api/auth/me/delete", { body: password === null ? {} : { password } });
