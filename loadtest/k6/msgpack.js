// The smallest MessagePack encoder allot's orders need: a map of string keys
// to ASCII strings and non-negative integers, as rmp-serde's named encoding
// writes it (README "Wire format"). k6 has no MessagePack module; this one
// runs in k6 and in node (check.sh compares it with the README's bytes).

function encodeString(s, out) {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7e) {
      throw new Error(`msgpack: ${JSON.stringify(s)} is not printable ASCII`);
    }
  }
  if (s.length < 32) {
    out.push(0xa0 | s.length);
  } else if (s.length < 256) {
    out.push(0xd9, s.length);
  } else {
    throw new Error(`msgpack: string of ${s.length} bytes is longer than an order field may be`);
  }
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
}

function encodeUint(n, out) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new Error(`msgpack: ${n} is not an integer in 0..=4294967295`);
  }
  if (n < 0x80) out.push(n);
  else if (n < 0x100) out.push(0xcc, n);
  else if (n < 0x10000) out.push(0xcd, n >> 8, n & 0xff);
  else out.push(0xce, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

// `fields` as a MessagePack map, keys in insertion order; returns the bytes
// as an array of numbers (what xk6-nats takes as `raw`).
export function encodeMap(fields) {
  const entries = Object.entries(fields).filter(([, value]) => value !== undefined);
  if (entries.length > 15) throw new Error('msgpack: more than 15 fields');
  const out = [0x80 | entries.length];
  for (const [key, value] of entries) {
    encodeString(key, out);
    if (typeof value === 'string') encodeString(value, out);
    else encodeUint(value, out);
  }
  return out;
}
