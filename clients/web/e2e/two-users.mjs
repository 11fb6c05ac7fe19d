// Two people chat through the web client in headless Chromium (playwright-core, Debian's /usr/bin/chromium).
// Driven by tests/integration/test_web_client.py: argv = base URL and artifacts folder; it prints JSON lines
// ({"type": "need_code", "email"} is answered on stdin with {"code"}), and exits 0 when every check passed.

import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";

const [base, artifacts, config] = process.argv.slice(2);
const { two_factor_user: twoFactorUser, recovery_code: recoveryCode } = JSON.parse(config ?? "{}");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 15_000;
mkdirSync(artifacts, { recursive: true });

const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const answers = createInterface({ input: process.stdin });
const waiting = [];
answers.on("line", (line) => waiting.shift()?.(JSON.parse(line)));
const ask = (question) =>
  new Promise((resolve) => {
    waiting.push(resolve);
    say(question);
  });

const started = Date.now();
const step = (name) => say({ type: "step", name, at_ms: Date.now() - started });
const shot = async (page, name) => {
  const path = `${artifacts}/${name}.png`;
  await page.screenshot({ path });
  say({ type: "screenshot", path });
};

async function signUp(page, name) {
  await page.goto(`${base}/`);
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Email", { exact: true }).fill(`${name}@example.com`);
  await page.getByLabel("Username", { exact: true }).fill(name);
  await page.getByLabel("Password", { exact: true }).fill("correct horse battery staple");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByLabel("Verification code").waitFor();
  // Where the code is: the email, and on this dev-mode server the terminal line and the mailbox page.
  await page
    .getByRole("status")
    .filter({ hasText: `We sent a 6-digit code to ${name}@example.com.` })
    .waitFor();
  await page.getByText(`code for ${name}@example.com: 123456`).waitFor();
  await page.getByRole("link", { name: "dev mailbox page" }).waitFor();
  if (name === "bob") await shot(page, "00-bob-verify-email-phone");
  const { code } = await ask({ type: "need_code", email: `${name}@example.com` });
  await page.getByLabel("Verification code").fill(code);
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("status").filter({ hasText: "Connected" }).waitFor();
}

/** A small valid PNG (a blue gradient), so the server's type sniffing sees a real image. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = y * (width * 3 + 1) + 1 + x * 3;
      rows[at] = 31 + Math.round((x / width) * 120);
      rows[at + 1] = 79 + Math.round((y / height) * 100);
      rows[at + 2] = 209;
    }
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Password, then the second-factor step (with a recovery code); the page offers Google sign-in too. */
async function signInWithTwoFactor(page, name) {
  await page.goto(`${base}/`);
  await page.getByRole("link", { name: "Sign in with Google" }).waitFor();
  await page.getByLabel("Username or email").fill(name);
  await page.getByLabel("Password", { exact: true }).fill("correct horse battery staple");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
  await page.getByLabel("Use a recovery code instead").check();
  await page.getByLabel("Authentication code").fill(recoveryCode);
  await shot(page, "00-cy-two-factor-step");
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("status").filter({ hasText: "Connected" }).waitFor();
}

/** A room's messages as stored, oldest first, read through the history API with a session of Ada's own (the
 * page's access token lives in its memory only). */
async function storedHistory(roomId) {
  const login = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ identifier: "ada", password: "correct horse battery staple" }),
  });
  if (!login.ok) throw new Error(`sign-in for the history check: ${login.status}`);
  const { access_token: token } = await login.json();
  const page = await fetch(`${base}/api/messages/rooms/${roomId}/messages?limit=100`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!page.ok) throw new Error(`history: ${page.status}`);
  return (await page.json()).items.sort((a, b) => a.seq - b.seq);
}

