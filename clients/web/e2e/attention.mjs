// What asks for attention, in headless Chromium (playwright-core, Debian's /usr/bin/chromium): an invitation the
// inviter sees was sent, a reply's quote following an edit and a deletion, the unread count in the tab title,
// opt-in notifications for direct messages and mentions while the tab is hidden, "jump to the first unread", and
// presence re-announced as away after a reconnection of a hidden tab. It also takes the README's screenshot
// (docs/screenshot.png) from the real client, with display names.
//
// Driven by tests/integration/test_web_attention.py: argv = base URL, artifacts folder, screenshot path and a
// JSON config ({"people": [[username, display name], ...]}: accounts made by the test, password below). It prints
// JSON lines and exits 0 when every check passed.
//
// Two things a headless browser cannot do for real are stood in for by an init script, for both pages: the tab
// being hidden (document.hidden, visibilityState and the visibilitychange event, switched by the script) and the
// Notification API (permission granted when asked; each notification recorded instead of shown).

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { chromium } from "playwright-core";

const [base, artifacts, screenshotPath, config] = process.argv.slice(2);
const { people } = JSON.parse(config);
const [[adaUser, adaName], [bobUser, bobName]] = people;
const PASSWORD = "correct horse battery staple";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 15_000;
mkdirSync(artifacts, { recursive: true });

const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const started = Date.now();
const step = (name) => say({ type: "step", name, at_ms: Date.now() - started });
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};
const shot = async (page, name, path = `${artifacts}/${name}.png`) => {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path });
  say({ type: "screenshot", path });
};

/** Runs in every page before the app: a switchable hidden tab and a recording Notification. */
function standIns() {
  let hidden = false;
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true,
    get: () => (hidden ? "hidden" : "visible"),
  });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  window.__notifications = [];
  let permission = "default";
  window.Notification = class {
    static get permission() {
      return permission;
    }
    static async requestPermission() {
      permission = "granted";
      return permission;
    }
    constructor(title, options = {}) {
      window.__notifications.push({ title, body: options.body ?? "" });
    }
    close() {}
  };
}

async function signIn(page, username) {
  await page.goto(`${base}/`);
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("status").filter({ hasText: "Connected" }).waitFor();
}

/** A message by its own text (a reply also shows the text it quotes). */
const messageWith = (page, text) =>
  page.locator(".messages li.message").filter({ has: page.locator(".body", { hasText: text }) });
const roomButton = (page, text) => page.locator("button.room").filter({ hasText: text });
const send = async (page, text) => {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
};
const setHidden = (page, hidden) => page.evaluate((value) => window.__setHidden(value), hidden);
const notifications = (page) => page.evaluate(() => window.__notifications);
/** The presence dot of a room in the sidebar: online, away or offline. */
const dotOf = (page, text) =>
  roomButton(page, text)
    .locator(".presence")
    .getAttribute("class")
    .then((c) => c.replace("presence", "").trim());
