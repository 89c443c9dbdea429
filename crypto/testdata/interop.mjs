// Seals and opens format-v1 cookies with Node's built-in crypto module, for
// crypto's interop test. Reads {key, open: [cookie...], seal: [base64 plaintext...]}
// as JSON on stdin; writes {opened: [base64 plaintext...], sealed: [cookie...]}.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const input = JSON.parse(readFileSync(0, 'utf8'));
const key = Buffer.from(input.key, 'hex');

function open(cookie) {
  const raw = Buffer.from(cookie, 'base64url');
  if (raw.length < 29 || raw[0] !== 0x01) throw new Error('not a v1 cookie');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(1, 13));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(13, raw.length - 16)), decipher.final()]);
}

function seal(plaintext) {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([0x01]), nonce, ciphertext, cipher.getAuthTag()]).toString('base64url');
}

process.stdout.write(JSON.stringify({
  opened: input.open.map((c) => open(c).toString('base64')),
  sealed: input.seal.map((p) => seal(Buffer.from(p, 'base64'))),
}));