const messageWith = (page, text) => page.locator(".messages li.message").filter({ hasText: text });

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const adaContext = await browser.newContext({ viewport: { width: 1100, height: 820 }, locale: "en-GB" });
  const bobContext = await browser.newContext({
    viewport: { width: 390, height: 780 },
    locale: "en-GB",
    isMobile: true,
    hasTouch: true,
  });
  const ada = await adaContext.newPage();
  const bob = await bobContext.newPage();
  for (const page of [ada, bob]) {
    page.setDefaultTimeout(TIMEOUT);
    page.on("dialog", (dialog) => void dialog.accept()); // "Delete this message?"
    page.on("pageerror", (error) => say({ type: "pageerror", message: String(error) }));
    page.on("console", (m) => m.type() === "error" && say({ type: "console", text: m.text() }));
  }

  step("sign up (two people) and sign in with the second factor (a third)");
  const cyContext = await browser.newContext({ viewport: { width: 900, height: 700 }, locale: "en-GB" });
  const cy = await cyContext.newPage();
  cy.setDefaultTimeout(TIMEOUT);
  cy.on("pageerror", (error) => say({ type: "pageerror", message: String(error) }));
  await Promise.all([signUp(ada, "ada"), signUp(bob, "bob"), signInWithTwoFactor(cy, twoFactorUser)]);
  await cyContext.close();
  await shot(bob, "01-bob-signed-in-phone");

  step("ada creates a public room");
  await ada.getByRole("button", { name: "New room" }).click();
  await ada.getByLabel("Name", { exact: true }).fill("general");
  await ada.getByLabel("Topic (optional)").fill("Everything and nothing");
  await ada.getByRole("button", { name: "Create room" }).click();
  await ada.getByRole("heading", { name: "# general" }).waitFor();

  step("bob finds it in the directory and joins");
  await bob.getByRole("button", { name: "Browse rooms" }).click();
  await bob.getByLabel("Search rooms").fill("gen");
  await bob.locator(".dir-item").filter({ hasText: "general" }).getByRole("button", { name: "Join" }).click();
  await bob.getByRole("heading", { name: "# general" }).waitFor();
  await ada.getByRole("note").filter({ hasText: "bob joined" }).waitFor(); // live, from the room:event

  step("they chat");
  await ada.getByLabel("Message", { exact: true }).fill("Hello Bob! Welcome to <b>general</b>");
  await ada.getByLabel("Message", { exact: true }).press("Enter");
  await messageWith(bob, "Hello Bob!").waitFor();
  // Rendered as text, never as HTML.
  const body = await messageWith(bob, "Hello Bob!").locator(".body").textContent();
  if (body !== "Hello Bob! Welcome to <b>general</b>") throw new Error(`body rendered as ${body}`);
  if (await bob.locator(".messages b").count()) throw new Error("a message body was rendered as HTML");

  await bob.getByLabel("Message", { exact: true }).fill("Hi Ada");
  await ada.getByText("bob is typing…").waitFor(); // the name comes from the rooms service's user lookup
  await bob.getByLabel("Message", { exact: true }).press("Enter");
  await messageWith(ada, "Hi Ada").waitFor();
  // Bob has the room open at the end: Ada's message shows as read.
  await messageWith(ada, "Hello Bob!").getByLabel("Read", { exact: true }).waitFor();
  // In more than colour: each receipt has its own mark.
  const readMark = await messageWith(ada, "Hello Bob!").getByLabel("Read", { exact: true }).textContent();
  if (readMark !== "✓✓ Read") throw new Error(`a read receipt shows as ${JSON.stringify(readMark)}`);

  step("reaction and reply");
  await messageWith(bob, "Hello Bob!").getByRole("button", { name: "React", exact: true }).click();
  await messageWith(bob, "Hello Bob!").getByRole("button", { name: "React with 👍" }).click();
  await messageWith(ada, "Hello Bob!").getByRole("button", { name: /👍 1/ }).waitFor();
  await messageWith(ada, "Hi Ada").getByRole("button", { name: "Reply" }).click();
  await ada.getByLabel("Message", { exact: true }).fill("Glad you made it");
  await ada.getByLabel("Message", { exact: true }).press("Enter");
  await messageWith(bob, "Glad you made it").locator(".reply-to").filter({ hasText: "Hi Ada" }).waitFor();

  step("bob goes offline; ada keeps writing; bob writes too");
  await bobContext.setOffline(true);
  await bob.getByRole("status").filter({ hasText: "Offline" }).waitFor();
  for (const n of [1, 2, 3]) {
    await ada.getByLabel("Message", { exact: true }).fill(`While you were away ${n}`);
    await ada.getByLabel("Message", { exact: true }).press("Enter");
    await messageWith(ada, `While you were away ${n}`).getByLabel("Sent", { exact: true }).waitFor();
  }
  const sentMark = await messageWith(ada, "While you were away 1").getByLabel("Sent", { exact: true }).textContent();
  if (sentMark !== "✓") throw new Error(`a sent receipt shows as ${JSON.stringify(sentMark)}`);
  await bob.getByLabel("Message", { exact: true }).fill("Typed on the train");
  await bob.getByLabel("Message", { exact: true }).press("Enter");
  await bob.locator(".message.pending").filter({ hasText: "Typed on the train" }).waitFor();
  await shot(bob, "02-bob-offline-phone");

  step("bob comes back: recovery and the queued message");
  await bobContext.setOffline(false);
  await bob.getByRole("status").filter({ hasText: "Connected" }).waitFor();
  for (const n of [1, 2, 3]) await messageWith(bob, `While you were away ${n}`).waitFor();
  await messageWith(ada, "Typed on the train").waitFor();
  await bob.locator(".message.pending").waitFor({ state: "detached" });
  const seen = await bob.locator(".messages li.message .body").allTextContents();
  const missed = seen.filter((t) => t.startsWith("While you were away"));
  if (missed.join("|") !== "While you were away 1|While you were away 2|While you were away 3") {
    throw new Error(`bob saw the missed messages as ${JSON.stringify(missed)}`);
  }
  await shot(bob, "03-bob-recovered-phone");

  step("edit, delete and an image attachment");
  await messageWith(ada, "While you were away 3").getByRole("button", { name: "Edit" }).click();
  await ada.getByLabel("Message", { exact: true }).fill("While you were away 3 (and a bit)");
  await ada.getByLabel("Message", { exact: true }).press("Enter");
  await messageWith(bob, "While you were away 3 (and a bit)").getByText("(edited)").waitFor();
  await messageWith(ada, "While you were away 2").getByRole("button", { name: "Delete" }).click();
  await bob.getByText("This message was deleted.").waitFor();
  await ada.getByLabel("Attach files").setInputFiles({ name: "sky.png", mimeType: "image/png", buffer: png(160, 100) });
  await ada.getByRole("list", { name: "Files to send" }).getByText("sky.png").waitFor();
  await ada.getByLabel("Message", { exact: true }).fill("Look at this sky");
  await ada.getByLabel("Message", { exact: true }).press("Enter");
  await messageWith(bob, "Look at this sky").getByRole("img", { name: "Image: sky.png" }).waitFor();
  await messageWith(ada, "Look at this sky").getByRole("img", { name: "Image: sky.png" }).waitFor();
  await ada.mouse.move(0, 0);
  await ada.waitForTimeout(200); // the image decodes and the list settles at the bottom
  await shot(ada, "04-ada-desktop-conversation");

  step("unread badge and the new-messages divider");
  await bob.getByRole("button", { name: "← Rooms" }).click();
  await ada.getByLabel("Message", { exact: true }).fill("Are you still there?");
  await ada.getByLabel("Message", { exact: true }).press("Enter");
  await bob.getByLabel("1 unread").waitFor();
  await shot(bob, "05-bob-room-list-unread-phone");
  await bob.locator("button.room").filter({ hasText: "general" }).click();
  await bob.getByRole("separator", { name: "New messages" }).waitFor();
  await messageWith(ada, "Are you still there?").getByLabel("Read", { exact: true }).waitFor();

  step("a reload restores the session from the refresh cookie, and the join notice with the history");
  await ada.reload();
  await ada.getByRole("status").filter({ hasText: "Connected" }).waitFor();
  await ada.locator("button.room").filter({ hasText: "general" }).click();
  await messageWith(ada, "Look at this sky").getByRole("img", { name: "Image: sky.png" }).waitFor();
  await messageWith(ada, "Typed on the train").waitFor();
  await ada.getByRole("note").filter({ hasText: "bob joined" }).waitFor(); // from the room's activity, with history
  await ada.locator(".messages").evaluate((el) => (el.scrollTop = el.scrollHeight));
  await ada.waitForTimeout(300); // the image decodes
  await shot(ada, "06-ada-desktop-after-reload");
  step("password room: join with the password, then kick and ban");
  await ada.getByRole("button", { name: "New room" }).click();
  await ada.getByLabel("Name", { exact: true }).fill("secret");
  await ada.getByLabel("Kind").selectOption("password");
  await ada.getByLabel("Room password").fill("open sesame");
  await ada.getByRole("button", { name: "Create room" }).click();
  await ada.getByRole("heading", { name: "# secret" }).waitFor();
  const joinSecret = async (password, how = "click") => {
    const back = bob.getByRole("button", { name: "← Rooms" });
    if (await back.isVisible()) await back.click();
    await bob.getByRole("button", { name: "Browse rooms" }).click();
    await bob.getByLabel("Search rooms").fill("secret");
    const item = bob.locator(".dir-item").filter({ hasText: "secret" });
    await item.getByLabel("Password for secret").fill(password);
    if (how === "enter") await item.getByLabel("Password for secret").press("Enter");
    else await item.getByRole("button", { name: "Join" }).click();
  };
  // Enter in the password field joins; an empty password is asked for, not called wrong.
  await joinSecret("", "enter");
  await bob.getByRole("dialog").getByRole("alert").filter({ hasText: "Enter the room's password." }).waitFor();
  await bob.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  await joinSecret("wrong guess", "enter");
  await bob.getByRole("dialog").getByRole("alert").filter({ hasText: "The room password is wrong." }).waitFor();
  await bob.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  await joinSecret("open sesame");
  await bob.getByRole("heading", { name: "# secret" }).waitFor();
  await ada.getByRole("button", { name: "Members & moderation" }).click();
  const bobRow = ada.getByRole("dialog").locator("li.member").filter({ hasNotText: "(you)" });
  await bobRow.getByRole("button", { name: "Kick" }).click();
  await bob.getByRole("heading", { name: "# secret" }).waitFor({ state: "detached" });
  await bobRow.waitFor({ state: "detached" });
  await ada.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  await joinSecret("open sesame");
  await bob.getByRole("heading", { name: "# secret" }).waitFor();
  await ada.getByRole("button", { name: "Members & moderation" }).click();
  await bobRow.getByRole("button", { name: "Ban" }).click();
  await bob.getByRole("heading", { name: "# secret" }).waitFor({ state: "detached" });
  await ada.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  await joinSecret("open sesame");
  await bob.getByRole("dialog").getByRole("alert").filter({ hasText: /bann/i }).waitFor();
  await bob.getByRole("dialog").getByRole("button", { name: "Close" }).click();

  step("direct message from the member list");
  await ada.locator("button.room").filter({ hasText: "general" }).click();
  await ada.getByRole("button", { name: "Members & moderation" }).click();
  await ada
    .getByRole("dialog")
    .locator("li.member")
    .filter({ hasNotText: "(you)" })
    .getByRole("button", { name: "Message" })
    .click();
  await ada.getByRole("heading", { name: /^@ / }).waitFor();
  await ada.getByLabel("Message", { exact: true }).fill("Just between us");
  await ada.getByLabel("Message", { exact: true }).press("Enter");
  // room:added puts the direct room in Bob's list at once (the fallback re-read is a minute away), named by
  // the user lookup.
  await bob.locator("button.room").filter({ hasText: "@ ada" }).getByLabel("1 unread").waitFor({ timeout: 20_000 });
  await bob.locator("button.room").filter({ hasText: "@" }).click();
  await messageWith(bob, "Just between us").waitFor();

  step("sixty messages typed as fast as possible are stored in the order typed (default rate limits)");
  // The server allows a burst of sends, then about one a second: most of these wait out a rate limit. Halfway
  // through Ada loses the connection for a moment, so the message on the wire is sent again after reconnecting.
  const typed = Array.from({ length: 60 }, (_, i) => `bulk ${i + 1}`);
  const box = ada.getByLabel("Message", { exact: true });
  for (const text of typed) {
    await box.fill(text);
    await box.press("Enter");
  }
  const pendingLabels = () => ada.locator(".message.pending .meta .muted").allTextContents();
  let slowedShown = false;
  let wentOffline = false;
  const flushDeadline = Date.now() + 150_000;
  for (let left = typed.length; left > 0; left = await ada.locator(".message.pending").count()) {
    const labels = await pendingLabels();
    // Connected: a rate limit shows as one, with its wait, never as waiting for the connection.
    if (labels.some((l) => l.startsWith("Waiting for the connection")))
      throw new Error(`online, yet: ${labels.join(" | ")}`);
    if (labels.some((l) => /^Sending slowed: retrying in \d+ s$/.test(l)) && !slowedShown) {
      slowedShown = true;
      // Also above the composer, wherever the list is scrolled.
      await ada
        .locator(".send-status")
        .filter({ hasText: /^Sending slowed: retrying in \d+ s · \d+ messages to send, in order$/ })
        .waitFor();
      await shot(ada, "07-ada-sending-slowed");
    }
    if (!wentOffline && left <= 40) {
      wentOffline = true;
      await adaContext.setOffline(true);
      await ada.getByRole("status").filter({ hasText: "Offline" }).waitFor();
      await ada.locator(".message.pending").filter({ hasText: "Waiting for the connection…" }).first().waitFor();
      await adaContext.setOffline(false);
      await ada.getByRole("status").filter({ hasText: "Connected" }).waitFor();
    }
    if (Date.now() > flushDeadline) throw new Error(`${left} messages still pending: ${labels.join(" | ")}`);
    await ada.waitForTimeout(250);
  }
  if (!slowedShown) throw new Error("the rate limit was never shown as one");
  const directRoom = new URL(ada.url()).pathname.split("/").pop();
  const stored = (await storedHistory(directRoom)).map((m) => m.body).filter((b) => b.startsWith("bulk "));
  say({ type: "stored_order", count: stored.length });
  if (stored.join("|") !== typed.join("|")) throw new Error(`stored out of order: ${stored.join(",")}`);

  step("history pages: infinite scroll back to the first message");
  await bob.reload(); // a fresh page at /rooms/<id>: the session comes back and the room shows its newest 50
  await bob.getByRole("status").filter({ hasText: "Connected" }).waitFor();
  await bob.getByRole("heading", { name: /^@ / }).waitFor();
  await messageWith(bob, "bulk 60").waitFor();
  if (await messageWith(bob, "Just between us").count()) throw new Error("the first page should not reach the start");
  await bob.locator(".messages").evaluate((el) => (el.scrollTop = 0));
  await messageWith(bob, "bulk 1").first().waitFor();
  await messageWith(bob, "Just between us").waitFor();
  await bob.getByText("This is the beginning of the room.").waitFor();
  const order = (await bob.locator(".messages li.message .body").allTextContents()).filter((t) =>
    t.startsWith("bulk "),
  );
  if (order.join("|") !== typed.join("|")) throw new Error(`history out of order: ${order.join(",")}`);

  step("token refresh: auth:expiring every few seconds with short-lived tokens");
  // Each one makes the page refresh over HTTP (the cookie) and send auth:refresh on its socket; two in a row
  // prove the socket kept working with the refreshed token.
  const refreshed = () =>
    performance
      .getEntriesByType("resource")
      .filter((e) => e.name.endsWith("/api/auth/token/refresh") && e.responseStatus === 200).length;
  await bob
    .waitForFunction(
      () =>
        performance
          .getEntriesByType("resource")
          .filter((e) => e.name.endsWith("/api/auth/token/refresh") && e.responseStatus === 200).length >= 2,
      null,
      { timeout: 20_000 },
    )
    .catch(() => undefined); // reported just below
  const count = await bob.evaluate(refreshed);
  say({ type: "token_refreshes", page: "bob", count });
  if (count < 2) throw new Error(`bob's page refreshed its token ${count} times; auth:expiring should have come twice`);
  await ada.getByLabel("Message", { exact: true }).fill("Still here after the token refreshes");
  await ada.getByLabel("Message", { exact: true }).press("Enter");
  await messageWith(bob, "Still here after the token refreshes").waitFor();
  say({ type: "done", at_ms: Date.now() - started });
} catch (error) {
  for (const [i, context] of browser.contexts().entries()) {
    for (const page of context.pages())
      await page.screenshot({ path: `${artifacts}/failure-${i}.png` }).catch(() => undefined);
  }
  throw error;
} finally {
  await browser.close();
  answers.close();
}