/** Waits for the room's unread badge to read `count`; on a timeout it says what the badge showed instead. */
async function unreadBadge(page, text, count) {
  const badge = roomButton(page, text).locator(".badge");
  try {
    await roomButton(page, text).getByLabel(`${count} unread`, { exact: true }).waitFor();
  } catch {
    const shown = (await badge.count()) ? await badge.getAttribute("aria-label") : "no badge";
    throw new Error(`the unread badge of ${text} shows ${shown}, not ${count} unread`);
  }
}
async function waitForDot(page, text, status) {
  const deadline = Date.now() + TIMEOUT;
  let seen = await dotOf(page, text);
  while (seen !== status) {
    if (Date.now() > deadline) throw new Error(`the presence of ${text} stayed ${seen}, not ${status}`);
    await page.waitForTimeout(100);
    seen = await dotOf(page, text);
  }
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const adaContext = await browser.newContext({ viewport: { width: 1100, height: 720 }, locale: "en-GB" });
  const bobContext = await browser.newContext({ viewport: { width: 1000, height: 640 }, locale: "en-GB" });
  const pages = [];
  for (const context of [adaContext, bobContext]) {
    await context.addInitScript(standIns);
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("dialog", (dialog) => void dialog.accept()); // "Delete this message?"
    page.on("pageerror", (error) => say({ type: "pageerror", message: String(error) }));
    page.on("console", (m) => m.type() === "error" && say({ type: "console", text: m.text() }));
    pages.push(page);
  }
  const [ada, bob] = pages;

  step("both sign in; the tab title is the page's own");
  await Promise.all([signIn(ada, adaUser), signIn(bob, bobUser)]);
  check((await bob.title()) === "Chat", `bob's title with nothing unread: ${await bob.title()}`);

  step("ada creates a private room and invites bob: she sees that the invitation was sent");
  await ada.getByRole("button", { name: "New room" }).click();
  await ada.getByLabel("Name", { exact: true }).fill("design");
  await ada.getByLabel("Topic (optional)").fill("The new look, one screen at a time");
  await ada.getByLabel("Kind").selectOption("private");
  await ada.getByRole("button", { name: "Create room" }).click();
  await ada.getByRole("heading", { name: "# design" }).waitFor();
  await ada.getByRole("button", { name: "Members & moderation" }).click();
  await ada.getByLabel("Invite by username").fill(bobUser);
  await ada.getByRole("button", { name: "Invite", exact: true }).click();
  await ada
    .getByRole("dialog")
    .getByRole("status")
    .filter({ hasText: `✓ Invitation sent to ${bobName}.` })
    .waitFor();
  await shot(ada, "01-ada-invitation-sent");
  await ada.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  await bob
    .locator(".invite")
    .filter({ hasText: `from ${adaName}` })
    .getByRole("button", { name: "Accept" })
    .click();
  await bob.getByRole("heading", { name: "# design" }).waitFor();

  step("a reply's quote follows an edit and a deletion of the quoted message");
  await send(ada, "The draft of the sign-in page is up");
  await messageWith(bob, "The draft of the sign-in page is up").getByRole("button", { name: "Reply" }).click();
  await send(bob, "Looks good, but the button is hard to find");
  const quote = (page) => messageWith(page, "Looks good, but the button is hard to find").locator(".reply-to");
  await quote(ada)
    .filter({ hasText: `${adaName}: The draft of the sign-in page is up` })
    .waitFor();
  await messageWith(ada, "The draft of the sign-in page is up").getByRole("button", { name: "Edit" }).click();
  await send(ada, "The second draft of the sign-in page is up");
  for (const page of [ada, bob])
    await quote(page).filter({ hasText: "The second draft of the sign-in page" }).waitFor();
  await send(ada, "Moved the button to the top right, and made it blue");
  await send(bob, "Much better. Ship it!");
  await messageWith(ada, "Much better. Ship it!").waitFor();
  await messageWith(ada, "Moved the button to the top right, and made it blue")
    .getByLabel("Read", { exact: true })
    .waitFor();
  await ada.mouse.move(0, 0);
  // The README's screenshot: the real client, people named by their display names.
  check(
    (await messageWith(ada, "Much better. Ship it!").locator(".meta strong").textContent()) === bobName,
    "the screenshot should show bob's display name",
  );
  await shot(ada, "readme", screenshotPath);
  const shipIt = messageWith(ada, "Much better. Ship it!");
  await shipIt.hover(); // the actions show on hover with a mouse
  await shipIt.getByRole("button", { name: "React", exact: true }).click();
  await shipIt.hover();
  await shipIt.getByRole("button", { name: "React with 🎉" }).click();
  await messageWith(bob, "Much better. Ship it!").getByRole("button", { name: /🎉 1/ }).waitFor();
  await messageWith(ada, "The second draft of the sign-in page is up").getByRole("button", { name: "Delete" }).click();
  for (const page of [ada, bob]) await quote(page).filter({ hasText: "(deleted)" }).waitFor();

  step("the unread count goes in the tab title while bob's tab is hidden, and away when he reads");
  await setHidden(bob, true);
  for (const n of [1, 2, 3]) await send(ada, `Are you there? ${n}`);
  await bob.waitForFunction(() => document.title === "(3) Chat");
  await setHidden(bob, false);
  await bob.waitForFunction(() => document.title === "Chat");

  step("notifications: opt-in, for a direct message and a mention, only while hidden, never for his own");
  // Ada opens a direct room first; bob is subscribed to it once its presence dot shows her (the subscribe answer).
  await ada.getByRole("button", { name: "Direct message" }).click();
  await ada.getByLabel("Username").fill(bobUser);
  await ada.getByRole("button", { name: "Open conversation" }).click();
  await ada.getByRole("heading", { name: `@ ${bobName}` }).waitFor();
  await waitForDot(bob, `@ ${adaName}`, "online");
  await roomButton(ada, "design").click();
  await ada.getByRole("heading", { name: "# design" }).waitFor();
  await bob.getByRole("button", { name: "Turn on notifications" }).click();
  await bob.getByRole("button", { name: "Notifications on", pressed: true }).waitFor();
  await setHidden(bob, true);
  await send(ada, "Just a message for the room");
  await send(ada, `@${bobUser} can you check the colours?`);
  await send(bob, "Typed by bob while his tab is hidden");
  await messageWith(ada, "Typed by bob while his tab is hidden").waitFor();
  await bob.waitForFunction(() => window.__notifications.length >= 1);
  await roomButton(ada, `@ ${bobName}`).click();
  await ada.getByRole("heading", { name: `@ ${bobName}` }).waitFor();
  await send(ada, "A word in private");
  await bob.waitForFunction(() => window.__notifications.length >= 2);
  await setHidden(bob, false);
  await send(ada, "Seen while bob's tab is visible");
  await unreadBadge(bob, `@ ${adaName}`, 2); // arrived, and no notification for it
  await bob.waitForTimeout(300);
  const shown = await notifications(bob);
  say({ type: "notifications", shown });
  const expected = [
    { title: `${adaName} in design`, body: `@${bobUser} can you check the colours?` },
    { title: adaName, body: "A word in private" },
  ];
  check(JSON.stringify(shown) === JSON.stringify(expected), `notifications shown: ${JSON.stringify(shown)}`);

  step("jump to the first unread message");
  await roomButton(bob, `@ ${adaName}`).click();
  await messageWith(bob, "A word in private").waitFor();
  await roomButton(ada, "design").click();
  await ada.getByRole("heading", { name: "# design" }).waitFor();
  await send(ada, "First of many: the release checklist");
  for (let n = 1; n <= 30; n++) await send(ada, `Checklist item ${n}`);
  await messageWith(ada, "Checklist item 30").waitFor();
  await unreadBadge(bob, "design", 31);
  await roomButton(bob, "design").click();
  await messageWith(bob, "Checklist item 30").waitFor();
  const jump = bob.getByRole("button", { name: /^↑ Jump to the first unread message \(31 new\)$/ });
  await jump.waitFor();
  await shot(bob, "02-bob-jump-to-first-unread");
  await jump.click();
  await jump.waitFor({ state: "hidden" });
  const first = messageWith(bob, "First of many: the release checklist");
  await bob.waitForFunction(() => {
    const node = [...document.querySelectorAll(".messages li.message")].find((li) =>
      li.textContent.includes("First of many: the release checklist"),
    );
    const list = document.querySelector(".messages");
    if (!node || !list) return false;
    const n = node.getBoundingClientRect();
    const l = list.getBoundingClientRect();
    return n.top >= l.top - 1 && n.bottom <= l.bottom + 1;
  });
  check(await first.evaluate((node) => node === document.activeElement), "the first unread message has the focus");

  step("a hidden tab that reconnects says it is away again");
  // Bob watches ada's presence on their direct room's dot.
  await waitForDot(bob, `@ ${adaName}`, "online");
  await setHidden(ada, true);
  await waitForDot(bob, `@ ${adaName}`, "away");
  await adaContext.setOffline(true);
  await ada.getByRole("status").filter({ hasText: "Offline" }).waitFor();
  await waitForDot(bob, `@ ${adaName}`, "offline");
  await adaContext.setOffline(false);
  await ada.getByRole("status").filter({ hasText: "Connected" }).waitFor();
  await waitForDot(bob, `@ ${adaName}`, "away");
  await bob.waitForTimeout(1000); // and it stays away (a new socket alone would show online)
  check((await dotOf(bob, `@ ${adaName}`)) === "away", "ada's reconnected hidden tab should stay away");
  await setHidden(ada, false);
  await waitForDot(bob, `@ ${adaName}`, "online");
  say({ type: "done", at_ms: Date.now() - started });
} catch (error) {
  for (const [i, context] of browser.contexts().entries()) {
    for (const page of context.pages())
      await page.screenshot({ path: `${artifacts}/failure-${i}.png` }).catch(() => undefined);
  }
  throw error;
} finally {
  await browser.close();
}
