// End-to-end test of the node's web page in real headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core): two real `aidmesh run` processes on
// loopback, logged in through the URL `aidmesh ui` prints.
//
// Run: tests/browser/run.sh (builds the binary, installs the npm packages, runs this).
// Screenshots of every page land in tests/browser/output/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import http from "node:http";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.AIDMESH_BIN || join(here, "../../target/debug/aidmesh");
const OUT = process.env.AIDMESH_BROWSER_OUT || join(here, "output");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 30_000;
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const nodes = [];
let browser;

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Polls `check` until it returns a truthy value (a generous timeout; no fixed waits). */
async function until(what, check, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Starts `aidmesh run` in a fresh data dir; resolves once its API is up. */
async function startNode(name, extra = []) {
  const dir = mkdtempSync(join(tmpdir(), `aidmesh-web-${name}-`));
  const env = { ...process.env };
  delete env.AIDMESH_DATA_DIR;
  delete env.RUST_LOG;
  const child = spawn(BIN, ["--data-dir", dir, "run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", ...extra], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (d) => { log += d.toString(); });
  const node = { name, dir, child, get log() { return log; } };
  nodes.push(node);
  node.p2p = await until(`${name} to listen`, () => {
    const m = log.match(/listening.*address=(\/ip4\/127\.0\.0\.1\/tcp\/\d+\S*)/);
    return m && m[1];
  });
  await until(`${name}'s API`, () => existsSync(join(dir, "api.addr")));
  node.api = readFileSync(join(dir, "api.addr"), "utf8").trim();
  node.token = readFileSync(join(dir, "api.token"), "utf8").trim();
  node.base = `http://${node.api}`;
  return node;
}

async function api(node, path) {
  const r = await fetch(`${node.base}/api/v1${path}`, { headers: { authorization: `Bearer ${node.token}` } });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

/** Runs `aidmesh ui` (no desktop here: it only prints); returns its last stdout line. */
function ui(node) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.DISPLAY;
    delete env.WAYLAND_DISPLAY;
    execFile(BIN, ["--data-dir", node.dir, "ui"], { env }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`aidmesh ui failed: ${stderr}`));
      const lines = stdout.trim().split("\n");
      resolve(lines[lines.length - 1].trim());
    });
  });
}

