// The admin console's whole flow in a real browser (Debian's Chromium driven by
// playwright-core; no browser is ever downloaded): sign in, upload the key, see the
// client ID and scopes, enable capture (the notice arrives at the test's SMTP
// listener), rebuild matching, select users, start, watch statuses become idle with
// counts without reloading, unlink one, open a company timeline, and see a member's
// restricted view. Screenshots of each page go to $SCREENSHOT_DIR.
//
// Run by `cargo test -p tributary-server --test e2e`, which starts the emulator, the
// server with a worker, and the SMTP listener, and passes their addresses:
//   CONSOLE_URL, ADMIN_EMAIL, MEMBER_EMAIL, PASSWORD, KEY_FILE, WORKSPACE_ADMIN,
//   EXPECTED_CLIENT_ID, EXPECTED_SCOPES, MAILBOX_URL, CONTROL_URL, SCREENSHOT_DIR
"use strict";

const assert = require("node:assert/strict");
const { env, step, walker, start, SYNC_TIMEOUT_MS } = require("./lib.js");

const config = {
  url: env("CONSOLE_URL").replace(/\/$/, ""),
  admin: env("ADMIN_EMAIL"),
  member: env("MEMBER_EMAIL"),
  password: env("PASSWORD"),
  keyFile: env("KEY_FILE"),
  workspaceAdmin: env("WORKSPACE_ADMIN"),
  clientId: env("EXPECTED_CLIENT_ID"),
  scopes: env("EXPECTED_SCOPES"),
  mailbox: env("MAILBOX_URL"),
  control: env("CONTROL_URL").replace(/\/$/, ""),
  shots: env("SCREENSHOT_DIR"),
};

const { shot, signIn, noticeText, waitForMail, waitForStatuses, open, run } = walker(config);

// Sets the emulated organization's domain-wide delegation for our client ID.
async function setDelegation(scopes) {
  const response = await fetch(`${config.control}/delegation`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_id: config.clientId, scopes }),
  });
  assert.equal(response.status, 200, `the emulator's control API set the delegation`);
  // Tokens minted before still work until they expire, as at Google: expire them.
  const expired = await fetch(`${config.control}/tokens/expire`, { method: "POST" });
  assert.equal(expired.status, 200, "the emulator's control API expired the tokens");
}

