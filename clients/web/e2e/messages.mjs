// The message features of the web client in headless Chromium (playwright-core, Debian's /usr/bin/chromium):
// safe Markdown against an XSS corpus, grouping, join/leave/kick/rename notices, drafts across reloads, mentions
// (autocomplete, highlight, the room list's count), who reacted and the emoji picker, and search.
// Driven by tests/integration/test_web_messages.py: argv = base URL, artifacts folder and a JSON config with the
// two accounts' names and password (made by the test). Prints JSON lines; exits 0 when every check passed.

import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, artifacts, config] = process.argv.slice(2);
const { owner, guest, password } = JSON.parse(config);
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 15_000;
mkdirSync(artifacts, { recursive: true });

const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
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

/** Markup a message must never turn into elements, attributes or script: raw HTML, script-bearing URLs, attribute
 * break-outs, and HTML inside Markdown, links and code. */
const XSS = [
  "<script>window.__pwned('script')</script>",
  "<img src=x onerror=\"window.__pwned('img')\">",
  "<svg onload=window.__pwned('svg')></svg> **<b onmouseover=alert(1)>bold?</b>**",
  "[click](javascript:window.__pwned('link')) and [data](data:text/html,<script>alert(1)</script>)",
  '[x](https://example.com/" onmouseover="window.__pwned(\'attr\')) https://example.com/"><img src=x onerror=alert(1)>',
  '<a href="javascript:alert(1)">a</a> <iframe src="javascript:alert(1)"></iframe> <style>body{display:none}</style>',
  "```\n<script>window.__pwned('code')</script>\n```\n`<img src=x onerror=alert(1)>` @ <b>@ben</b>",
  "_*__**nested <u>deep</u>**__*_ [**bold link**](https://example.com/ok) mailto:someone@example.com",
];

/** The only elements and attributes the Markdown module makes, and which link targets it allows. */
const ALLOWED = {
  STRONG: [],
  EM: [],
  CODE: [],
  PRE: [],
  SPAN: ["class", "data-username"],
  A: ["href", "title", "rel", "target"],
};

async function signIn(page, name) {
  await page.goto(`${base}/`);
  await page.getByLabel("Username or email").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("status").filter({ hasText: "Connected" }).waitFor();
}

/** A session of `name`'s own for API calls the scenario makes outside the page (the page's token is in memory). */
async function apiAs(name) {
  const login = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ identifier: name, password }),
  });
  check(login.ok, `sign-in for the API: ${login.status}`);
  const { access_token: token } = await login.json();
  return async (method, path, body) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? null : response.json();
  };
}

