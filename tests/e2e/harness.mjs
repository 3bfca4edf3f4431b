// Shared helpers for the console tests: a browser, logins, accounts made with the CLI.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

export const url = process.env.VERITY_E2E_URL;
export const adminPassword = process.env.VERITY_E2E_ADMIN_PASSWORD;

export async function browser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function login(b, username, password) {
  const page = await b.newPage();
  await page.goto(`${url}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${url}/`), page.click('button[type=submit]')]);
  return page;
}

/** Creates an account with the CLI (as an operator would) and returns its one-time password. */
export function addUser(username, role, extra = []) {
  const out = execFileSync(process.env.VERITY_BIN,
    ['user', 'add', '--data', process.env.VERITY_E2E_DATA, '--username', username, '--role', role, ...extra],
    { encoding: 'utf8' });
  const m = out.match(/one-time password: (\S+)/);
  if (!m) throw new Error(`no password in: ${out}`);
  return m[1];
}

/** Keeps a screenshot in docs/screenshots when VERITY_E2E_SCREENSHOTS=1. */
export async function screenshot(page, name) {
  if (process.env.VERITY_E2E_SCREENSHOTS !== '1') return;
  const dir = new URL('../../docs/screenshots/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: `${dir}${name}.png`, fullPage: true });
}
