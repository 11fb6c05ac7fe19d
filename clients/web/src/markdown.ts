// A safe Markdown subset for message bodies: **bold** (or __bold__), *italic* or _italic_, `inline code`,
// ``` fenced code blocks ```, links (bare http://, https:// and mailto: addresses, or [text](url) with one of those
// schemes) and @username mentions. Everything else, HTML included, stays text.
//
// parseMessage turns a body into a small tree; renderMessage turns the tree into DOM nodes with createElement and
// text nodes only, never innerHTML, so no body can inject markup, attributes or script.
//
// Both run in time linear in the body: one pass per line, look-ups that only move forward, and no regular
// expression that can backtrack, so a hostile 4,000-character body (or a far longer one) cannot stall the page.

export type Inline =
  | { type: "text"; text: string }
  | { type: "strong"; children: Inline[] }
  | { type: "em"; children: Inline[] }
  | { type: "code"; text: string }
  | { type: "link"; href: string; text: string }
  | { type: "mention"; username: string };

/** What a body is made of: inline nodes (lines joined by "\n" text) and fenced code blocks. */
export type Block = Inline | { type: "codeblock"; text: string };

/** The part of `document` rendering needs. */
export type NodeFactory = Pick<Document, "createElement" | "createTextNode" | "createDocumentFragment">;

/** Markers nested deeper than this stay text (and keep rendering's recursion shallow). */
const MAX_NESTING = 5;
const SCHEMES = ["http://", "https://", "mailto:"];
const USERNAME_MIN = 3;
const USERNAME_MAX = 32;

/** The body as a tree: fenced code blocks and formatted lines. */
export function parseMessage(body: string): Block[] {
  const lines = body.replace(/\r\n?/g, "\n").split("\n");
  const closingFence = lines.map(fenceCloser);
  // The longest closing fence after each line: an opening fence with none long enough after it stays text at
  // once, instead of a search to the end for every such line.
  const longestCloserAfter = new Array<number>(lines.length).fill(0);
  for (let i = lines.length - 2; i >= 0; i--) {
    longestCloserAfter[i] = Math.max(longestCloserAfter[i + 1], closingFence[i + 1]);
  }
  const blocks: Block[] = [];
  let afterLine = false; // lines are joined by "\n"; a code block is a block of its own and needs none
  let i = 0;
  while (i < lines.length) {
    const fence = fenceOpener(lines[i]);
    if (fence > 0 && longestCloserAfter[i] >= fence) {
      let end = i + 1;
      while (closingFence[end] < fence) end++;
      blocks.push({ type: "codeblock", text: lines.slice(i + 1, end).join("\n") });
      afterLine = false;
      i = end + 1;
      continue;
    }
    if (afterLine) pushText(blocks, "\n");
    for (const node of parseLine(lines[i])) pushNode(blocks, node);
    afterLine = true;
    i++;
  }
  return blocks;
}

/** DOM nodes for `body`, made with `doc`'s createElement and text nodes only. */
export function renderMessage(body: string, doc: NodeFactory = document): DocumentFragment {
  return renderBlocks(parseMessage(body), doc);
}

/** DOM nodes for a tree (from parseMessage, perhaps changed by the view); link targets are checked again. */
export function renderBlocks(blocks: Block[], doc: NodeFactory = document): DocumentFragment {
  const fragment = doc.createDocumentFragment();
  for (const block of blocks) fragment.appendChild(renderBlock(block, doc));
  return fragment;
}

/** `raw` as a link target if it is an http(s) or mailto URL with nothing that could hide or break out of it;
 * else null. The answer is the URL as the browser will resolve it. */
export function safeHref(raw: string): string | null {
  const scheme = raw.slice(0, 8).toLowerCase();
  if (!SCHEMES.some((s) => scheme.startsWith(s))) return null;
  for (let i = 0; i < raw.length; i++) if (!urlChar(raw.charCodeAt(i))) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol === "mailto:") return url.pathname.includes("@") ? url.href : null;
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  // A host name of letters, digits, dots and hyphens (international names are punycode by now), so a quote or
  // an equals sign that the URL parser would let into a host never reaches the page.
  return /^[a-z0-9.-]+$/.test(url.hostname) ? url.href : null;
}

// ---- blocks ----

/** The number of backticks opening a fence on this line (up to 3 spaces, 3+ backticks, an info string without
 * backticks), else 0. */
