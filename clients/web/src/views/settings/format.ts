// Pure helpers of the settings pages: what a session's user agent means to a person, how long ago it was used,
// and how a two-factor secret is written so it can be typed. No DOM, so Vitest runs them in Node.

import type { Session } from "../../account-api";

const BROWSERS: [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\//, "Edge"],
  [/\bOPR\//, "Opera"],
  [/\bSamsungBrowser\//, "Samsung Internet"],
  [/\b(?:Firefox|FxiOS)\//, "Firefox"],
  [/\b(?:Headless)?(?:Chrome|Chromium|CriOS)\//, "Chrome"],
  [/\bVersion\/[\d.]+.*\bSafari\//, "Safari"],
];

const SYSTEMS: [RegExp, string][] = [
  [/\biPhone\b/, "iPhone"],
  [/\biPad\b/, "iPad"],
  [/\bAndroid\b/, "Android"],
  [/\bCrOS\b/, "ChromeOS"],
  [/\bWindows\b/, "Windows"],
  [/\bMac OS X\b|\bMacintosh\b/, "macOS"],
  [/\bLinux\b/, "Linux"],
];

/** "Chrome on Linux", "Safari on iPhone", "chat-cli on Linux", or the agent's first word for other programs. */
export function describeDevice(userAgent: string): string {
  const agent = userAgent.trim();
  if (!agent) return "Unknown device";
  const cli = /^chat-cli\/\S+(?:\s+\(([^)]+)\))?/.exec(agent);
  if (cli) return cli[1] && cli[1] !== "unknown system" ? `Terminal (chat-cli) on ${cli[1]}` : "Terminal (chat-cli)";
  const browser = BROWSERS.find(([pattern]) => pattern.test(agent))?.[1];
  const system = SYSTEMS.find(([pattern]) => pattern.test(agent))?.[1];
  if (browser) return system ? `${browser} on ${system}` : browser;
  if (system) return `A browser on ${system}`;
  // A program (curl/8.5, python-httpx/0.27): its name is the most a person can recognise.
  return agent.split(/[\s/]/)[0].slice(0, 40) || "Unknown device";
}

const UNITS: [number, string][] = [
  [60, "minute"],
  [24, "hour"],
  [30, "day"],
];

/** "Just now", "5 minutes ago", "3 hours ago", "12 days ago"; older than a month, the date. */
export function timeAgo(iso: string, now: number): string {
  const then = new Date(iso).getTime();
  let amount = Math.max(0, Math.floor((now - then) / 1000));
  if (amount < 60) return "Just now";
  amount = Math.floor(amount / 60);
  for (const [size, unit] of UNITS) {
    if (amount < size) return `${amount} ${unit}${amount === 1 ? "" : "s"} ago`;
    amount = Math.floor(amount / size);
  }
  return new Date(iso).toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

/** How the session signed in, in words. */
export function signInMethod(method: string): string {
  switch (method) {
    case "password":
      return "password";
    case "totp":
      return "password and authenticator";
    case "google":
      return "provider sign-in";
    default:
      return method;
  }
}

/** This device first, then the most recently used. */
export function orderSessions(list: Session[]): Session[] {
  return [...list].sort(
    (a, b) => Number(b.current) - Number(a.current) || b.last_used_at.localeCompare(a.last_used_at),
  );
}

/** The base32 secret in groups of four, as authenticator apps show it, so it can be typed without losing place. */
export function groupSecret(secret: string): string {
  return (secret.replace(/\s+/g, "").match(/.{1,4}/g) ?? []).join(" ");
}

/** Six digits, with the spaces and dashes people type or paste removed; null when it is not a code yet. */
export function sixDigits(typed: string): string | null {
  const digits = typed.replace(/[\s-]/g, "");
  return /^\d{6}$/.test(digits) ? digits : null;
}

/** The recovery codes as a text file to keep. */
export function recoveryCodesText(username: string, codes: string[]): string {
  return [
    `Recovery codes for ${username}`,
    "Each code signs you in once if you lose your authenticator app. Keep them somewhere safe.",
    "",
    ...codes,
    "",
  ].join("\n");
}
