import { describe, expect, it } from "vitest";
import type { Session } from "../../account-api";
import {
  describeDevice,
  groupSecret,
  orderSessions,
  recoveryCodesText,
  signInMethod,
  sixDigits,
  timeAgo,
} from "./format";

describe("describeDevice", () => {
  it.each([
    [
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
      "Chrome on Linux",
    ],
    [
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
      "Safari on iPhone",
    ],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Windows"],
    [
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
      "Edge on Windows",
    ],
    [
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
      "Safari on macOS",
    ],
    [
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
      "Chrome on Android",
    ],
    [
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
      "Chrome on Linux",
    ],
    ["chat-cli/0.1 (Linux)", "Terminal (chat-cli) on Linux"],
    ["chat-cli/0.1 (unknown system)", "Terminal (chat-cli)"],
    ["python-httpx/0.28.1", "python-httpx"],
    ["", "Unknown device"],
    ["   ", "Unknown device"],
  ])("%s is %s", (agent, expected) => {
    expect(describeDevice(agent)).toBe(expected);
  });
});

describe("timeAgo", () => {
  const now = Date.parse("2026-03-10T12:00:00Z");
  const ago = (seconds: number) => timeAgo(new Date(now - seconds * 1000).toISOString(), now);

  it("says just now for the last minute, and for a clock slightly ahead", () => {
    expect(ago(0)).toBe("Just now");
    expect(ago(59)).toBe("Just now");
    expect(ago(-30)).toBe("Just now");
  });

  it("counts minutes, hours and days in the largest whole unit", () => {
    expect(ago(60)).toBe("1 minute ago");
    expect(ago(5 * 60 + 59)).toBe("5 minutes ago");
    expect(ago(3600)).toBe("1 hour ago");
    expect(ago(23 * 3600)).toBe("23 hours ago");
    expect(ago(2 * 86400)).toBe("2 days ago");
    expect(ago(29 * 86400)).toBe("29 days ago");
  });

  it("gives the date past a month", () => {
    expect(ago(45 * 86400)).toMatch(/2026/);
  });
});

describe("orderSessions", () => {
  const session = (id: string, lastUsed: string, current = false): Session => ({
    id,
    created_at: "2026-03-01T00:00:00Z",
    last_used_at: lastUsed,
    expires_at: "2026-04-01T00:00:00Z",
    user_agent: "",
    ip: "127.0.0.1",
    auth_method: "password",
    current,
  });

  it("puts this device first, then the most recently used, without changing the list it was given", () => {
    const given = [
      session("old", "2026-03-02T00:00:00Z"),
      session("here", "2026-03-01T00:00:00Z", true),
      session("new", "2026-03-09T00:00:00Z"),
    ];
    expect(orderSessions(given).map((s) => s.id)).toEqual(["here", "new", "old"]);
    expect(given.map((s) => s.id)).toEqual(["old", "here", "new"]);
  });
});

describe("two-factor helpers", () => {
  it("groups the secret in fours", () => {
    expect(groupSecret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")).toBe("JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP");
    expect(groupSecret("ABCDEF")).toBe("ABCD EF");
  });

  it("accepts six digits typed with spaces or a dash, and nothing else", () => {
    expect(sixDigits(" 123 456 ")).toBe("123456");
    expect(sixDigits("123-456")).toBe("123456");
    expect(sixDigits("12345")).toBeNull();
    expect(sixDigits("1234567")).toBeNull();
    expect(sixDigits("12345a")).toBeNull();
  });

  it("names each sign-in method in words", () => {
    expect(signInMethod("password")).toBe("password");
    expect(signInMethod("totp")).toBe("password and authenticator");
    expect(signInMethod("google")).toBe("provider sign-in");
    expect(signInMethod("refresh")).toBe("refresh");
  });

  it("writes the recovery codes one a line under a heading", () => {
    const text = recoveryCodesText("ada", ["aaaaa-bbbbb", "ccccc-ddddd"]);
    expect(text.split("\n")).toEqual([
      "Recovery codes for ada",
      "Each code signs you in once if you lose your authenticator app. Keep them somewhere safe.",
      "",
      "aaaaa-bbbbb",
      "ccccc-ddddd",
      "",
    ]);
  });
});
