// What every console walk shares: Debian's Chromium through playwright-core (no browser
// is ever downloaded), numbered screenshots, signing in, reading notices, waiting for
// link statuses and for the capture notice mail, and a failure screenshot.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const assert = require("node:assert/strict");

let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch {
  console.error(
    "playwright-core is not installed: run `npm ci --prefix crates/tributary-server/e2e`",
  );
  process.exit(2);
}

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 20_000;
const SYNC_TIMEOUT_MS = 90_000;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

function step(text) {
  console.log(`- ${text}`);
}

// The helpers of one walk: `url` is the console, `password` every account's,
// `shots` the screenshot folder, `mailbox` the SMTP listener's JSON view.
function walker({ url, password, shots, mailbox }) {
  let shotNumber = 0;
  // The page in use, for a screenshot when a step fails.
  let currentPage = null;

  async function shot(page, name) {
    shotNumber += 1;
    const file = path.join(shots, `${String(shotNumber).padStart(2, "0")}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`  screenshot ${file}`);
  }

  async function signIn(page, email) {
    await page.goto(`${url}/`);
    assert.match(page.url(), /\/signin$/, "an anonymous visit lands on the sign-in page");
    await page.fill('input[name="email"]', email);
    await page.fill('input[name="password"]', password);
    await Promise.all([page.waitForNavigation(), page.click('button:has-text("Sign in")')]);
  }

  async function noticeText(page) {
    return (await page.locator(".notice").allTextContents()).join("\n");
  }

  async function waitForMail(to, subjectPart) {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const response = await fetch(mailbox);
      const mails = await response.json();
      const found = mails.find((m) => m.to.includes(to) && m.data.includes(subjectPart));
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`no mail to ${to} with "${subjectPart}" reached the SMTP listener`);
  }

  async function waitForStatuses(page, status) {
    await page.waitForFunction(
      (wanted) => {
        const rows = [...document.querySelectorAll("#user-rows tr[data-link]")];
        return rows.length > 0 && rows.every((row) => row.dataset.status === wanted);
      },
      status,
      { timeout: SYNC_TIMEOUT_MS, polling: 250 },
    );
  }

  // A new browser context (options as playwright's `newContext`) and its page.
  async function open(browser, options) {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    currentPage = page;
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    return { context, page };
  }

  // Runs `walks` one after the other in one Chromium; a failure leaves failure.png.
  async function run(...walks) {
    fs.mkdirSync(shots, { recursive: true });
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`,
      );
    }
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Containers often run as root, where Chromium's sandbox cannot start.
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
    try {
      for (const walk of walks) await walk(browser);
    } catch (error) {
      if (currentPage) {
        const file = path.join(shots, "failure.png");
        await currentPage.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.error(`failed at ${currentPage.url()}; screenshot ${file}`);
      }
      throw error;
    } finally {
      await browser.close();
    }
    console.log("walk passed");
  }

  return { shot, signIn, noticeText, waitForMail, waitForStatuses, open, run };
}

// Runs `main`, exiting non-zero on failure.
function start(main) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}

module.exports = { env, step, walker, start, SYNC_TIMEOUT_MS };
