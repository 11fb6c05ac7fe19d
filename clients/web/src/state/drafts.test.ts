// Drafts are kept per account and room, survive a new store (a reload), and go when sent or emptied.

import { describe, expect, it } from "vitest";
import { type DraftStorage, DraftStore } from "./drafts";

function memory(): DraftStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
}

describe("DraftStore", () => {
  it("keeps each room's draft across a reload", () => {
    const storage = memory();
    const before = new DraftStore(storage, "ada");
    before.set("r1", "half a thought");
    before.set("r2", "another");
    const after = new DraftStore(storage, "ada");
    expect(after.get("r1")).toBe("half a thought");
    expect(after.get("r2")).toBe("another");
    expect(after.get("r3")).toBe("");
  });

  it("clears a draft when it is sent or emptied", () => {
    const storage = memory();
    const drafts = new DraftStore(storage, "ada");
    drafts.set("r1", "sent soon");
    drafts.clear("r1");
    drafts.set("r2", "x");
    drafts.set("r2", "   ");
    expect(storage.items.size).toBe(0);
  });

  it("keeps one account's drafts from another on the same browser", () => {
    const storage = memory();
    new DraftStore(storage, "ada").set("r1", "private");
    expect(new DraftStore(storage, "bob").get("r1")).toBe("");
  });

  it("goes on without storage when it is full or turned off", () => {
    const broken: DraftStorage = {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("quota");
      },
      removeItem: () => {
        throw new Error("denied");
      },
    };
    const drafts = new DraftStore(broken, "ada");
    expect(() => drafts.set("r1", "text")).not.toThrow();
    expect(drafts.get("r1")).toBe("");
    expect(new DraftStore(null, "ada").get("r1")).toBe("");
  });
});
