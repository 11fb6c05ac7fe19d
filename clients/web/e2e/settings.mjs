// Settings in the web client, in headless Chromium (playwright-core, Debian's /usr/bin/chromium): profile (name,
// picture), sessions (list, end one), security (password, two-factor set-up with the QR code, recovery codes,
// turning it off), log out everywhere and deleting the account; each failure shows the server's message.
// Driven by tests/integration/test_web_settings.py: argv = base URL, artifacts folder and {"username",
// "password"} of an account the test made; it prints JSON lines ({"type": "need_totp", "secret"} is answered on
// stdin with {"code"}), and exits 0 when every check passed.

import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";

const [base, artifacts, config] = process.argv.slice(2);
const { username, password } = JSON.parse(config);
const newPassword = "a much longer passphrase, changed";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 15_000;
const CHROME_LINUX =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SAFARI_IPHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
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
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};

/** A 96×96 PNG with a diagonal gradient, so the server's type sniffing sees a real image. */
function png(size = 96) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
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
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8;
  header[9] = 2;
  const rows = Buffer.alloc((size * 3 + 1) * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const at = y * (size * 3 + 1) + 1 + x * 3;
      rows[at] = 200 - Math.round(((x + y) / (2 * size)) * 150);
      rows[at + 1] = 90 + Math.round((y / size) * 120);
      rows[at + 2] = 60 + Math.round((x / size) * 180);
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

async function signIn(page, secret = password) {
  await page.goto(`${base}/`);
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
}

const connected = (page) => page.getByRole("status").filter({ hasText: "Connected" }).waitFor();
const signInPage = (page) => page.getByRole("button", { name: "Sign in" }).waitFor();
const settings = (page) => page.locator("dialog.settings");
/** The server's answer under a form: an alert with exactly this text. */
const refused = (page, text) => settings(page).getByRole("alert").filter({ hasText: text }).waitFor();
const succeeded = (page, text) => settings(page).locator(".settings-outcome.ok").filter({ hasText: text }).waitFor();

async function openSettings(page, tab) {
  await page.getByRole("button", { name: "Settings", exact: true }).click();
  await settings(page).waitFor();
  if (tab) await settings(page).getByRole("button", { name: tab, exact: true }).click();
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const deskContext = await browser.newContext({
    viewport: { width: 1100, height: 820 },
    locale: "en-GB",
    userAgent: CHROME_LINUX,
  });
  const phoneContext = await browser.newContext({
    viewport: { width: 390, height: 780 },
    locale: "en-GB",
    isMobile: true,
    hasTouch: true,
    userAgent: SAFARI_IPHONE,
  });
  const desk = await deskContext.newPage();
  const phone = await phoneContext.newPage();
  for (const page of [desk, phone]) {
    page.setDefaultTimeout(TIMEOUT);
    page.on("pageerror", (error) => say({ type: "pageerror", message: String(error) }));
    page.on("console", (m) => m.type() === "error" && say({ type: "console", text: m.text() }));
  }

  step("signed in on a desktop and on a phone");
  await signIn(desk);
  await connected(desk);
  await signIn(phone);
  await connected(phone);

  step("profile: the display name, refused then saved, shows in the header");
  await openSettings(desk);
  const nameField = settings(desk).getByLabel("Display name");
  await nameField.fill("   ");
  await settings(desk).getByRole("button", { name: "Save name" }).click();
  await refused(desk, "Use 1–100 printable characters.");
  await nameField.fill("Dee Dawson");
  await settings(desk).getByRole("button", { name: "Save name" }).click();
  await succeeded(desk, "People now see you as Dee Dawson.");
  await desk.locator("header.account .display-name").filter({ hasText: "Dee Dawson" }).waitFor();

  step("profile: a file that is not an image is refused with the server's message; a PNG becomes my picture");
  const chooser = settings(desk).getByLabel("Upload a picture", { exact: true });
  await chooser.setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture\n") });
  await refused(desk, "Use a PNG, JPEG, GIF or WebP image.");
  await chooser.setInputFiles({ name: "me.png", mimeType: "image/png", buffer: png() });
  await succeeded(desk, "Your picture is updated.");
  const headerPicture = desk.locator("header.account img.avatar");
  await headerPicture.waitFor();
  await desk.waitForFunction(() => document.querySelector("header.account img.avatar")?.naturalWidth === 96);
  check(/\/api\/auth\/users\/.+\/avatar\?v=/.test(await headerPicture.getAttribute("src")), "the header's picture");
  await settings(desk).getByRole("img", { name: "Your picture (Dee Dawson)" }).waitFor();
  await shot(desk, "01-settings-profile");
  await settings(desk).getByRole("button", { name: "Remove picture" }).click();
  await succeeded(desk, "Your picture is removed.");
  await desk.locator("header.account .avatar.initial").filter({ hasText: "D" }).waitFor();
  check((await headerPicture.count()) === 0, "the removed picture is still in the header");

  step("sessions: both devices listed by name; ending the phone's signs the phone out");
  await settings(desk).getByRole("button", { name: "Sessions", exact: true }).click();
  const sessions = settings(desk).locator("li.session");
  await sessions.nth(1).waitFor();
  check((await sessions.count()) === 2, `${await sessions.count()} sessions listed, expected 2`);
  const here = sessions.filter({ hasText: "This device" });
  check((await here.locator("strong").textContent()) === "Chrome on Linux", "this device's name");
  await here.filter({ hasText: /Last used just now/ }).waitFor();
  const iphone = sessions.filter({ hasText: "Safari on iPhone" });
  await iphone.waitFor();
  await shot(desk, "02-settings-sessions");
  await iphone.getByRole("button", { name: "End session" }).click();
  await iphone.getByRole("button", { name: "Yes, end it" }).click();
  await succeeded(desk, "Ended the session on Safari on iPhone.");
  await desk.waitForFunction(() => document.querySelectorAll("dialog.settings li.session").length === 1);
  await signInPage(phone);

  step("security: a wrong current password is refused; the right one changes it");
  await settings(desk).getByRole("button", { name: "Security", exact: true }).click();
  await settings(desk).getByLabel("Current password").fill("not my password at all");
  await settings(desk).getByLabel("New password", { exact: true }).fill(newPassword);
  await settings(desk).getByLabel("New password again").fill(newPassword);
  await settings(desk).getByRole("button", { name: "Change password" }).click();
  await refused(desk, "The current password is wrong.");
  await settings(desk).getByLabel("Current password").fill(password);
  await settings(desk).getByRole("button", { name: "Change password" }).click();
  await succeeded(desk, "Password changed.");

  step("two-factor: the QR code from the server, a wrong code refused, the right one turns it on");
  await settings(desk).getByText("Two-factor sign-in is off.").waitFor();
  await settings(desk).getByRole("button", { name: "Set up two-factor sign-in" }).click();
  const qr = settings(desk).getByRole("img", { name: "QR code for your authenticator app" });
  await qr.waitFor();
  // The server's SVG, drawn as an image under the page's Content-Security-Policy.
  await desk.waitForFunction(() => (document.querySelector("dialog.settings img.qr")?.naturalWidth ?? 0) > 0);
  await settings(desk).getByText("Can't scan it? Type this key instead").click();
  const secret = (await settings(desk).getByLabel("Setup key").textContent()).replaceAll(" ", "");
  check(/^[A-Z2-7]{16,}$/.test(secret), `the setup key ${secret}`);
  await shot(desk, "03-settings-two-factor-setup");
  const codeField = settings(desk).getByLabel("Code from the app");
  await codeField.fill("12345");
  await settings(desk).getByRole("button", { name: "Turn on" }).click();
  await refused(desk, "Enter the 6-digit code your authenticator app shows.");
  const { code, wrong } = await ask({ type: "need_totp", secret });
  await codeField.fill(wrong);
  await settings(desk).getByRole("button", { name: "Turn on" }).click();
  await refused(desk, "The code is wrong, expired or already used.");
  await codeField.fill(code);
  await settings(desk).getByRole("button", { name: "Turn on" }).click();
  const codes = settings(desk).getByRole("list", { name: "Recovery codes" }).locator("li");
  await codes.nth(9).waitFor();
  check((await codes.count()) === 10, "ten recovery codes");
  const recovery = (await codes.allTextContents()).map((c) => c.trim());
  await settings(desk).getByRole("link", { name: "Download" }).waitFor();
  await shot(desk, "04-settings-recovery-codes");
  await settings(desk).getByRole("button", { name: "I have saved my codes" }).click();
  await settings(desk).getByText("Two-factor sign-in is on.").waitFor();
  await settings(desk).getByText("10 recovery codes left.").waitFor();

  step("the phone signs in with the new password and a recovery code shown once");
  await signIn(phone, newPassword);
  await phone.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
  await phone.getByLabel("Use a recovery code instead").check();
  await phone.getByLabel("Authentication code").fill(recovery[0]);
  await phone.getByRole("button", { name: "Continue" }).click();
  await connected(phone);

  step("two-factor: new recovery codes replace the old ones");
  await settings(desk).getByRole("button", { name: "Profile", exact: true }).click();
  await settings(desk).getByRole("button", { name: "Security", exact: true }).click();
  await settings(desk).getByText("9 recovery codes left.").waitFor();
  const { code: later } = await ask({ type: "need_totp", secret, next: true });
  await settings(desk).getByLabel("Code for new recovery codes").fill(later);
  await settings(desk).getByRole("button", { name: "Get new recovery codes" }).click();
  await settings(desk).getByText("New recovery codes: the old ones no longer work.").waitFor();
  await codes.nth(9).waitFor();
  const renewed = (await codes.allTextContents()).map((c) => c.trim());
  check(!renewed.some((c) => recovery.includes(c)), "the new recovery codes repeat old ones");
  await settings(desk).getByRole("button", { name: "I have saved my codes" }).click();
  await settings(desk).getByText("10 recovery codes left.").waitFor();

  step("two-factor: turning it off needs the right password");
  await settings(desk).getByLabel("Your password").fill("not my password at all");
  await settings(desk).getByRole("button", { name: "Turn off two-factor sign-in" }).click();
  await refused(desk, "The password is wrong.");
  await settings(desk).getByLabel("Your password").fill(newPassword);
  await settings(desk).getByRole("button", { name: "Turn off two-factor sign-in" }).click();
  await succeeded(desk, "Two-factor sign-in is off.");
  await settings(desk).getByRole("button", { name: "Set up two-factor sign-in" }).waitFor();

  step("end all other sessions: the phone is signed out, this device stays");
  await settings(desk).getByRole("button", { name: "Sessions", exact: true }).click();
  await settings(desk).getByText("Safari on iPhone").waitFor();
  await settings(desk).getByRole("button", { name: "End all other sessions" }).click();
  await settings(desk).getByRole("button", { name: "Yes, end the others" }).click();
  await succeeded(desk, "1 other session ended.");
  await signInPage(phone);
  await connected(desk);

  step("settings on a phone");
  await signIn(phone, newPassword);
  await connected(phone);
  await openSettings(phone, "Sessions");
  await settings(phone).getByText("Safari on iPhone").waitFor();
  await shot(phone, "06-settings-sessions-phone");

  step("log out everywhere: both devices are signed out");
  await settings(desk).getByRole("button", { name: "Profile", exact: true }).click();
  await settings(desk).getByRole("button", { name: "Sessions", exact: true }).click();
  await settings(desk).getByText("Safari on iPhone").waitFor();
  await settings(desk).getByRole("button", { name: "Log out everywhere" }).click();
  await settings(desk).getByRole("button", { name: "Yes, log out everywhere" }).click();
  await desk.getByText("You are signed out on every device.").waitFor();
  await signInPage(desk);
  await signInPage(phone);
  // The dialogs go with the app: here after the click, on the phone after its socket heard the session end.
  await settings(desk).waitFor({ state: "detached" });
  await settings(phone).waitFor({ state: "detached" });

  step("sign out here, from the list: a reload does not bring the session back");
  await signIn(desk, newPassword);
  await connected(desk);
  await openSettings(desk, "Sessions");
  const only = settings(desk).locator("li.session");
  await only.filter({ hasText: "This device" }).getByRole("button", { name: "Sign out here" }).click();
  await only.getByRole("button", { name: "Yes, sign out" }).click();
  await desk.getByText("You signed out of this device.").waitFor();
  await desk.reload();
  await signInPage(desk);

  step("delete account: the username typed out, a wrong password refused, then gone");
  await signIn(desk, newPassword);
  await connected(desk);
  await openSettings(desk, "Delete account");
  await settings(desk).getByLabel("Type your username to confirm").fill("someone-else");
  await settings(desk).getByLabel("Your password").fill(newPassword);
  await settings(desk).getByRole("button", { name: "Delete my account" }).click();
  await refused(desk, `Type your username, ${username}, to confirm.`);
  await settings(desk).getByLabel("Type your username to confirm").fill(username);
  await settings(desk).getByLabel("Your password").fill("not my password at all");
  await settings(desk).getByRole("button", { name: "Delete my account" }).click();
  await refused(desk, "The password is wrong.");
  await shot(desk, "05-settings-delete-account");
  await settings(desk).getByLabel("Your password").fill(newPassword);
  await settings(desk).getByRole("button", { name: "Delete my account" }).click();
  await desk.getByText("Your account is deleted.").waitFor();
  await settings(desk).waitFor({ state: "detached" });
  await signIn(desk, newPassword);
  await desk.getByRole("alert").filter({ hasText: "Wrong email, username or password." }).waitFor();
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
