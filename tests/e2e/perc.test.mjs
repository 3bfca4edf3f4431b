// PERC console: a LESC specialist issues answers for people in custody (which puts them in the
// PERC triage queue); a PERC officer prepares a detainer, a supervisor approves it, the officer
// lodges it and records it honored. A second case, whose subject turns out to have citizenship
// indicia, cannot be lodged: the gate's refusal is on the page and in the action's history.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { browser, login, addUser, url, screenshot } from './harness.mjs';

const data = process.env.VERITY_E2E_DATA;

let b;
let specialist;
let officer;
let supervisor;
const cases = [];

/** Review queries a specialist may answer that PERC will take: in custody, covered AOR, removable. */
function candidateQueries() {
  const sql = "SELECT query_id FROM queries WHERE state = 'in_review' AND in_custody = 1 " +
    "AND citizenship_review = 0 AND status IN ('final_order_of_removal', 'previously_removed', " +
    "'entered_without_inspection', 'nonimmigrant_overstay', 'pending_removal_proceedings') " +
    "ORDER BY received_micros LIMIT 40";
  return execFileSync('sqlite3', ['-readonly', `${data}/verity.db`, sql], { encoding: 'utf8' })
    .trim().split('\n').filter(Boolean);
}

/** The specialist confirms the top candidate and issues the IAR; true when PERC took the case. */
async function issue(queryId) {
  await specialist.goto(`${url}/lesc/queries/${queryId}`);
  if (!(await specialist.$('#confirm-form input[name=candidate][value="0"]'))) return false;
  await specialist.check('#confirm-form input[name=candidate][value="0"]');
  await Promise.all([specialist.waitForURL(/done=confirm/), specialist.click('#confirm-form button[type=submit]')]);
  await Promise.all([specialist.waitForURL(/\/iar/), specialist.click('#issue-form button[type=submit]')]);
  const resp = await officer.goto(`${url}/perc/cases/PC-${queryId}`);
  return resp.status() === 200;
}

async function prepareDetainer(page, caseId) {
  await page.goto(`${url}/perc/cases/${caseId}`);
  await page.selectOption('#prepare-form select[name=kind]', 'detainer');
  await page.selectOption('#prepare-form select[name=basis]', 'statements_or_evidence');
  await page.selectOption('#prepare-form select[name=warrant]', 'I200');
  await page.click('#prepare-form button[type=submit]');
  await page.waitForSelector('.perc-action');
}

async function press(page, event) {
  await page.click(`.perc-action form:has(input[name=event][value=${event}]) button`);
  await page.waitForLoadState('load');
}

before(async () => {
  b = await browser();
  specialist = await login(b, 'e2e.perc.lesc', addUser('e2e.perc.lesc', 'lesc_specialist'));
  officer = await login(b, 'e2e.perc.officer', addUser('e2e.perc.officer', 'perc_officer'));
  supervisor = await login(b, 'e2e.perc.sup', addUser('e2e.perc.sup', 'supervisor'));
  for (const q of candidateQueries()) {
    if (await issue(q)) cases.push(`PC-${q}`);
    if (cases.length === 2) break;
  }
});
after(async () => { await b?.close(); });

test('issued answers for people in custody reach the ranked triage queue', async () => {
  assert.equal(cases.length, 2, 'expected two PERC cases from specialist-issued answers');
  await officer.goto(`${url}/perc/queue`);
  const body = await officer.textContent('table.perc-queue');
  for (const c of cases) assert.match(body, new RegExp(c));
  assert.match(body, /priority-/, 'each rank shows its policy version');
  await screenshot(officer, 'perc-queue');
});

test('prepare -> approve (second person, supervisor) -> lodge -> honored', async () => {
  const caseId = cases[0];
  await prepareDetainer(officer, caseId);
  assert.match(await officer.textContent('.perc-action .state'), /prepared/);
  // The officer has no approve button: approval is the supervisor's.
  assert.equal(await officer.$('.perc-action form[action$="/approve"]'), null);

  await supervisor.goto(`${url}/perc/cases/${caseId}`);
  await supervisor.click('.perc-action form[action$="/approve"] button');
  await supervisor.waitForLoadState('load');
  assert.match(await supervisor.textContent('.perc-action .state'), /approved/);

  await officer.goto(`${url}/perc/cases/${caseId}`);
  await press(officer, 'lodge');
  assert.match(await officer.textContent('.perc-action .state'), /lodged/);
  await screenshot(officer, 'perc-case');

  // The agency notifies the release time: the 48-hour clock (business hours) runs from it.
  const releasedAt = new Date(Date.now() - 3600_000).toISOString().slice(0, 16);
  await officer.fill('.perc-action input[name=released_at]', releasedAt);
  await press(officer, 'release_notified');
  assert.match(await officer.textContent('#perc-message'), /hold clock runs from it/);

  await officer.goto(`${url}/perc/board`);
  const board = await officer.textContent('table.perc-board');
  assert.match(board, /lodged/);
  assert.match(board, /(running|reminder|escalate)/, 'the lodged detainer shows its clock');
  await screenshot(officer, 'perc-board');

  await officer.goto(`${url}/perc/cases/${caseId}`);
  const href = await officer.getAttribute('.perc-action a[href$="packet.pdf"]', 'href');
  assert.ok(href, 'the action links its PDF packet');
  const pdf = await officer.request.get(`${url}${href}`);
  assert.equal(pdf.headers()['content-type'], 'application/pdf');

  await press(officer, 'honor');
  assert.match(await officer.textContent('.perc-action .state'), /honored/);
  const history = await officer.textContent('.perc-events');
  for (const step of ['prepare', 'approve', 'lodge', 'honor']) assert.match(history, new RegExp(step));
  assert.match(history, /e2e\.perc\.sup/);
});

test('a subject with citizenship indicia cannot be lodged: the gate says why', async () => {
  const caseId = cases[1];
  await prepareDetainer(officer, caseId);
  await supervisor.goto(`${url}/perc/cases/${caseId}`);
  await supervisor.click('.perc-action form[action$="/approve"] button');
  await supervisor.waitForLoadState('load');
  assert.match(await supervisor.textContent('.perc-action .state'), /approved/);

  // At the jail the subject presents a U.S. birth certificate: the officer records it.
  await officer.goto(`${url}/perc/cases/${caseId}`);
  await officer.selectOption('#citizenship-form select[name=what]', 'indicia');
  await officer.fill('#citizenship-form input[name=note]', 'presented a U.S. birth certificate at booking');
  await officer.click('#citizenship-form button[type=submit]');
  await officer.waitForLoadState('load');

  await press(officer, 'lodge');
  const refusal = await officer.textContent('#perc-refusal');
  assert.match(refusal, /unresolved U\.S\. citizenship indicia/);
  assert.match(await officer.textContent('.perc-action .state'), /approved/, 'still not lodged');
  assert.match(await officer.textContent('.perc-events'), /citizenship_indicia/);
  await screenshot(officer, 'perc-refusal');

  await officer.goto(`${url}/perc/metrics`);
  assert.match(await officer.textContent('#refusals'), /citizenship_indicia/);
});
