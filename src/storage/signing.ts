/**
 * Signed, expiring image URLs, like Azure's blob SAS URLs (`se` = signed expiry, `sig`):
 * anyone holding the URL can download until it expires, nobody can forge or extend one.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type VerifyResult = 'ok' | 'expired' | 'invalid';

export const SECRET_FILE_NAME = 'url-signing.key';
const SECRET_BYTES = 32;

export class UrlSigner {
  readonly #secret: Buffer;

  constructor(secret: Buffer) {
    if (secret.length < 16) throw new Error('The URL signing secret must be at least 16 bytes.');
    this.#secret = Buffer.from(secret);
  }

  /** The query string (without "?") that makes `path` downloadable until `expiresUnix`. */
  sign(path: string, expiresUnix: number): string {
    const se = String(Math.floor(expiresUnix));
    return `se=${se}&sig=${this.#mac(path, se)}`;
  }

  /** The signature is checked before the expiry, so a forged URL never learns it has "expired". */
  verify(path: string, query: { se?: string; sig?: string }, nowUnix: number): VerifyResult {
    const { se, sig } = query;
    if (typeof se !== 'string' || typeof sig !== 'string' || !/^\d{1,15}$/.test(se)) return 'invalid';
    // Compare the base64url text, not decoded bytes: Node's base64 decoder skips stray characters,
    // so two different strings could decode to the same MAC.
    const expected = Buffer.from(this.#mac(path, se), 'latin1');
    const given = Buffer.from(sig, 'latin1');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    // At the expiry second the URL is already expired, as the sweeper treats `expires <= now`.
    return nowUnix >= Number(se) ? 'expired' : 'ok';
  }

  #mac(path: string, se: string): string {
    return createHmac('sha256', this.#secret).update(`${path}\n${se}`).digest('base64url');
  }
}

/**
 * The secret kept in `<dataDir>/url-signing.key`, created on first start, so URLs handed out
 * before a restart still work after it.
 */
export function loadOrCreateSecret(dataDir: string): Buffer {
  const file = join(dataDir, SECRET_FILE_NAME);
  mkdirSync(dataDir, { recursive: true });
  // Write a temp file, then link it into place: link() fails if the file exists, so two processes
  // starting together keep one secret, and neither can read a half-written file.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, randomBytes(SECRET_BYTES), { mode: 0o600 });
  try {
    linkSync(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temp);
  }
  const secret = readFileSync(file);
  if (secret.length !== SECRET_BYTES) {
    throw new Error(`${file} must hold exactly ${SECRET_BYTES} bytes; delete it to create a new one.`);
  }
  return secret;
}
