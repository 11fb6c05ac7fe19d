// What a join, leave, kick, ban or rename says in the timeline.

import { describe, expect, it } from "vitest";
import type { Notice } from "../state/room";
import { noticeText } from "./conversation";

const notice = (over: Partial<Notice>): Notice => ({
  id: "r:1",
  version: 1,
  kind: "joined",
  afterSeq: 0,
  at: "2026-01-01T00:00:00Z",
  userId: "u-bob",
  by: null,
  name: null,
  ...over,
});
const name = (id: string) => id.slice(2);

describe("noticeText", () => {
  it("names who did what", () => {
    expect(noticeText(notice({}), name)).toBe("bob joined");
    expect(noticeText(notice({ by: "u-ada" }), name)).toBe("ada added bob");
    expect(noticeText(notice({ kind: "left" }), name)).toBe("bob left");
    expect(noticeText(notice({ kind: "kicked", by: "u-ada" }), name)).toBe("ada removed bob");
    expect(noticeText(notice({ kind: "banned", by: "u-ada" }), name)).toBe("ada banned bob");
    expect(noticeText(notice({ kind: "renamed", userId: null, by: "u-ada", name: "lounge" }), name)).toBe(
      "ada renamed the room to lounge",
    );
  });
});
