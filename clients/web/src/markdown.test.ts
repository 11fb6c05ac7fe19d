// The Markdown subset of message bodies: what it formats, what stays text, and that no body, however hostile,
// becomes markup, a script URL, or a stalled page. Rendering is checked on a recording document whose elements
// refuse innerHTML and friends, so these tests need no browser environment.

import { describe, expect, it } from "vitest";
import { type Block, type NodeFactory, parseMessage, renderBlocks, renderMessage, safeHref } from "./markdown";

// ---- a recording document ----

class FakeNode {
  readonly children: FakeNode[] = [];
  appendChild(child: FakeNode): FakeNode {
    this.children.push(child);
    return child;
  }
}

class FakeText extends FakeNode {
  constructor(readonly data: string) {
    super();
  }
}

class FakeElement extends FakeNode {
  readonly attributes: [string, string][] = [];
  constructor(readonly tag: string) {
    super();
  }
  setAttribute(name: string, value: string): void {
    this.attributes.push([name, value]);
  }
  set innerHTML(_html: string) {
    throw new Error("innerHTML must never be used");
  }
  set outerHTML(_html: string) {
    throw new Error("outerHTML must never be used");
  }
  insertAdjacentHTML(): void {
    throw new Error("insertAdjacentHTML must never be used");
  }
}

const fakeDocument = {
  createElement: (tag: string) => new FakeElement(tag),
  createTextNode: (data: string) => new FakeText(data),
  createDocumentFragment: () => new FakeNode(),
};