const box = (page) => page.getByLabel("Message", { exact: true });
async function send(page, text) {
  await box(page).fill(text);
  await box(page).press("Enter");
}
const messageWith = (page, text) => page.locator(".messages li.message").filter({ hasText: text });
const notice = (page, text) => page.locator(".messages li.room-notice").filter({ hasText: text });

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const ownerContext = await browser.newContext({ viewport: { width: 1100, height: 820 }, locale: "en-GB" });
  const guestContext = await browser.newContext({ viewport: { width: 1000, height: 780 }, locale: "en-GB" });
  const ann = await ownerContext.newPage();
  const ben = await guestContext.newPage();
  const pwned = [];
  for (const [who, page] of [
    ["owner", ann],
    ["guest", ben],
  ]) {
    page.setDefaultTimeout(TIMEOUT);
    // Anything the corpus manages to run calls this, or opens a dialog; "Leave …?" is the only dialog expected.
    await page.exposeFunction("__pwned", (what) => pwned.push(`${who}: ${what}`));
    page.on("dialog", (dialog) => {
      if (!dialog.message().startsWith("Leave ")) pwned.push(`${who}: dialog ${dialog.message()}`);
      void dialog.accept();
    });
    page.on("pageerror", (error) => say({ type: "pageerror", message: String(error) }));
    page.on("console", (m) => m.type() === "error" && say({ type: "console", text: m.text() }));
  }

  step("both sign in; the owner creates a room and the guest joins it (a join notice)");
  await Promise.all([signIn(ann, owner), signIn(ben, guest)]);
  await ann.getByRole("button", { name: "New room" }).click();
  await ann.getByLabel("Name", { exact: true }).fill("lobby");
  await ann.getByRole("button", { name: "Create room" }).click();
  await ann.getByRole("heading", { name: "# lobby" }).waitFor();
  const roomId = new URL(ann.url()).pathname.split("/").pop();
  await ben.getByRole("button", { name: "Browse rooms" }).click();
  await ben.getByLabel("Search rooms").fill("lobby");
  await ben.locator(".dir-item").filter({ hasText: "lobby" }).getByRole("button", { name: "Join" }).click();
  await ben.getByRole("heading", { name: "# lobby" }).waitFor();
  await notice(ann, `${guest} joined`).waitFor();

  step("an XSS corpus renders as text and safe Markdown only");
  await send(ann, "zebrafish are **striped** and `fast`\n```\nconst x = 1 < 2;\n```");
  for (const payload of XSS) await send(ann, payload);
  await messageWith(ben, "mailto:someone@example.com").waitFor();
  const strong = messageWith(ben, "zebrafish are").locator(".body strong");
  check((await strong.textContent()) === "striped", "**striped** is not bold");
  check(
    (await messageWith(ben, "zebrafish are").locator(".body pre").textContent()) === "const x = 1 < 2;",
    "no code block",
  );
  check(
    (await messageWith(ben, "<script>window.__pwned('script')</script>").locator(".body").textContent()) ===
      "<script>window.__pwned('script')</script>",
    "a script tag did not stay text",
  );
  for (const page of [ann, ben]) {
    const found = await page.locator(".messages .body").evaluateAll((bodies, allowed) => {
      const bad = [];
      for (const body of bodies)
        for (const el of body.querySelectorAll("*")) {
          const attrs = allowed[el.tagName];
          if (!attrs) bad.push(`element ${el.tagName}`);
          else for (const attr of el.getAttributeNames()) if (!attrs.includes(attr)) bad.push(`${el.tagName}[${attr}]`);
          if (el.tagName === "A" && !/^(https?:|mailto:)/.test(el.getAttribute("href") ?? ""))
            bad.push(`href ${el.getAttribute("href")}`);
        }
      return bad;
    }, ALLOWED);
    check(found.length === 0, `unexpected markup in message bodies: ${found.join(", ")}`);
  }
  check(
    (await ben.locator(".messages .body a[href='https://example.com/ok']").count()) === 1,
    "a safe link is not a link",
  );
  await shot(ben, "01-markdown-and-xss-corpus");

  step("one author's consecutive messages are grouped");
  await send(ann, "group one");
  await send(ann, "group two");
  await messageWith(ben, "group two").waitFor();
  check(await messageWith(ben, "group two").evaluate((li) => li.classList.contains("continued")), "not grouped");
  await send(ben, "my turn");
  await messageWith(ann, "my turn").waitFor();
  check(
    !(await messageWith(ann, "my turn").evaluate((li) => li.classList.contains("continued"))),
    "grouped across authors",
  );
  check(
    (await messageWith(ann, "group two").locator("strong.sr-only").count()) === 1,
    "a grouped message shows its author",
  );

  step("a draft is kept across a reload and cleared on send");
  await box(ann).fill("half-written thought");
  await ann.reload();
  await ann.getByRole("heading", { name: "# lobby" }).waitFor();
  check((await box(ann).inputValue()) === "half-written thought", "the draft was lost on reload");
  await box(ann).press("Enter");
  await messageWith(ben, "half-written thought").waitFor();
  await ann.reload();
  await ann.getByRole("heading", { name: "# lobby" }).waitFor();
  await messageWith(ann, "half-written thought").waitFor();
  check((await box(ann).inputValue()) === "", "the draft stayed after sending");

  step("mentions: autocomplete, highlight, and the room list's count");
  await ann.getByRole("button", { name: "New room" }).click();
  await ann.getByLabel("Name", { exact: true }).fill("quiet");
  await ann.getByRole("button", { name: "Create room" }).click();
  await ann.getByRole("heading", { name: "# quiet" }).waitFor();
  await box(ben).fill(`ping @${owner.slice(0, 2)}`);
  const option = ben.getByRole("option", { name: new RegExp(`@${owner}`) });
  await option.waitFor();
  await shot(ben, "02-mention-autocomplete");
  await box(ben).press("Enter"); // picks, does not send
  check((await box(ben).inputValue()) === `ping @${owner} `, `autocomplete wrote ${await box(ben).inputValue()}`);
  await box(ben).pressSequentially("have a look");
  await box(ben).press("Enter");
  const lobbyButton = ann.locator(`button[data-room="${roomId}"]`);
  await lobbyButton.getByLabel("1 mention of you").waitFor();
  await lobbyButton.click();
  await messageWith(ann, "have a look").locator(".mention.mention-me").waitFor();
  check(
    await messageWith(ann, "have a look").evaluate((li) => li.classList.contains("mentions-me")),
    "not highlighted",
  );
  await lobbyButton.getByLabel("1 mention of you").waitFor({ state: "detached" });

  step("who reacted, and the emoji picker");
  const target = messageWith(ben, "group one");
  await target.hover();
  await target.getByRole("button", { name: "React", exact: true }).click();
  await target.getByRole("button", { name: "More emoji" }).click();
  await target.getByRole("button", { name: "React with 🚀" }).click();
  const reaction = messageWith(ann, "group one").getByRole("button", { name: /🚀 1/ });
  await reaction.waitFor();
  await reaction.hover();
  await messageWith(ann, "group one")
    .getByRole("tooltip")
    .filter({ hasText: `${guest} reacted with 🚀` })
    .waitFor({
      state: "visible",
    });
  await shot(ann, "03-who-reacted");

  step("search finds a message and opens the room at it");
  await ann.getByRole("button", { name: "Search", exact: true }).click();
  await ann.getByRole("searchbox", { name: "Search messages" }).fill("zebrafish");
  await ann.getByRole("searchbox", { name: "Search messages" }).press("Enter");
  const hit = ann.locator(".search-result").filter({ hasText: "zebrafish are" });
  await hit.waitFor();
  check((await hit.locator(".body strong").textContent()) === "striped", "a search result is not rendered as Markdown");
  await ann.getByText("1 message found.").waitFor();
  await shot(ann, "04-search");
  await hit.getByRole("button", { name: "Open" }).click();
  await ann.locator(".messages li.message.found").filter({ hasText: "zebrafish are" }).waitFor();

  step("leave, join, kick and rename notices");
  await ben.getByRole("button", { name: "Leave", exact: true }).click();
  await notice(ann, `${guest} left`).waitFor();
  await ben.getByRole("button", { name: "Browse rooms" }).click();
  await ben.getByLabel("Search rooms").fill("lobby");
  await ben.locator(".dir-item").filter({ hasText: "lobby" }).getByRole("button", { name: "Join" }).click();
  await ben.getByRole("heading", { name: "# lobby" }).waitFor();
  // The first join came back with the history after the reload above (the server keeps the room's activity);
  // the rejoin is the second, after the leave.
  await ann.waitForFunction(
    ([who, wanted]) =>
      [...document.querySelectorAll(".messages li.room-notice")]
        .map((li) => li.textContent.split(" · ")[0])
        .filter((text) => text.startsWith(`${who} `))
        .join("|") === wanted,
    [guest, [`${guest} joined`, `${guest} left`, `${guest} joined`].join("|")],
  );
  const asOwner = await apiAs(owner);
  const guestUser = await asOwner("GET", `/api/rooms/users/by-username/${guest}`);
  await asOwner("POST", `/api/rooms/${roomId}/members/${guestUser.user_id}/kick`, {});
  await notice(ann, `${owner} removed ${guest}`).waitFor();
  await asOwner("PATCH", `/api/rooms/${roomId}`, { name: "lounge" });
  await notice(ann, `${owner} renamed the room to lounge`).waitFor();
  await ann.getByRole("heading", { name: "# lounge" }).waitFor();
  await ann.locator(".messages").evaluate((el) => {
    el.scrollTop = el.scrollHeight;
  });
  await shot(ann, "05-notices");

  check(pwned.length === 0, `the corpus ran: ${pwned.join("; ")}`);
  step("done");
  say({ type: "done" });
} finally {
  await browser.close();
}
