// Seals and opens format-v2 cookies with Node's built-in crypto module,
// written from crypto/FORMAT.md, for session's interop test. Reads JSON on
// stdin:
//   {key: hex,
//    open:    [{cookie, purpose, chunks}],           cookies sealed in Go, to open
//    refuse:  [{cookie, purpose, chunks}],           cookies that must not open
//    seal:    [{value: base64, purpose, chunks, envelope}],
//    digests: [{kind: "sid"|"sub", issuer, v}]}
// An envelope is {id: hex, started: decimal string, expires: decimal string,
// sid: hex, sub: hex}. Writes {opened: [{value: base64, envelope}],
// refused: [bool], sealed: [cookie], digests: [hex]}.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const input = JSON.parse(readFileSync(0, 'utf8'));
const key = Buffer.from(input.key, 'hex');
const TRAILER = 64;

// "tokenhandler cookie v2" ‖ 0x00 ‖ purpose ‖ chunks
function associatedData(purpose, chunks) {
  return Buffer.concat([Buffer.from('tokenhandler cookie v2', 'ascii'), Buffer.from([0, purpose, chunks])]);
}

function trailer(env) {
  const t = Buffer.alloc(TRAILER);
  Buffer.from(env.id, 'hex').copy(t, 0);
  t.writeBigInt64BE(BigInt(env.started), 16);
  t.writeBigInt64BE(BigInt(env.expires), 24);
  Buffer.from(env.sid, 'hex').copy(t, 32);
  Buffer.from(env.sub, 'hex').copy(t, 48);
  return t;
}

function readTrailer(t) {
  return {
    id: t.subarray(0, 16).toString('hex'),
    started: t.readBigInt64BE(16).toString(),
    expires: t.readBigInt64BE(24).toString(),
    sid: t.subarray(32, 48).toString('hex'),
    sub: t.subarray(48, 64).toString('hex'),
  };
}

function open({ cookie, purpose, chunks }) {
  if (!/^[A-Za-z0-9_-]*$/.test(cookie) || cookie.length % 4 === 1) throw new Error('not base64url');
  const raw = Buffer.from(cookie, 'base64url');
  if (raw.length < 1 + 12 + TRAILER + 16 || raw[0] !== 0x02) throw new Error('not a v2 cookie');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(1, 13));
  decipher.setAAD(associatedData(purpose, chunks));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  const plain = Buffer.concat([decipher.update(raw.subarray(13, raw.length - 16)), decipher.final()]);
  const n = plain.length - TRAILER;
  return { value: plain.subarray(0, n).toString('base64'), envelope: readTrailer(plain.subarray(n)) };
}

function refused(c) {
  try {
    open(c);
    return false;
  } catch {
    return true;
  }
}

function seal({ value, purpose, chunks, envelope }) {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(associatedData(purpose, chunks));
  const plain = Buffer.concat([Buffer.from(value, 'base64'), trailer(envelope)]);
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([Buffer.from([0x02]), nonce, ciphertext, cipher.getAuthTag()]).toString('base64url');
}

// The first 16 bytes of SHA-256( L("tokenhandler " + kind) ‖ L(issuer) ‖ L(v) ),
// L(s) = the length of s in bytes, 4 bytes big endian, then s.
function digest({ kind, issuer, v }) {
  const h = createHash('sha256');
  for (const s of ['tokenhandler ' + kind, issuer, v]) {
    const b = Buffer.from(s, 'utf8');
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    h.update(n);
    h.update(b);
  }
  return h.digest().subarray(0, 16).toString('hex');
}

process.stdout.write(JSON.stringify({
  opened: input.open.map(open),
  refused: input.refuse.map(refused),
  sealed: input.seal.map(seal),
  digests: input.digests.map(digest),
}));