function fenceOpener(line: string): number {
  let i = 0;
  while (i < 3 && line[i] === " ") i++;
  const start = i;
  while (line[i] === "`") i++;
  const ticks = i - start;
  if (ticks < 3 || line.indexOf("`", i) !== -1) return 0;
  return ticks;
}

/** The number of backticks of a line that is only a fence (3+ backticks, spaces around), else 0. */
function fenceCloser(line: string): number {
  const trimmed = line.trim();
  if (trimmed.length < 3) return 0;
  for (let i = 0; i < trimmed.length; i++) if (trimmed[i] !== "`") return 0;
  return trimmed.length;
}

// ---- inline ----

type Delimiter = "**" | "__" | "*" | "_";

interface Frame {
  delimiter: Delimiter | null;
  children: Inline[];
}

/** One line's inline nodes. Emphasis uses a stack of open markers: a closer takes the nearest open marker of
 * its kind, and markers opened after it are put back as text, so each node moves at most once. */
function parseLine(line: string): Inline[] {
  const stack: Frame[] = [{ delimiter: null, children: [] }];
  const open: Record<Delimiter, number> = { "**": 0, __: 0, "*": 0, _: 0 };
  const codeSpans = codeSpanFinder(line);
  const nextBracket = forwardFinder(line, "]");
  const nextParen = forwardFinder(line, ")");
  let text = 0; // start of the pending text
  let i = 0;

  const top = (): Inline[] => stack[stack.length - 1].children;
  const flush = (end: number): void => pushText(top(), line.slice(text, end));
  const emit = (node: Inline, end: number): void => {
    pushNode(top(), node);
    text = end;
  };

  const close = (delimiter: Delimiter): void => {
    let at = stack.length - 1;
    while (stack[at].delimiter !== delimiter) at--;
    const frame = stack[at];
    for (const inner of stack.splice(at + 1)) {
      open[inner.delimiter as Delimiter]--;
      pushText(frame.children, inner.delimiter as string);
      for (const node of inner.children) pushNode(frame.children, node);
    }
    stack.pop();
    open[delimiter]--;
    pushNode(top(), { type: delimiter.length === 2 ? "strong" : "em", children: frame.children });
  };

  while (i < line.length) {
    const c = line[i];
    if (c === "`") {
      const ticks = runLength(line, i, "`");
      const closer = codeSpans(i, ticks);
      if (closer !== -1) {
        flush(i);
        emit({ type: "code", text: codeText(line.slice(i + ticks, closer)) }, closer + ticks);
        i = closer + ticks;
      } else {
        i += ticks;
      }
    } else if (c === "[") {
      const link = bracketLink(line, i, nextBracket, nextParen);
      if (link !== null) {
        flush(i);
        emit(link.node, link.end);
        i = link.end;
      } else {
        i++;
      }
    } else if ((c === "h" || c === "H" || c === "m" || c === "M") && !isWordChar(line.charCodeAt(i - 1))) {
      const end = bareUrlEnd(line, i);
      if (end === i) {
        i++;
        continue;
      }
      const raw = line.slice(i, end);
      const href = safeHref(raw);
      if (href !== null) {
        flush(i);
        emit({ type: "link", href, text: raw }, end);
      }
      i = end;
    } else if (c === "@" && !isMentionBoundary(line.charCodeAt(i - 1))) {
      const end = mentionEnd(line, i + 1);
      if (end - (i + 1) >= USERNAME_MIN && end - (i + 1) <= USERNAME_MAX && isAlnum(line.charCodeAt(i + 1))) {
        flush(i);
        emit({ type: "mention", username: line.slice(i + 1, end) }, end);
        i = end;
      } else {
        i++;
      }
    } else if (c === "*" || c === "_") {
      const length = runLength(line, i, c);
      if (length > 3) {
        i += length; // stays text
        continue;
      }
      flush(i);
      text = i + length;
      for (const unit of delimiterUnits(line, i, length, c, open)) {
        const { canOpen, canClose } = unit;
        if (canClose && open[unit.delimiter] > 0) close(unit.delimiter);
        else if (canOpen && stack.length <= MAX_NESTING) {
          stack.push({ delimiter: unit.delimiter, children: [] });
          open[unit.delimiter]++;
        } else pushText(top(), unit.delimiter);
      }
      i += length;
    } else {
      i++;
    }
  }
  flush(line.length);
  const root = stack[0];
  for (const inner of stack.splice(1)) {
    pushText(root.children, inner.delimiter as string);
    for (const node of inner.children) pushNode(root.children, node);
  }
  return root.children;
}

