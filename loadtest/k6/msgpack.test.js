// node --test: ./msgpack.js writes allot's orders byte for byte as rmp-serde
// does (the README's example), and refuses what allot would not take.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMap } from './msgpack.js';

test('the README example order encodes to its 39 bytes', () => {
  const expected = `85 a1 76 01 a2 69 64 a3 6f 2d 31 a3 73 6b 75 a3 4d 55 47 a8 71 75 61 6e
74 69 74 79 02 a6 72 65 67 69 6f 6e a2 65 75`.split(/\s+/).map((b) => parseInt(b, 16));
  assert.deepEqual(encodeMap({ v: 1, id: 'o-1', sku: 'MUG', quantity: 2, region: 'eu' }), expected);
});

// After the map header and the key "q" (3 bytes) comes the value.
test('integers take the smallest form', () => {
  assert.deepEqual(encodeMap({ q: 127 }).slice(3), [0x7f]);
  assert.deepEqual(encodeMap({ q: 200 }).slice(3), [0xcc, 200]);
  assert.deepEqual(encodeMap({ q: 1000 }).slice(3), [0xcd, 0x03, 0xe8]);
  assert.deepEqual(encodeMap({ q: 70000 }).slice(3), [0xce, 0, 1, 0x11, 0x70]);
});

test('long ids use str8', () => {
  const id = 'x'.repeat(40);
  assert.deepEqual(encodeMap({ id }).slice(0, 5), [0x81, 0xa2, 0x69, 0x64, 0xd9]);
});

test('values allot would refuse are refused here', () => {
  assert.throws(() => encodeMap({ q: -1 }), /not an integer/);
  assert.throws(() => encodeMap({ id: 'é' }), /not printable ASCII/);
});
