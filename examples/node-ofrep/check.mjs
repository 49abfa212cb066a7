// A check of Switchyard from JavaScript: the OpenFeature server SDK and
// web SDK with their OFREP providers, against a live server started with
// this folder's flags.json and client tokens required:
//
//   switchyard serve --flags examples/node-ofrep/flags.json --require-client-token \
//     --tokens "ops:admin:$ADMIN_SECRET,web:client:$CLIENT_SECRET"
//   SWITCHYARD_URL=http://127.0.0.1:8080 SWITCHYARD_ADMIN_TOKEN=$ADMIN_SECRET \
//     SWITCHYARD_CLIENT_TOKEN=$CLIENT_SECRET node check.mjs
//
// It changes the runtime (an override, FREEZE_UPDATES) and sets it back.
// The Go test cmd/switchyard TestNodeOFREPCheck runs it.

import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OpenFeature as WebOpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

// The web provider follows Switchyard's event stream with the global
// EventSource, which browsers have and Node 20 lacks; it has fetch.
globalThis.EventSource ??= EventSource;

const baseUrl = process.env.SWITCHYARD_URL;
const adminToken = process.env.SWITCHYARD_ADMIN_TOKEN;
const clientToken = process.env.SWITCHYARD_CLIENT_TOKEN;
if (!baseUrl || !adminToken || !clientToken) {
  console.error('set SWITCHYARD_URL, SWITCHYARD_ADMIN_TOKEN and SWITCHYARD_CLIENT_TOKEN');
  process.exit(2);
}
const bearer = (token) => [['Authorization', `Bearer ${token}`]];

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message}`);
  }
}

// change sends an admin change and fails unless it is applied.
async function change(path, body, method = 'POST') {
  const res = await fetch(baseUrl + path, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `${method} ${path}: ${res.status} ${await res.text()}`);
}
const setFreeze = (on) =>
  change('/v1/admin/runtime/flags', {
    flag: 'FREEZE_UPDATES', value: on, phrase: `${on ? 'ENABLE' : 'DISABLE'} FREEZE UPDATES`, reason: 'node OFREP check',
  });

// within resolves with what promise does, or fails after ms.
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The server SDK: every evaluation is one OFREP call.
await OpenFeature.setProviderAndWait('switchyard', new OFREPProvider({ baseUrl, headers: bearer(clientToken) }));
const server = OpenFeature.getClient('switchyard');
const user = { targetingKey: 'learner-9' };

await check('typed values: boolean, string, number, object', async () => {
  assert.equal(await server.getBooleanValue('EXAM_MODE', true, user), false);
  assert.equal(await server.getStringValue('module.mastery', 'v0', user), 'v1');
  assert.equal(await server.getNumberValue('discount', 0, user), 0.15);
  assert.deepEqual(await server.getObjectValue('theme', {}, user), { background: '#fff', dense: false });
});

await check('targeting: the context decides', async () => {
  const vip = await server.getStringDetails('greeting', 'x', { targetingKey: 'vip-1' });
  assert.equal(vip.value, 'welcome back');
  assert.equal(vip.reason, 'TARGETING_MATCH');
  assert.equal(await server.getStringValue('greeting', 'x', user), 'hello');
});

await check('errors: not found, wrong type, an invalid flag of the file', async () => {
  const missing = await server.getBooleanDetails('no-such-flag', true, user);
  assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
  assert.equal(missing.value, true);
  const mistyped = await server.getNumberDetails('EXAM_MODE', 7, user);
  assert.equal(mistyped.errorCode, 'TYPE_MISMATCH');
  assert.equal(mistyped.value, 7);
  const invalid = await server.getBooleanDetails('legacy-rule', true, user);
  assert.equal(invalid.errorCode, 'PARSE_ERROR');
  assert.match(invalid.errorMessage ?? '', /no_such_operator/);
});

await check('a pinned session keeps its values through a change', async () => {
  const session = { targetingKey: 'learner-9', sessionId: `node-${Date.now()}` };
  const before = await server.getStringDetails('module.mastery', 'v0', session);
  assert.equal(before.value, 'v1');
  assert.equal(before.flagMetadata.pinned, true);
  await change('/v1/admin/runtime/override', {
    module: 'mastery', version: 'v0', phrase: 'OVERRIDE MODULE mastery TO v0', reason: 'node OFREP check',
  });
  try {
    assert.equal(await server.getStringValue('module.mastery', 'v1', user), 'v0', 'the live value');
    assert.equal(await server.getStringValue('module.mastery', 'v0', session), 'v1', 'the pinned session');
  } finally {
    await change('/v1/admin/runtime/override/mastery', { phrase: 'CLEAR OVERRIDE mastery', reason: 'node OFREP check' }, 'DELETE');
  }
});

await check('client token: none, or a wrong one, evaluates nothing', async () => {
  for (const [name, headers] of [['none', []], ['wrong', bearer('not-a-token')]]) {
    await OpenFeature.setProviderAndWait(`no-${name}`, new OFREPProvider({ baseUrl, headers })).catch(() => {});
    const refused = await OpenFeature.getClient(`no-${name}`).getBooleanDetails('EXAM_MODE', true, user);
    assert.equal(refused.reason, 'ERROR', `token ${name}`);
    assert.equal(refused.value, true, `token ${name}`);
  }
});

// The web SDK: one bulk evaluation, then what the event stream says.
await check('the web provider with its defaults hears a change over the event stream', async () => {
  await WebOpenFeature.setContext({ targetingKey: 'web-user' });
  await WebOpenFeature.setProviderAndWait(new OFREPWebProvider({ baseUrl, headers: bearer(clientToken) }));
  const web = WebOpenFeature.getClient();
  assert.equal(web.getBooleanValue('FREEZE_UPDATES', true), false);
  assert.equal(web.getStringValue('module.mastery', 'v0'), 'v1');
  for (const on of [true, false]) {
    const heard = new Promise((resolve) => {
      const handler = (details) => {
        if (details?.flagsChanged?.includes('FREEZE_UPDATES')) {
          web.removeHandler(ProviderEvents.ConfigurationChanged, handler);
          resolve(details);
        }
      };
      web.addHandler(ProviderEvents.ConfigurationChanged, handler);
    });
    const start = performance.now();
    await setFreeze(on);
    const details = await within(10_000, `FREEZE_UPDATES ${on}`, heard);
    const ms = (performance.now() - start).toFixed(1);
    assert.equal(web.getBooleanValue('FREEZE_UPDATES', !on), on);
    assert.deepEqual(details.flagsChanged, ['FREEZE_UPDATES'], 'only the flag that changed');
    console.log(`     FREEZE_UPDATES ${on}: heard ${ms} ms after the admin call`);
  }
});

await OpenFeature.close();
await WebOpenFeature.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