function render(body: string): FakeNode {
  return renderMessage(body, fakeDocument as unknown as NodeFactory) as unknown as FakeNode;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The rendered nodes as HTML, text escaped: what a browser would show for them. */
function html(node: FakeNode): string {
  if (node instanceof FakeText) return escapeHtml(node.data);
  const inner = node.children.map(html).join("");
  if (!(node instanceof FakeElement)) return inner;
  const attributes = node.attributes.map(([name, value]) => ` ${name}="${escapeHtml(value)}"`).join("");
  return `<${node.tag}${attributes}>${inner}</${node.tag}>`;
}

function show(body: string): string {
  return html(render(body));
}

function textOf(node: FakeNode): string {
  return node instanceof FakeText ? node.data : node.children.map(textOf).join("");
}

function elements(node: FakeNode, depth = 0): { element: FakeElement; depth: number }[] {
  const here = node instanceof FakeElement ? [{ element: node, depth }] : [];
  const below = node instanceof FakeElement ? depth + 1 : depth;
  return here.concat(node.children.flatMap((child) => elements(child, below)));
}

const ALLOWED: Record<string, string[]> = {
  strong: [],
  em: [],
  code: [],
  pre: [],
  a: ["href", "title", "rel", "target"],
  span: ["class", "data-username"],
};

/** What must hold for every body: known tags and attributes only, links only to http(s) and mailto, and every
 * shown character taken from the body, in order (nothing invented, nothing decoded). */
function expectSafe(body: string): FakeNode {
  const root = render(body);
  expect(problems(root, body)).toEqual([]);
  return root;
}

function problems(root: FakeNode, body: string): string[] {
  const found: string[] = [];
  for (const { element } of elements(root)) {
    const allowed = ALLOWED[element.tag];
    if (allowed === undefined) found.push(`element ${element.tag}`);
    for (const [name, value] of element.attributes) {
      if (!allowed?.includes(name)) found.push(`attribute ${name} on ${element.tag}`);
      if ((name === "href" || name === "title") && !SAFE_URL.test(value)) found.push(`${name} ${value}`);
      if (name === "rel" && value !== "noopener noreferrer") found.push(`rel ${value}`);
      if (name === "target" && value !== "_blank") found.push(`target ${value}`);
    }
  }
  if (!isSubsequence(textOf(root), body.replace(/\r\n?/g, "\n"))) found.push("text not taken from the body");
  return found;
}

const SAFE_URL = /^(https?:\/\/[a-z0-9.-]+(?::\d+)?\/[^\s"<>]*|mailto:[^\s"<>]+@[^\s"<>]+)$/;

function isSubsequence(shown: string, body: string): boolean {
  let at = 0;
  for (const ch of shown) {
    at = body.indexOf(ch, at);
    if (at === -1) return false;
    at += ch.length;
  }
  return true;
}

// ---- formatting ----

describe("formatting", () => {
  it("makes **bold**, *italic* and _italic_", () => {
    expect(show("**bold** *it* _it_ __also bold__")).toBe(
      "<strong>bold</strong> <em>it</em> <em>it</em> <strong>also bold</strong>",
    );
  });

  it("nests bold and italic", () => {
    expect(show("***both***")).toBe("<strong><em>both</em></strong>");
    expect(show("**bold *and italic* bold**")).toBe("<strong>bold <em>and italic</em> bold</strong>");
    expect(show("_it **and bold** it_")).toBe("<em>it <strong>and bold</strong> it</em>");
  });

  it("shows inline code as it is, markers and all", () => {
    expect(show("run `make **run**` now")).toBe("run <code>make **run**</code> now");
    expect(show("`` a ` b ``")).toBe("<code>a ` b</code>");
  });

  it("makes fenced code blocks, keeping their lines and dropping the info string", () => {
    const body = "before\n```python\ndef f(x):\n    return x * 2  # **not bold**\n```\nafter";
    expect(show(body)).toBe("before<pre><code>def f(x):\n    return x * 2  # **not bold**</code></pre>after");
    expect(parseMessage("```\n\n```")).toEqual([{ type: "codeblock", text: "" }]);
  });

  it("keeps the lines of a message, whatever its line endings", () => {
    expect(show("one\r\ntwo\n\n**three**")).toBe("one\ntwo\n\n<strong>three</strong>");
  });

  it("leaves snake_case_names, arithmetic and lone markers alone", () => {
    expect(show("call snake_case_name now")).toBe("call snake_case_name now");
    expect(show("2 * 3 * 4")).toBe("2 * 3 * 4");
    expect(show("** not bold **")).toBe("** not bold **");
    expect(show("a **** b")).toBe("a **** b");
  });
});

describe("unclosed and crossed markers stay text", () => {
  it.each([
    "**bold",
    "*italic",
    "_italic",
    "`code",
    "``code`",
    "```\nno closing fence",
    "````\ncode\n```",
    "[text](https://example.com",
    "[text] (https://example.com)",
    "[text(https://example.com)",
    "@",
    "**",
  ])("%j", (body) => {
    const root = expectSafe(body);
    expect(textOf(root)).toBe(body);
    expect(elements(root).filter(({ element }) => element.tag !== "a")).toEqual([]);
  });

  it("closes the nearest marker of a kind and puts the crossed one back as text", () => {
    expect(show("**a *b** c*")).toBe("<strong>a *b</strong> c*");
  });

  it("does not let markers cross lines", () => {
    expect(show("**a\nb**")).toBe("**a\nb**");
  });

  it("keeps deep nesting shallow", () => {
    const body = `${"*_**".repeat(50)}x${"**_*".repeat(50)}`;
    const root = expectSafe(body);
    expect(Math.max(...elements(root).map((e) => e.depth))).toBeLessThan(5);
    expect(textOf(root).length).toBeGreaterThan(1);
  });
});

// ---- links ----

describe("links", () => {
  const attrs = 'title="$URL" rel="noopener noreferrer" target="_blank"';
  const link = (href: string, text = href) => `<a href="${href}" ${attrs.replace("$URL", href)}>${text}</a>`;

  it("links bare http, https and mailto addresses, opening in a new tab without a referrer", () => {
    expect(show("see https://example.com/a?b=1&c=2")).toBe(`see ${link("https://example.com/a?b=1&amp;c=2")}`);
    expect(show("http://example.com")).toBe(link("http://example.com/", "http://example.com"));
    expect(show("mailto:ada@example.com")).toBe(link("mailto:ada@example.com"));
  });

  it("leaves trailing punctuation and an unmatched parenthesis out of a bare link", () => {
    expect(show("(see https://example.com/x).")).toBe(`(see ${link("https://example.com/x")}).`);
    expect(show("https://en.wikipedia.org/wiki/Chat_(disambiguation)!")).toBe(
      `${link("https://en.wikipedia.org/wiki/Chat_(disambiguation)")}!`,
    );
    expect(show("**https://example.com/**")).toBe(`<strong>${link("https://example.com/")}</strong>`);
  });

  it("links [text](url) with the text as text and the destination as its title", () => {
    expect(show("[the docs](https://example.com/docs)")).toBe(
      `<a href="https://example.com/docs" ${attrs.replace("$URL", "https://example.com/docs")}>the docs</a>`,
    );
    expect(show("[mail me](MAILTO:ada@example.com)")).toBe(
      `<a href="mailto:ada@example.com" ${attrs.replace("$URL", "mailto:ada@example.com")}>mail me</a>`,
    );
  });

  it("does not link a scheme inside a word", () => {
    expect(show("xhttps://example.com")).toBe("xhttps://example.com");
  });
});

// ---- mentions ----

describe("mentions", () => {
  const mention = (name: string) => `<span class="mention" data-username="${name.toLowerCase()}">@${name}</span>`;

  it("returns @username as a mention node", () => {
    expect(parseMessage("hi @ada.l")).toEqual([
      { type: "text", text: "hi " },
      { type: "mention", username: "ada.l" },
    ]);
    expect(show("hi @Ada, and @bob_2.")).toBe(`hi ${mention("Ada")}, and ${mention("bob_2")}.`);
    expect(show("**@ada**")).toBe(`<strong>${mention("ada")}</strong>`);
  });

  it("does not take email addresses, short or overlong names, or names in code for mentions", () => {
    expect(show("write to bob@example.com")).toBe("write to bob@example.com");
    expect(show("@ab @-abc @@abc")).toBe("@ab @-abc @@abc");
    expect(show(`@${"a".repeat(33)}`)).toBe(`@${"a".repeat(33)}`);
    expect(show("`@ada`")).toBe("<code>@ada</code>");
  });
});

// ---- hostile bodies ----

const XSS = [
  "<script>alert(1)</script>",
  "<img src=x onerror=alert(1)>",
  "<svg/onload=alert(1)>",
  "<iframe src=javascript:alert(1)></iframe>",
  '<a href="javascript:alert(1)">click</a>',
  "javascript:alert(1)",
  "JaVaScRiPt:alert(1)",
  "[click](javascript:alert(1))",
  "[click](JAVASCRIPT:alert(1))",
  "[click]( javascript:alert(1))",
  "[click](java\tscript:alert(1))",
  "[click](java\u0000script:alert(1))",
  "[click](&#106;avascript:alert(1))",
  "[click](&#x6A;avascript&#x3A;alert(1))",
  "[click](javascript&colon;alert(1))",
  "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
  "data:text/html,<script>alert(1)</script>",
  "[click](vbscript:msgbox(1))",
  "vbscript:msgbox(1)",
  "[click](//evil.example/x)",
  "[click](https:evil.example)",
  "[click](http://javascript:alert(1))",
  "mailto:javascript:alert(1)",
  '[click](https://example.com" onmouseover="alert(1))',
  "[click](https://example.com'onmouseover='alert(1))",
  '[click](https://example.com "title" onclick=alert(1))',
  "[<img src=x onerror=alert(1)>](https://example.com)",
  '[x" onmouseover="alert(1)](https://example.com)',
  'https://example.com/"><script>alert(1)</script>',
  "https://example.com/<script>alert(1)</script>",
  "https://example.com/\u202egnp.exe",
  "&lt;script&gt;alert(1)&lt;/script&gt;",
  "&#60;script&#62;alert(1)&#60;/script&#62;",
  "**<b onmouseover=alert(1)>x</b>**",
  "`<script>alert(1)</script>`",
  "```\n<script>alert(1)</script>\n```",
  "@<script>alert(1)</script>",
  "_<i>_</i>",
  "<!-- comment --><style>*{display:none}</style>",
  "\u0000<script>\u0000alert(1)</script>",
];

describe("an XSS corpus", () => {
  it.each(XSS)("%j stays text or a safe element", (body) => {
    const root = expectSafe(body);
    const shown = textOf(root);
    for (const ch of "<>") expect(shown.split(ch).length).toBe(body.split(ch).length);
  });

  it("shows markup as the characters typed", () => {
    expect(show("<script>alert(1)</script>")).toBe("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(textOf(render("&lt;b&gt;"))).toBe("&lt;b&gt;");
  });

  it("links no script, data or vbscript URL, and nothing that hides a quote or a control character", () => {
    for (const body of XSS) {
      for (const { element } of elements(render(body))) {
        if (element.tag === "a") expect(element.attributes[0][1]).toMatch(/^(https:\/\/example\.com\/|mailto:)/);
      }
    }
    for (const bad of [
      "javascript:alert(1)",
      "data:text/html,x",
      "vbscript:x",
      "https://a.example/\u202e",
      "http://",
      "mailto:x",
    ]) {
      expect(safeHref(bad)).toBeNull();
    }
  });

  it("keeps link text as text", () => {
    expect(show("[<img src=x onerror=alert(1)>](https://example.com)")).toContain(
      ">&lt;img src=x onerror=alert(1)&gt;</a>",
    );
  });

  it("renders a link of a tree made elsewhere only if its target is safe", () => {
    const blocks: Block[] = [
      { type: "link", href: "javascript:alert(1)", text: "evil" },
      { type: "link", href: "https://example.com", text: "fine" },
    ];
    const root = renderBlocks(blocks, fakeDocument as unknown as NodeFactory) as unknown as FakeNode;
    expect(html(root)).toBe(
      'evil<a href="https://example.com/" title="https://example.com/" rel="noopener noreferrer" target="_blank">fine</a>',
    );
  });
});

// ---- random bodies ----

describe("random bodies made of the syntax's own pieces", () => {
  const pieces = [
    "*",
    "**",
    "_",
    "`",
    "```",
    "[",
    "]",
    "(",
    ")",
    "@ada",
    "https://example.com/",
    "mailto:a@b.co",
    "javascript:",
    "<",
    ">",
    '"',
    " ",
    "\n",
    "x",
    "é",
    "&amp;",
    "\u202e",
    "\t",
  ];

  it("always render safely", () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let n = 0; n < 2000; n++) {
      const length = Math.floor(random() * 40);
      const body = Array.from({ length }, () => pieces[Math.floor(random() * pieces.length)]).join("");
      expectSafe(body);
    }
  });
});

// ---- time ----

// Each of these would take minutes or hours with a backtracking or quadratic parser; vitest's per-test timeout
// (5 s) is the bound, no time is asserted.
describe("long hostile bodies are parsed in linear time", () => {
  const N = 200_000;
  it.each([
    ["unclosed openers", "*a ".repeat(N / 3)],
    ["a marker run", "_".repeat(N)],
    ["alternating markers", "*_".repeat(N / 2)],
    ["nested openers", "**a *b _c ".repeat(N / 10)],
    ["backtick runs of growing length", Array.from({ length: 600 }, (_, n) => `${"`".repeat(n + 1)}x`).join("")],
    ["unclosed brackets", "[".repeat(N)],
    ["links without a closing parenthesis", "[a](".repeat(N / 4)],
    ["links whose targets hold the next link", `${"[a](https://x.example/".repeat(N / 22)})`],
    ["bare URLs of parentheses", `https://example.com/${")".repeat(N)}`],
    ["a long mention-like run", `@${"a.".repeat(N / 2)}`],
    ["long fences with short closers", "`````x\n```\n".repeat(N / 10)],
    ["fence lines", "```\n".repeat(N / 4)],
    ["plain text", "word ".repeat(N / 5)],
  ])("%s", (_name, body) => {
    expect(render(body).children.length).toBeGreaterThan(0);
  });
});
