// The admin's Microsoft 365 flow in a real browser: sign in, choose Microsoft 365, see
// the permissions to grant, save the app registration with a client secret (only its
// ending is shown back), grant admin consent on the (emulated) Microsoft page and come
// back to a recorded consent and a passing test, test the connection, enable capture
// (the admins are mailed), rebuild matching from the Microsoft directory, start every
// mailbox and watch them become idle with counts. Screenshots go to $SCREENSHOT_DIR.
//
// Run by `cargo test -p tributary-server --test e2e`, which starts the Microsoft
// emulator (without consent), the server with a worker, and the SMTP listener:
//   CONSOLE_URL, ADMIN_EMAIL, PASSWORD, MS_TENANT_ID, MS_CLIENT_ID, MS_CLIENT_SECRET,
//   MS_BASE_URL, MAILBOX_URL, SCREENSHOT_DIR
"use strict";

const assert = require("node:assert/strict");
const { env, step, walker, start } = require("./lib.js");

const config = {
  url: env("CONSOLE_URL").replace(/\/$/, ""),
  admin: env("ADMIN_EMAIL"),
  password: env("PASSWORD"),
  tenantId: env("MS_TENANT_ID"),
  clientId: env("MS_CLIENT_ID"),
  secret: env("MS_CLIENT_SECRET"),
  microsoft: env("MS_BASE_URL").replace(/\/$/, ""),
  mailbox: env("MAILBOX_URL"),
  shots: env("SCREENSHOT_DIR"),
};

const { shot, signIn, noticeText, waitForMail, waitForStatuses, open, run } = walker(config);

async function assertNoSecret(page) {
  assert.ok(!(await page.content()).includes(config.secret), "the secret is never shown");
}

async function microsoftWalk(browser) {
  // The emulator's TLS certificate comes from its own CA, which Chromium does not know.
  const { context, page } = await open(browser, {
    viewport: { width: 1280, height: 860 },
    ignoreHTTPSErrors: true,
  });

  step("sign in and choose Microsoft 365");
  await signIn(page, config.admin);
  assert.match(page.url(), /\/setup$/, "a new admin with nothing connected starts on the setup");
  await shot(page, "setup-choice");
  await Promise.all([page.waitForNavigation(), page.click('#provider-switch a:has-text("Microsoft 365")')]);
  assert.match(page.url(), /\/setup\/microsoft$/);
  const permissions = await page.textContent("#permissions");
  for (const name of ["User.Read.All", "Mail.ReadBasic.All"]) {
    assert.ok(permissions.includes(name), `the permission ${name} is listed`);
  }
  assert.equal(await page.locator("#grant-consent").count(), 0, "no consent before an app");
  await shot(page, "microsoft-start");

  step("a client ID that is not a GUID is refused, nothing stored");
  await page.fill('input[name="tenant_id"]', config.tenantId);
  await page.fill('input[name="client_id"]', "my-app");
  await page.fill('input[name="client_secret"]', config.secret);
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Save app registration")')]);
  assert.match(await noticeText(page), /Application \(client\) ID is not usable: .*GUID.*Nothing was stored/);
  assert.equal(await page.locator("#stored-app").count(), 0);
  assert.equal(await page.inputValue('input[name="tenant_id"]'), config.tenantId, "the IDs typed are kept");
  assert.equal(await page.inputValue('input[name="client_secret"]'), "", "the secret is not");
  await assertNoSecret(page);
  await shot(page, "microsoft-bad-client-id");

  step("save the app registration with its secret");
  await page.fill('input[name="tenant_id"]', config.tenantId);
  await page.fill('input[name="client_id"]', config.clientId);
  await page.fill('input[name="client_secret"]', config.secret);
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Save app registration")')]);
  assert.match(await noticeText(page), /App registration saved/);
  assert.equal((await page.textContent("#secret-ending")).trim(), `…${config.secret.slice(-3)}`);
  await assertNoSecret(page);
  await shot(page, "microsoft-app-saved");

  step("before consent, the test shows Microsoft's refusal and what to do");
  await Promise.all([page.waitForNavigation(), page.click('#step-test button:has-text("Test connection")')]);
  const refused = await page.textContent("#connection-check");
  assert.match(refused, /Microsoft said:.*AADSTS7000229/s);
  assert.match(refused, /What to do:/);
  await shot(page, "microsoft-test-before-consent");

  step("grant admin consent on Microsoft's page and come back");
  const consentUrl = await page.getAttribute("#grant-consent", "href");
  assert.ok(
    consentUrl.startsWith(`${config.microsoft}/${config.tenantId}/v2.0/adminconsent?`),
    `the consent link goes to the configured identity platform: ${consentUrl}`,
  );
  await Promise.all([
    page.waitForURL(/\/setup\/microsoft\?flash=/),
    page.click("#grant-consent"),
  ]);
  assert.match(await noticeText(page), /Admin consent granted/);
  assert.match(await page.textContent("#consent-state"), /Consent granted/);
  assert.match(await page.textContent("#connection-check"), /Connected/);
  await shot(page, "microsoft-consented");

  step("test the connection");
  await Promise.all([page.waitForNavigation(), page.click('#step-test button:has-text("Test connection")')]);
  assert.match(await page.textContent("#connection-check"), /Connected/);
  await assertNoSecret(page);
  await shot(page, "microsoft-tested");

  step("enable capture: the admins are mailed");
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Enable capture")')]);
  assert.match(await noticeText(page), /notified by email/);
  assert.equal((await page.textContent("#capture-state")).trim(), "On");
  await waitForMail(config.admin, "capture is on");
  await shot(page, "microsoft-capture-on");

  step("rebuild matching from the Microsoft directory, start every mailbox, watch them sync");
  await page.goto(`${config.url}/users`);
  await Promise.all([page.waitForNavigation(), page.click('#rebuild button:has-text("Rebuild")')]);
  assert.match(await noticeText(page), /User matching rebuilt/);
  const rows = page.locator("#user-rows tr[data-link]");
  const linkCount = await rows.count();
  assert.ok(linkCount >= 2, `the rebuild linked Microsoft mailboxes (${linkCount})`);
  await shot(page, "microsoft-users-rebuilt");
  await page.check("#select-all");
  await Promise.all([page.waitForNavigation(), page.click('#bulk button[value="start"]')]);
  assert.match(await noticeText(page), /\d+ started[;.]/);
  await waitForStatuses(page, "idle");
  const synced = await page.textContent("#user-rows");
  assert.match(synced, /Idle/);
  assert.match(synced, /\+\d+ added/);
  await shot(page, "microsoft-users-idle");

  step("the audit log tells the setup as sentences");
  await page.goto(`${config.url}/audit`);
  const audit = await page.textContent("#audit");
  assert.ok(!audit.includes(config.secret), "the audit log does not hold the secret");
  await shot(page, "microsoft-audit");
  await context.close();
}

start(() => run(microsoftWalk));