/** A raw HTTP request (fetch cannot forge a Host header). */
function raw(node, { method = "GET", path = "/", headers = {}, body = "" }) {
  const [host, port] = node.api.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, headers: { ...headers, "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.on("data", (d) => { text += d; });
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** axe-core on the page: no serious or critical violation. */
async function axe(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`), [], `axe on ${name}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

/** A page that fails the test on any script error or CSP violation. */
async function watchedPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error" && !/401|403|422|404/.test(m.text())) page.problems.push(`console: ${m.text()}`); });
  return page;
}

before(async () => {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const a = await startNode("a");
  const b = await startNode("b", ["--bootstrap", a.p2p]);
  await until("the nodes to connect", async () => (await api(a, "/status")).connected_peers > 0 && (await api(b, "/status")).connected_peers > 0);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    // Playwright gives a non-persistent launch its own fresh, empty profile directory.
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const n of nodes) n.child.kill("SIGTERM");
  await Promise.all(nodes.map((n) => new Promise((r) => (n.child.exitCode !== null ? r() : n.child.on("exit", r)))));
  for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
});

test("two nodes, two browsers: log in, post through the form, see it live on the other node", async () => {
  const [a, b] = nodes;
  const ctxA = await browser.newContext({ geolocation: { latitude: 52.52, longitude: 13.405 }, permissions: ["geolocation"], locale: "en-GB" });
  const ctxB = await browser.newContext({ locale: "en-GB" });
  const pageA = await watchedPage(ctxA);
  const pageB = await watchedPage(ctxB);

  // Without a session: how to log in, and no data.
  await pageA.goto(a.base + "/");
  await assertText(pageA, "main", "aidmesh ui");
  await shot(pageA, "00-login-needed");
  await axe(pageA, "login needed");

  // Log in through the URL `aidmesh ui` prints; the code is spent.
  const urlA = await ui(a);
  assert.match(urlA, new RegExp(`^http://${a.api.replace(/\./g, "\\.")}/login\\?code=[0-9a-f]{64}$`));
  await pageA.goto(urlA);
  assert.equal(new URL(pageA.url()).pathname, "/");
  const cookies = await ctxA.cookies();
  const session = cookies.find((c) => c.name === `aidmesh_session_${a.api.split(":")[1]}`);
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
  const again = await ctxB.newPage();
  await again.goto(urlA);
  await assertText(again, "main", "already used");
  await again.close();
  await pageB.goto(await ui(b));

  // B's board is open and live.
  await pageB.waitForSelector("#live-status[data-state=on]", { timeout: TIMEOUT });
  await pageB.evaluate(() => { window.__noReload = true; });
  await shot(pageB, "01-board-empty");
  await axe(pageB, "empty board");

  // An empty title: the node's error beside Title, nothing posted.
  await pageA.click("nav >> text=New post");
  await shot(pageA, "02-new-post");
  await axe(pageA, "new post form");
  await pageA.fill("#body", "Three warm coats, sizes M and L.");
  await pageA.click("button:text-is('Post')");
  const titleError = pageA.locator(".field:has(label[for=title]) .error");
  await titleError.waitFor({ timeout: TIMEOUT });
  assert.match(await titleError.innerText(), /empty/i);
  assert.equal(await pageA.inputValue("#body"), "Three warm coats, sizes M and L.");
  assert.equal((await api(a, "/posts?all=true")).length, 0, "nothing was posted");
  await shot(pageA, "03-new-post-error");
  await axe(pageA, "form with an error");

  // The offer, with the location from the browser's geolocation.
  await pageA.check("input[name=kind][value=offer]");
  await pageA.fill("#title", "Spare winter coats");
  await pageA.selectOption("#category", "goods");
  await pageA.fill("#tags", "coats, winter");
  await pageA.click("button[data-geo=location]");
  await until("the geohash", async () => (await pageA.inputValue("#location")).length === 5);
  assert.equal(await pageA.inputValue("#location"), "u33dc", "Berlin's centre as a 5-character geohash");
  await assertText(pageA, ".geo-status", "u33dc");
  await pageA.fill("#quantity", "3");
  await pageA.click("button:text-is('Post')");
  await pageA.waitForURL(/\/posts\/[0-9a-f]{64}\?notice=posted/);
  await assertText(pageA, "h1", "Spare winter coats");
  await shot(pageA, "04-post");
  await axe(pageA, "post page");
  const postId = pageA.url().match(/posts\/([0-9a-f]{64})/)[1];

  // It appears on B's open board without a reload.
  await pageB.waitForSelector(`#p-${postId}`, { timeout: TIMEOUT });
  assert.equal(await pageB.evaluate(() => window.__noReload), true, "B did not reload");
  await assertText(pageB, `#p-${postId}`, "Spare winter coats");
  await shot(pageB, "05-board-live");
  await axe(pageB, "board with a post");

  // Filters: kind and near me.
  await pageB.goto(b.base + "/?kind=request");
  assert.equal(await pageB.locator(`#p-${postId}`).count(), 0);
  await pageB.goto(b.base + "/?near=u33dc&km=5");
  await pageB.waitForSelector(`#p-${postId}`);
  await pageB.goto(b.base + "/?near=ezs42&km=100");
  assert.equal(await pageB.locator(`#p-${postId}`).count(), 0);

  // B's view of the post: matches, block, the author's other posts.
  await pageB.goto(`${b.base}/posts/${postId}`);
  await assertText(pageB, "main", "Block author");
  await shot(pageB, "06-post-others-view");
  await axe(pageB, "someone else's post");

  // Reply privately; the author sees it in the inbox without a reload.
  await pageA.goto(a.base + "/inbox");
  await pageA.waitForSelector("#live-status[data-state=on]", { timeout: TIMEOUT });
  await pageA.evaluate(() => { window.__noReload = true; });
  await pageB.fill("#text", "Could I have one coat, size M?");
  await pageB.click("button:text-is('Send privately')");
  await pageB.waitForURL(/\/conversations\/[0-9a-f]+/);
  await assertText(pageB, "#messages", "Could I have one coat, size M?");
  const conversationB = pageB.url().split("?")[0];
  await assertText(pageA, "#conversations", "Spare winter coats");
  assert.equal(await pageA.evaluate(() => window.__noReload), true, "A's inbox did not reload");
  await shot(pageA, "06b-inbox-live");
  await axe(pageA, "inbox");
  await pageA.click("#conversations a");
  await assertText(pageA, "#messages", "Could I have one coat, size M?");
  await pageA.fill("#text", "Yes! Pick it up on Saturday.");
  await pageA.click("button:text-is('Send')");
  await pageA.waitForURL(/notice=sent/);
  await pageB.goto(conversationB);
  await pageB.waitForSelector("#live-status[data-state=on]", { timeout: TIMEOUT });
  await assertText(pageB, "#messages", "Pick it up on Saturday");

  // Promise, then hand over: the post goes promised, then fulfilled.
  await pageA.click("button:text-is('Promise it to this person')");
  await pageA.waitForURL(/notice=sent/);
  await assertText(pageB, "#messages", "Promised it to you.");
  await shot(pageB, "06c-conversation-promised");
  await axe(pageB, "conversation");
  await until("the post promised on A", async () => (await api(a, `/posts/${postId}`)).status === "promised");
  await pageA.click("button:text-is('Mark handed over')");
  await pageA.waitForURL(/notice=sent/);
  await until("the post fulfilled on A", async () => (await api(a, `/posts/${postId}`)).status === "fulfilled");
  await assertText(pageB, "#messages", "Handed over");
  await until("the post fulfilled on B", async () => (await api(b, `/posts/${postId}`)).status === "fulfilled");
  await shot(pageA, "06d-conversation-done");

  // My posts, alerts, circles with an invite QR code, status.
  await pageA.goto(a.base + "/mine");
  await assertText(pageA, "main", "Spare winter coats");
  await assertText(pageA, "main", "Fulfilled");
  await shot(pageA, "07-my-posts");
  await axe(pageA, "my posts");

  await pageB.goto(b.base + "/alerts");
  await pageB.selectOption("#a-kind", "offer");
  await pageB.fill("#a-tag", "bike");
  await pageB.click("button:text-is('Add alert')");
  await pageB.waitForURL(/notice=alert_added/);
  await pageB.waitForSelector("#live-status[data-state=on]", { timeout: TIMEOUT });
  await pageA.goto(a.base + "/new");
  await pageA.fill("#title", "Kids bike, 20 inch");
  await pageA.selectOption("#category", "transport");
  await pageA.fill("#tags", "bike");
  await pageA.click("button:text-is('Post')");
  await pageA.waitForURL(/notice=posted/);
  const bikeId = pageA.url().match(/posts\/([0-9a-f]{64})/)[1];
  await pageB.waitForSelector("#live-matches li", { timeout: TIMEOUT });
  await assertText(pageB, "#live-matches", "Kids bike");
  await shot(pageB, "08-alerts-live-match");
  await axe(pageB, "alerts");

  await pageA.goto(a.base + "/circles");
  await shot(pageA, "09-circles");
  await axe(pageA, "circles");
  await pageA.click("text=invite someone");
  await pageA.waitForSelector("figure.qr svg");
  assert.match(await pageA.inputValue("#invite-code"), /^AIDMESH1-/);
  await shot(pageA, "10-invite");
  await axe(pageA, "invite");

  await pageA.goto(a.base + "/status");
  await assertText(pageA, "main", "Connected to 1 peer ");
  await shot(pageA, "11-status");
  await axe(pageA, "status");

  // Fulfil: the post leaves B's open board, live.
  await pageB.goto(b.base + "/");
  await pageB.waitForSelector(`#p-${bikeId}`);
  await pageB.waitForSelector("#live-status[data-state=on]", { timeout: TIMEOUT });
  await pageA.goto(a.base + "/mine");
  await pageA.click(`form[action="/posts/${bikeId}/status"]:has(input[value=fulfilled]) button`);
  await pageA.waitForURL(/notice=fulfilled/);
  await pageB.waitForSelector(`#p-${bikeId}`, { state: "detached", timeout: TIMEOUT });

  // Spanish, chosen by Accept-Language and by the switch.
  const ctxEs = await browser.newContext({ locale: "es-ES" });
  const es = await ctxEs.newPage();
  await es.goto(a.base + "/");
  assert.equal(await es.getAttribute("html", "lang"), "es");
  await assertText(es, "main", "aidmesh ui");
  await es.click("footer >> text=English");
  assert.equal(await es.getAttribute("html", "lang"), "en");
  await ctxEs.close();
  await pageA.goto(a.base + "/?lang=es");
  await assertText(pageA, "h1", "Tablón");
  await shot(pageA, "12-board-es");
  await axe(pageA, "board in Spanish");
  await pageA.goto(a.base + "/?lang=en");

  // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
  await pageA.keyboard.press("Tab");
  assert.equal(await pageA.evaluate(() => document.activeElement.className), "skip");
  await pageA.keyboard.press("Enter");
  assert.equal(await pageA.evaluate(() => document.activeElement.id), "main");

  // A phone screen: nothing wider than the screen.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const p = await phone.newPage();
  await p.goto(await ui(a));
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling");
  await shot(p, "13-board-phone");
  await p.goto(a.base + "/new");
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  await shot(p, "14-new-post-phone");
  await phone.close();

  assert.deepEqual([...pageA.problems, ...pageB.problems], [], "no script errors or CSP violations");
});

test("a forged Host and a forged change are refused", async () => {
  const [a, b] = nodes;
  const port = a.api.split(":")[1];
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(await ui(a));
  const cookie = (await ctx.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const before = (await api(a, "/posts?all=true")).length;

  // DNS rebinding: a page on evil.example that resolves to 127.0.0.1.
  const rebound = await raw(a, { headers: { host: `evil.example:${port}`, cookie } });
  assert.equal(rebound.status, 403);
  assert.ok(!rebound.text.includes("Spare winter coats"));

  // The right session but no token, or another origin.
  const form = "kind=offer&title=Forged&category=other";
  const token = await page.getAttribute("input[name=_csrf]", "value");
  const noToken = await raw(a, { method: "POST", path: "/new", headers: { host: a.api, origin: a.base, cookie, "content-type": "application/x-www-form-urlencoded" }, body: form });
  assert.equal(noToken.status, 403);
  const otherOrigin = await raw(a, { method: "POST", path: "/new", headers: { host: a.api, origin: "http://evil.example", cookie, "content-type": "application/x-www-form-urlencoded" }, body: `${form}&_csrf=${token}` });
  assert.equal(otherOrigin.status, 403);

  // In the browser: an attacker's page on another local port (same site, another
  // origin) submits a form to this node; the browser attaches the session cookie.
  const evil = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>evil</title><form method="post" action="${a.base}/new">
      <input name="kind" value="offer"><input name="title" value="Forged from another port">
      <input name="_csrf" value="guess"></form><script>document.forms[0].submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  await page.goto(`http://127.0.0.1:${evil.address().port}/`);
  await page.waitForURL(a.base + "/new");
  await assertText(page, "main", "did not come from this node's own page");
  await shot(page, "15-forged-change-refused");
  evil.close();
  assert.equal((await api(a, "/posts?all=true")).length, before, "nothing was posted");
  await ctx.close();
});

async function assertText(page, selector, text) {
  await page.waitForSelector(selector, { timeout: TIMEOUT });
  await until(`"${text}" in ${selector}`, async () => (await page.locator(selector).first().innerText()).includes(text));
}
