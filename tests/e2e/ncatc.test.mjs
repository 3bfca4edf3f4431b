// NCATC: an analyst starts a lead run from the console and reviews a lead's evidence package;
// a field officer works their field office's queue and records a disposition; the analytics
// dashboard draws its charts and counts the disposition.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browser, login, addUser, url, screenshot } from './harness.mjs';

let b;
let analystPw;
let officerPw;
before(async () => {
  b = await browser();
  analystPw = addUser('e2e.ncatc', 'ncatc_analyst');
  officerPw = addUser('e2e.field', 'field_officer');
});
after(async () => { await b?.close(); });

test('an analyst runs lead generation and reviews a lead with its evidence', async () => {
  const page = await login(b, 'e2e.ncatc', analystPw);
  await page.goto(`${url}/ncatc/runs`);
  await page.check('input[name=full]');
  await Promise.all([page.waitForURL(/\/ncatc\/runs/), page.click('#start-run')]);
  // The run works in the background: reload until it is recorded as finished.
  let finished = false;
  for (let i = 0; i < 120 && !finished; i++) {
    await page.goto(`${url}/ncatc/runs`);
    finished = (await page.locator('#runs tr.run-finished').count()) > 0;
    if (!finished) await page.waitForTimeout(500);
  }
  assert.ok(finished, 'the lead run finished');
  await screenshot(page, 'ncatc-runs');

  await page.goto(`${url}/ncatc/leads`);
  const links = page.locator('#leads a.lead-link');
  assert.ok((await links.count()) > 0, 'the demo world yields leads');
  await Promise.all([page.waitForURL(/\/ncatc\/leads\/LR/), links.first().click()]);
  assert.equal(await page.textContent('#lead-state'), 'open');
  assert.ok((await page.locator('#records tbody tr').count()) > 0, 'supporting records listed');
  assert.match(await page.textContent('#evidence'), /Last known location or custody/);
  assert.ok(Number(await page.textContent('#confidence')) >= 0.99);
  // Analysts review; they do not record field dispositions.
  assert.equal(await page.locator('#disposition-form').count(), 0);
  await screenshot(page, 'ncatc-lead');
  await page.close();
});

test('a field officer records a disposition on a lead of a field office queue', async () => {
  const page = await login(b, 'e2e.field', officerPw);
  await page.goto(`${url}/ncatc/aor`);
  const offices = page.locator('nav.ncatc-queues a');
  assert.ok((await offices.count()) > 0, 'some field office has open leads');
  await Promise.all([page.waitForURL(/aor=/), offices.first().click()]);
  const leads = page.locator('#aor-leads a.lead-link');
  assert.ok((await leads.count()) > 0);
  await Promise.all([page.waitForURL(/\/ncatc\/aor\/leads\//), leads.first().click()]);
  const leadId = await page.textContent('#lead-id');
  await page.selectOption('#disposition', 'arrested');
  await page.fill('input[name=note]', 'arrested at the last known address');
  await page.click('#disposition-form button[type=submit]');
  await page.waitForSelector('#disposition-message');
  assert.equal(await page.textContent('#lead-state'), 'closed');
  assert.match(await page.textContent('#lead-disposition'), /Arrested/);
  await screenshot(page, 'ncatc-disposition');
  // The officer may not review leads nationally nor see analytics: deny by default.
  assert.equal((await page.goto(`${url}/ncatc/leads/${leadId}`)).status(), 403);
  assert.equal((await page.goto(`${url}/ncatc/dashboard`)).status(), 403);
  await page.close();
});

test('the dashboard draws its charts and counts the disposition', async () => {
  const page = await login(b, 'e2e.ncatc', analystPw);
  await page.goto(`${url}/ncatc/dashboard`);
  assert.ok((await page.locator('#charts svg').count()) >= 7, 'one SVG per chart');
  const captions = await page.textContent('#charts');
  for (const t of ['Query volume', 'automatic vs reviewed', 'response time', 'Queue depth',
    'Leads and dispositions by AOR', 'Leads and dispositions by rule']) {
    assert.match(captions, new RegExp(t, 'i'));
  }
  const quality = await page.textContent('#lead-quality');
  assert.match(quality, /\d/);
  const arrested = await page.$$eval('#lead-quality tbody tr', (rows) =>
    rows.reduce((n, r) => n + Number(r.children[6]?.textContent || 0), 0));
  assert.ok(arrested >= 1, 'the arrest shows in lead quality');
  await screenshot(page, 'ncatc-dashboard');
  await page.close();
});