interface DelimiterUnit {
  delimiter: Delimiter;
  canOpen: boolean;
  canClose: boolean;
}

/** A run of one to three `*` or `_` as markers: one or two characters each; three as a single and a double (the
 * single inside when opening, so `***x***` is bold italic). `_` does not work inside words (snake_case_names
 * stay as they are). */
function delimiterUnits(
  line: string,
  at: number,
  length: number,
  c: "*" | "_",
  open: Record<Delimiter, number>,
): DelimiterUnit[] {
  const before = line.charCodeAt(at - 1);
  const after = line.charCodeAt(at + length);
  let canOpen = !isSpace(after);
  let canClose = !isSpace(before);
  if (c === "_") {
    canOpen &&= !isAlnum(before);
    canClose &&= !isAlnum(after);
  }
  const single = c as Delimiter;
  const double = (c + c) as Delimiter;
  const unit = (delimiter: Delimiter): DelimiterUnit => ({ delimiter, canOpen, canClose });
  if (length === 1) return [unit(single)];
  if (length === 2) return [unit(double)];
  const closing = canClose && (open[single] > 0 || open[double] > 0);
  return closing ? [unit(single), unit(double)] : [unit(double), unit(single)];
}

/** Where the code span opened by `ticks` backticks at `at` closes (the next run of exactly as many), or -1.
 * Runs are listed once per line; each length's list is walked forward only. */
function codeSpanFinder(line: string): (at: number, ticks: number) => number {
  const runs = new Map<number, number[]>();
  for (let i = 0; i < line.length; ) {
    if (line[i] !== "`") {
      i++;
      continue;
    }
    const n = runLength(line, i, "`");
    const starts = runs.get(n);
    if (starts) starts.push(i);
    else runs.set(n, [i]);
    i += n;
  }
  const cursor = new Map<number, number>();
  return (at, ticks) => {
    const starts = runs.get(ticks) ?? [];
    let k = cursor.get(ticks) ?? 0;
    while (k < starts.length && starts[k] <= at) k++;
    cursor.set(ticks, k);
    return k < starts.length ? starts[k] : -1;
  };
}

/** CommonMark's rule: one space is trimmed from each end when both ends have one (so `` ` `` ` `` shows a backtick). */
function codeText(inner: string): string {
  if (inner.length >= 2 && inner[0] === " " && inner[inner.length - 1] === " " && inner.trim() !== "") {
    return inner.slice(1, -1);
  }
  return inner;
}

/** `[text](url)` at `at`: the link and where it ends, or null (then the `[` is text). The text is shown as it
 * is; the title shows where the link goes. */
function bracketLink(
  line: string,
  at: number,
  nextBracket: (from: number) => number,
  nextParen: (from: number) => number,
): { node: Inline; end: number } | null {
  const close = nextBracket(at + 1);
  if (close <= at + 1 || line[close + 1] !== "(") return null;
  const paren = nextParen(close + 2);
  if (paren === -1) return null;
  const href = safeHref(line.slice(close + 2, paren));
  if (href === null) return null;
  return { node: { type: "link", href, text: line.slice(at + 1, close) }, end: paren + 1 };
}

/** The end of a bare URL starting at `at` (one of the allowed schemes and more), or `at` when there is none.
 * Trailing punctuation is left out, and a closing parenthesis with no opening one in the URL. */
function bareUrlEnd(line: string, at: number): number {
  const head = line.slice(at, at + 8).toLowerCase();
  const scheme = SCHEMES.find((s) => head.startsWith(s));
  if (scheme === undefined) return at;
  let end = at + scheme.length;
  let opened = 0;
  let closed = 0;
  while (end < line.length && !endsBareUrl(line.charCodeAt(end))) {
    if (line[end] === "(") opened++;
    else if (line[end] === ")") closed++;
    end++;
  }
  while (end > at + scheme.length) {
    const last = line[end - 1];
    if (".,:;!?*_~'".includes(last)) end--;
    else if (last === ")" && closed > opened) {
      closed--;
      end--;
    } else break;
  }
  return end > at + scheme.length ? end : at;
}