// Creates a user label in an emulated mailbox; answers its id and name.
async function createMailboxLabel(mailbox, name) {
  const response = await fetch(`${config.control}/users/${encodeURIComponent(mailbox)}/labels`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  assert.equal(response.status, 201, "the emulator's control API created the label");
  return response.json();
}

async function adminWalk(browser) {
  const { context, page } = await open(browser, { viewport: { width: 1280, height: 860 } });

  step("sign in");
  await page.goto(`${config.url}/signin`);
  await shot(page, "signin");
  await signIn(page, config.admin);
  // A new admin (nothing connected yet) lands on the Google setup.
  assert.match(page.url(), /\/setup$/, "a new admin with nothing connected starts on the setup");

  step("upload the key and see the client ID and scopes");
  await page.goto(`${config.url}/setup`);
  await shot(page, "setup-start");
  assert.equal(
    await page.inputValue('input[name="admin_email"]'),
    config.admin,
    "the admin address starts as the signed-in admin's",
  );
  await page.setInputFiles('input[name="key_file"]', config.keyFile);
  await page.fill('input[name="admin_email"]', config.workspaceAdmin);
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Upload key")')]);
  assert.match(await noticeText(page), /Key uploaded/);
  assert.equal((await page.textContent("#client-id")).trim(), config.clientId);
  assert.equal((await page.textContent("#scopes")).trim(), config.scopes);
  assert.ok(config.scopes.includes(","), "the scopes are comma-separated");
  const delegation = await page.getAttribute('a[href*="domainwidedelegation"]', "href");
  assert.match(delegation, /^https:\/\/admin\.google\.com\//);
  const html = await page.content();
  assert.ok(!html.includes("PRIVATE KEY"), "the private key is never shown");
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: config.url });
  await page.click('button[data-copy="client-id"]');
  await page.waitForSelector('button[data-copy="client-id"].copied');
  await shot(page, "setup-key-uploaded");

  step("test the connection");
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Test connection")')]);
  assert.match(await page.textContent("#connection-check"), /Connected/);
  await shot(page, "setup-connection-tested");

  step("enable capture: the admins are mailed");
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Enable capture")')]);
  assert.match(await noticeText(page), /notified by email/);
  assert.equal((await page.textContent("#capture-state")).trim(), "On");
  const mail = await waitForMail(config.admin, "capture is on");
  assert.match(mail.data, new RegExp(`${config.url}/users`));
  await shot(page, "setup-capture-on");

  step("rebuild user matching");
  await page.goto(`${config.url}/users`);
  const rebuild = page.locator('#rebuild button:has-text("Rebuild")');
  // While the directory is read, the button says so and cannot be pressed twice: what
  // it showed at submit time is kept across the navigation in sessionStorage.
  await page.evaluate(() => {
    const button = document.querySelector("#rebuild button[data-busy]");
    button.form.addEventListener("submit", () => {
      sessionStorage.setItem("rebuild-button", `${button.disabled}|${button.textContent}`);
    });
  });
  await Promise.all([page.waitForNavigation(), rebuild.click()]);
  assert.equal(
    await page.evaluate(() => sessionStorage.getItem("rebuild-button")),
    "true|Matching the directory…",
    "Rebuild shows that it runs",
  );
  assert.match(await noticeText(page), /User matching rebuilt, sync is completed: \d+ matched/);
  assert.match(await page.textContent("#rebuild-result"), /\d+ matched/);
  const rows = page.locator("#user-rows tr[data-link]");
  const linkCount = await rows.count();
  assert.ok(linkCount >= 2, `the rebuild linked mailboxes (${linkCount})`);
  await shot(page, "users-rebuilt");

  step("select every user and start");
  await page.check("#select-all");
  assert.match(await page.textContent("#selected-count"), new RegExp(`^${linkCount} selected`));
  await Promise.all([
    page.waitForNavigation(),
    page.click('#bulk button[value="start"]'),
  ]);
  // The notice counts what changed and says why the rest did not (already pending…).
  assert.match(await noticeText(page), /\d+ started[;.]/);
  assert.match(page.url(), /\/users\?flash=/, "the form's answer redirected to the page");
  await shot(page, "users-started");

  step("reload after a post: the page again, no repeat of the action or its notice");
  const reloaded = await page.reload();
  assert.equal(reloaded.request().method(), "GET", "a reload is a GET, not the form again");
  assert.doesNotMatch(await noticeText(page), /\d+ started[;.]/);
  await shot(page, "users-reloaded");

  step("watch the statuses become idle with counts, without reloading");
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  await waitForStatuses(page, "idle");
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload happened");
  assert.match(await page.textContent("#user-rows"), /Idle/);
  assert.match(await page.textContent("#user-rows"), /\+\d+ added/);
  assert.match(await page.textContent("#user-rows"), /INBOX\s*\d+\s*\/\s*\d+/);
  await shot(page, "users-idle");

  step("Google refuses: one banner with Google's message and the fix; it clears by itself after the fix");
  await setDelegation([]);
  await page.check("#select-all");
  await Promise.all([page.waitForNavigation(), page.click('#bulk button[value="retry"]')]);
  await waitForStatuses(page, "unauthorized");
  // The live refresh brings the banner without a reload.
  await page.waitForSelector("#connection-banner", { timeout: SYNC_TIMEOUT_MS });
  assert.equal(await page.locator("#connection-banner").count(), 1, "one banner, not one per row");
  const banner = await page.textContent("#connection-banner");
  assert.ok((await page.locator("#connection-banner .provider-message").count()) > 0, "Google's message");
  assert.match(banner, /Domain-wide delegation/, "the fix hint");
  const refused = await page.textContent("#user-rows");
  assert.match(refused, /Unauthorized/);
  assert.match(refused, /Waiting for the connection/, "rows wait for the connection");
  await shot(page, "users-unauthorized");
  await setDelegation(config.scopes.split(","));
  await page.goto(`${config.url}/setup`);
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Test connection")')]);
  await page.goto(`${config.url}/users`);
  await waitForStatuses(page, "idle");
  await page.waitForSelector("#connection-banner", { state: "detached", timeout: SYNC_TIMEOUT_MS });
  await shot(page, "users-resumed");

  step("unlink one user");
  const first = rows.first();
  const unlinkedLink = await first.getAttribute("data-link");
  await first.locator('input[name="link"]').check();
  await Promise.all([page.waitForNavigation(), page.click('#bulk button[value="unlink"]')]);
  assert.match(await noticeText(page), /1 unlinked\./);
  await page.selectOption('select[name="status"]', "unlinked");
  await page.waitForURL(/status=unlinked/);
  const unlinkedRows = page.locator("#user-rows tr[data-link]");
  assert.equal(await unlinkedRows.count(), 1);
  assert.equal(await unlinkedRows.first().getAttribute("data-status"), "unlinked");
  assert.equal(await unlinkedRows.first().getAttribute("data-link"), unlinkedLink);
  await shot(page, "users-filtered-unlinked");

  step("the unlinked row's own Start button starts that user alone");
  const rowStart = unlinkedRows.first().locator('button[name="row"]');
  assert.deepEqual(await rowStart.allTextContents(), ["Start"], "an unlinked row offers Start only");
  await Promise.all([page.waitForNavigation(), rowStart.click()]);
  assert.match(await noticeText(page), /(^|\s)1 started\./);
  assert.equal(await page.locator("#user-rows tr[data-link]").count(), 0, "no row is unlinked now");
  await page.goto(`${config.url}/users`);
  const rowUnlink = page.locator(
    `#user-rows tr[data-link="${unlinkedLink}"] button[value="unlink:${unlinkedLink}"]`,
  );
  assert.equal(await rowUnlink.count(), 1, "the restarted row offers Unlink");
  await shot(page, "users-row-started");

  step("the same row's own Unlink unlinks it again, alone");
  await Promise.all([page.waitForNavigation(), rowUnlink.click()]);
  assert.match(await noticeText(page), /(^|\s)1 unlinked\./);
  assert.equal(
    await page.locator(`#user-rows tr[data-link="${unlinkedLink}"]`).getAttribute("data-status"),
    "unlinked",
  );
  await shot(page, "users-row-unlinked");

  step("open a company timeline");
  await page.goto(`${config.url}/companies`);
  const companyLinks = page.locator('#companies a[href^="/companies/"]');
  assert.ok((await companyLinks.count()) > 0, "companies are listed");
  await shot(page, "companies");
  await Promise.all([page.waitForNavigation(), companyLinks.first().click()]);
  assert.match(await page.textContent("h1"), /Company · /);
  assert.ok((await page.locator("ol.timeline > li").count()) > 0, "the timeline has contact points");
  await shot(page, "company-timeline");
  const contact = page.locator('a[href^="/contacts/"]').first();
  await Promise.all([page.waitForNavigation(), contact.click()]);
  assert.match(await page.textContent("h1"), /Contact · /);
  await shot(page, "contact");

  step("member, search, policy and audit pages");
  await page.goto(`${config.url}/members/${encodeURIComponent(config.member)}`);
  assert.match(await page.textContent("h1"), /Member · /);
  await shot(page, "member");
  const domain = config.member.split("@")[1];
  await page.fill('.topbar input[name="q"]', domain.split(".")[0]);
  await Promise.all([page.waitForNavigation(), page.press('.topbar input[name="q"]', "Enter")]);
  assert.match(await page.textContent("main"), /Members \(\d+\)/);
  await shot(page, "search");
  await page.goto(`${config.url}/policy`);
  await page.fill('input[name="backfill_days"]', "120");
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Save policy")')]);
  assert.match(await noticeText(page), /Policy saved/);
  assert.equal(await page.inputValue('input[name="backfill_days"]'), "120");
  await shot(page, "policy");
  await page.goto(`${config.url}/audit`);
  const audit = await page.textContent("#audit");
  for (const action of ["connection.google.key_uploaded", "delegation.rebuilt", "link.status"]) {
    assert.ok(audit.includes(action), `the audit log shows ${action}`);
  }
  assert.match(audit, /Capture turned on by /, "events read as sentences");
  assert.match(audit, /(started|retried) \d+ mailboxes/, "a bulk action is one sentence");
  assert.equal(await page.locator("#audit tr.system").count(), 0, "people's actions only");
  await shot(page, "audit");
  await page.selectOption('#audit-filter select[name="who"]', "system");
  await Promise.all([page.waitForNavigation(), page.click('#audit-filter button:has-text("Filter")')]);
  assert.ok((await page.locator("#audit tr.system").count()) > 0, "the engine's events behind the filter");
  await shot(page, "audit-system");

  step("a form's address opened directly, and an unknown page: a page with a way back");
  const notAllowed = await page.goto(`${config.url}/users/rebuild`);
  assert.equal(notAllowed.status(), 405);
  assert.match(await page.textContent("main"), /405/);
  await shot(page, "method-not-allowed");
  const missing = await page.goto(`${config.url}/no-such-page`);
  assert.equal(missing.status(), 404);
  await shot(page, "not-found");
  await Promise.all([page.waitForNavigation(), page.click("a#back")]);
  assert.match(page.url(), /\/users$/, "the way back leads into the console");
  await context.close();
}

