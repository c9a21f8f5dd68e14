import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadOrCreateSecret, UrlSigner } from '../../src/storage/signing.ts';

const signer = new UrlSigner(Buffer.alloc(32, 1));
const path = '/files/images/abc.png';
const expires = 1_700_086_400;

function query(qs: string): { se?: string; sig?: string } {
  return Object.fromEntries(new URLSearchParams(qs));
}

test('a signed URL verifies until its expiry second', () => {
  const qs = signer.sign(path, expires);
  assert.match(qs, /^se=1700086400&sig=[A-Za-z0-9_-]{43}$/);
  assert.equal(signer.verify(path, query(qs), expires - 1), 'ok');
});

test('a signed URL is expired at and after its expiry second', () => {
  const q = query(signer.sign(path, expires));
  assert.equal(signer.verify(path, q, expires), 'expired');
  assert.equal(signer.verify(path, q, expires + 3600), 'expired');
});

test('a signature for another path is invalid', () => {
  const q = query(signer.sign(path, expires));
  assert.equal(signer.verify('/files/images/abd.png', q, 0), 'invalid');
});

test('a URL whose expiry was extended is invalid, not ok', () => {
  const q = query(signer.sign(path, expires));
  assert.equal(signer.verify(path, { ...q, se: String(expires + 86_400) }, expires + 10), 'invalid');
  assert.equal(signer.verify(path, { ...q, se: `0${expires}` }, 0), 'invalid');
});

test('a tampered signature is invalid, whatever its length', () => {
  const q = query(signer.sign(path, expires));
  const sig = q.sig!;
  const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
  for (const bad of [flipped, sig.slice(1), `${sig}A`, `${sig}=`, '', 'not base64 at all!']) {
    assert.equal(signer.verify(path, { ...q, sig: bad }, 0), 'invalid', bad);
  }
});

test('a URL signed with another secret is invalid', () => {
  const other = new UrlSigner(Buffer.alloc(32, 2));
  assert.equal(signer.verify(path, query(other.sign(path, expires)), 0), 'invalid');
});

test('a URL without se or sig, or with a non-numeric se, is invalid', () => {
  const q = query(signer.sign(path, expires));
  assert.equal(signer.verify(path, { sig: q.sig }, 0), 'invalid');
  assert.equal(signer.verify(path, { se: q.se }, 0), 'invalid');
  assert.equal(signer.verify(path, {}, 0), 'invalid');
  assert.equal(signer.verify(path, { ...q, se: '1e12' }, 0), 'invalid');
});

test('the signing secret is created once with mode 0600 and read back after a restart', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'easel-secret-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dataDir = join(root, 'data');
  const first = loadOrCreateSecret(dataDir);
  assert.equal(first.length, 32);
  const file = join(dataDir, 'url-signing.key');
  assert.deepEqual(await readFile(file), first);
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  const second = loadOrCreateSecret(dataDir);
  assert.deepEqual(second, first);
  const qs = new UrlSigner(first).sign(path, expires);
  assert.equal(new UrlSigner(second).verify(path, query(qs), 0), 'ok');
});