/** The end of the username after an `@` at `from - 1`: letters, digits, `.`, `_`, `-`, without trailing
 * punctuation (`@ada.` is a mention of ada). */
function mentionEnd(line: string, from: number): number {
  let end = from;
  while (end < line.length && isUsernameChar(line.charCodeAt(end))) end++;
  while (end > from && ".-_".includes(line[end - 1])) end--;
  return end;
}

/** Finds the next `ch` at or after a position; positions asked for only grow, so the line is read once. */
function forwardFinder(line: string, ch: string): (from: number) => number {
  let found = -2; // not searched yet
  return (from) => {
    if (found === -2 || (found !== -1 && found < from)) found = line.indexOf(ch, from);
    return found;
  };
}

function runLength(line: string, at: number, ch: string): number {
  let end = at;
  while (line[end] === ch) end++;
  return end - at;
}

function pushText(into: Block[], text: string): void {
  if (text === "") return;
  const last = into[into.length - 1];
  if (last !== undefined && last.type === "text") last.text += text;
  else into.push({ type: "text", text });
}

function pushNode(into: Block[], node: Inline): void {
  if (node.type === "text") pushText(into, node.text);
  else into.push(node);
}

// ---- characters (char codes; NaN, before the start or past the end, counts as a space) ----

function isSpace(code: number): boolean {
  return Number.isNaN(code) || /\s/.test(String.fromCharCode(code));
}

function isAlnum(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** Letters and digits of any script, and `_`: a scheme right after one is part of a word, not a link. */
function isWordChar(code: number): boolean {
  return !Number.isNaN(code) && /[\p{L}\p{N}_]/u.test(String.fromCharCode(code));
}

function isUsernameChar(code: number): boolean {
  return isAlnum(code) || code === 46 || code === 95 || code === 45; // . _ -
}

/** Characters that make an `@` part of something else (an email address, a word): not a mention. */
function isMentionBoundary(code: number): boolean {
  return isUsernameChar(code) || code === 64 || code === 43 || isWordChar(code); // @ +
}

function endsBareUrl(code: number): boolean {
  return isSpace(code) || code === 60 || code === 62 || code === 34 || code === 96; // < > " `
}

/** Characters a link target may hold: no spaces or controls (C0, DEL, C1), no quotes, angle brackets, backslash
 * or other characters that are never bare in a URL, and no bidirectional overrides that could disguise it.
 * Square brackets are refused too (so IPv6 literal hosts are not linked): a `[text](url)` target then never holds
 * the next link's `[`, and checking the targets of many unclosed links stays linear. */
function urlChar(code: number): boolean {
  if (code <= 0x20 || (code >= 0x7f && code <= 0xa0)) return false;
  if ('"<>[\\]^`{|}'.includes(String.fromCharCode(code))) return false;
  if ((code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) || code === 0x200e || code === 0x200f) {
    return false;
  }
  return !/\s/.test(String.fromCharCode(code));
}

// ---- DOM ----

function renderBlock(block: Block, doc: NodeFactory): Node {
  if (block.type !== "codeblock") return renderInline(block, doc);
  const pre = doc.createElement("pre");
  const code = doc.createElement("code");
  code.appendChild(doc.createTextNode(block.text));
  pre.appendChild(code);
  return pre;
}

function renderInline(node: Inline, doc: NodeFactory): Node {
  switch (node.type) {
    case "text":
      return doc.createTextNode(node.text);
    case "strong":
    case "em": {
      const el = doc.createElement(node.type);
      for (const child of node.children) el.appendChild(renderInline(child, doc));
      return el;
    }
    case "code": {
      const el = doc.createElement("code");
      el.appendChild(doc.createTextNode(node.text));
      return el;
    }
    case "link": {
      // Checked again: the tree may have been built or changed outside parseMessage.
      const href = safeHref(node.href);
      if (href === null) return doc.createTextNode(node.text);
      const a = doc.createElement("a");
      a.setAttribute("href", href);
      a.setAttribute("title", href);
      a.setAttribute("rel", "noopener noreferrer");
      a.setAttribute("target", "_blank");
      a.appendChild(doc.createTextNode(node.text));
      return a;
    }
    case "mention": {
      const span = doc.createElement("span");
      span.setAttribute("class", "mention");
      span.setAttribute("data-username", node.username.toLowerCase());
      span.appendChild(doc.createTextNode(`@${node.username}`));
      return span;
    }
  }
}
