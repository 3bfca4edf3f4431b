// Foundation: login, the home page's record counts, account creation, deny by default, audit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browser, login, addUser, url, adminPassword, screenshot } from './harness.mjs';

let b;
before(async () => { b = await browser(); });
after(async () => { await b?.close(); });

test('a wrong password is refused and the login page says so', async () => {
  const page = await b.newPage();
  await page.goto(`${url}/login`);
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', 'not-the-password');
  await page.click('button[type=submit]');
  await page.waitForSelector('.error');
  assert.match(await page.textContent('.error'), /Wrong username or password/);
  await screenshot(page, 'login');
  await page.close();
});

test('admin logs in, sees the demo world counts and creates an account', async () => {
  const page = await login(b, 'admin', adminPassword);
  const total = await page.textContent('#record-counts tfoot .num');
  assert.ok(Number(total) > 3000, `expected demo records, got ${total}`);
  await screenshot(page, 'home');
  await page.goto(`${url}/admin/users`);
  await page.fill('input[name=username]', 'e2e.specialist');
  await page.fill('input[name=display_name]', 'E2E Specialist');
  await page.selectOption('select[name=role]', 'lesc_specialist');
  await page.click('form.grid button[type=submit]');
  await page.waitForSelector('#one-time-password');
  assert.ok((await page.textContent('#one-time-password')).length >= 20);
  await screenshot(page, 'users');
  // The administrator manages accounts but may not read the audit log: deny by default.
  const resp = await page.goto(`${url}/audit`);
  assert.equal(resp.status(), 403);
  await page.close();
});

test('an unauthenticated visitor is sent to the login page', async () => {
  const page = await b.newPage();
  await page.goto(`${url}/admin/users`);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.close();
});

test('the auditor sees logins and refusals in an intact hash chain', async () => {
  const pw = addUser('e2e.auditor', 'auditor');
  const page = await login(b, 'e2e.auditor', pw);
  await page.goto(`${url}/audit`);
  assert.match(await page.textContent('#chain-status'), /Hash chain intact/);
  const body = await page.textContent('table');
  assert.match(body, /login_failed/);
  assert.match(body, /access_denied/);
  assert.match(body, /user_created/);
  await screenshot(page, 'audit');
  await page.close();
});