async function memberWalk(browser) {
  step("a member's restricted view");
  const { context, page } = await open(browser, { viewport: { width: 1280, height: 760 } });
  await signIn(page, config.member);
  assert.match(page.url(), /\/me$/);
  assert.match(await page.textContent("main"), new RegExp(config.member.replace(/\./g, "\\.")));
  const nav = await page.textContent(".topbar nav");
  assert.ok(!nav.includes("Users") && !nav.includes("Setup"), "no admin navigation");
  // The choices are the mailbox's own labels, by name: one made there just now is
  // offered under its name, with its id as the value saved.
  const label = await createMailboxLabel(config.member, "Walk/Named label");
  await page.reload();
  const choice = page.locator("label.choice", { hasText: label.name });
  assert.equal(await choice.count(), 1, `the member page offers ${label.name}`);
  assert.equal(await choice.locator('input[name="label"]').getAttribute("value"), label.id);
  await choice.locator('input[name="label"]').check();
  await page.check('input[name="label"][value="STARRED"]');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Save labels")')]);
  assert.match(await noticeText(page), /2 extra label/);
  assert.ok(await page.isChecked(`input[name="label"][value="${label.id}"]`));
  assert.ok(await page.isChecked('input[name="label"][value="STARRED"]'));
  await shot(page, "member-own-settings");
  const forbidden = await page.goto(`${config.url}/users`);
  assert.equal(forbidden.status(), 403);
  assert.match(await page.textContent("main"), /for administrators/);
  await shot(page, "member-forbidden");

  step("a member's own CRM: relationships with scores, companies, a contact's timeline");
  await page.goto(`${config.url}/me`);
  await Promise.all([
    page.waitForNavigation(),
    page.click('.topbar nav a:has-text("My relationships")'),
  ]);
  assert.match(await page.textContent("h1"), /Member · /);
  const own = await page.textContent("main");
  assert.match(own, /Strongest relationships/);
  assert.match(own, /halves every 90 days without contact/, "the score has its legend");
  assert.ok((await page.locator("ol.timeline > li").count()) > 0, "their own timeline");
  assert.match(await page.locator(".captured").first().textContent(), /Captured from .*\(Google\)/);
  await shot(page, "member-own-relationships");
  await page.goto(`${config.url}/companies`);
  assert.ok((await page.locator('#companies a[href^="/companies/"]').count()) > 0, "their companies");
  await shot(page, "member-companies");
  await page.goto(`${config.url}/members/${encodeURIComponent(config.member)}`);
  const contact = page.locator('table a[href^="/contacts/"]').first();
  await Promise.all([page.waitForNavigation(), contact.click()]);
  assert.match(await page.textContent("h1"), /Contact · /);
  await shot(page, "member-contact");
  await Promise.all([page.waitForNavigation(), page.click('a:has-text("How the score works")')]);
  assert.match(await page.textContent("h1"), /Relationship score/);
  await shot(page, "member-score-help");
  await context.close();
}

async function disconnectWalk(browser) {
  step("Disconnect: capture stops, the key is forgotten, the timelines stay");
  const { context, page } = await open(browser, { viewport: { width: 1280, height: 860 } });
  await signIn(page, config.admin);
  await page.goto(`${config.url}/companies`);
  await Promise.all([
    page.waitForNavigation(),
    page.locator('#companies a[href^="/companies/"]').first().click(),
  ]);
  const company = page.url();
  const before = await page.locator("ol.timeline > li").count();
  assert.ok(before > 0, "the company has a timeline before");
  await page.goto(`${config.url}/setup`);
  await Promise.all([page.waitForNavigation(), page.click("a#disconnect")]);
  assert.match(await page.textContent("#disconnect-confirm"), /keeps everything captured/);
  await shot(page, "disconnect-confirm");
  await Promise.all([page.waitForNavigation(), page.click('#disconnect-confirm button[type="submit"]')]);
  assert.match(page.url(), /\/setup/, "back on the setup page");
  assert.match(await noticeText(page), /[Dd]isconnected/);
  await shot(page, "disconnected");
  // The answer was a redirect: reloading the page posts nothing again.
  await page.reload();
  assert.equal(await page.locator("a#disconnect").count(), 0, "nothing left to disconnect");
  await page.goto(company);
  assert.equal(await page.locator("ol.timeline > li").count(), before, "the timeline is kept");
  await page.goto(`${config.url}/users`);
  const statuses = await page
    .locator("#user-rows tr[data-link]")
    .evaluateAll((rows) => rows.map((row) => row.dataset.status));
  assert.ok(statuses.length > 0 && statuses.every((s) => s === "unlinked"), "every mailbox unlinked");
  await shot(page, "users-after-disconnect");
  await page.goto(`${config.url}/audit`);
  assert.match(await page.textContent("#audit"), /[Dd]isconnected/, "the audit log says so");
  await context.close();
}

start(() => run(adminWalk, memberWalk, disconnectWalk));
