// SKETCH, not run here (k6 and xk6 are not installed on this machine): a k6
// script for a k6 built with the xk6-nats extension
// (`xk6 build --with github.com/ydarias/xk6-nats@latest`). It publishes
// allot orders to JetStream as a trusted producer does: MessagePack on
// `orders.<warehouse>.<sku>` with header `Nats-Msg-Id` = order id.
// allot's NATS intake takes MessagePack only; the extension publishes raw
// bytes (`raw`), so ./msgpack.js encodes the order.
//
//   ./k6 run -e NATS_URL=nats://127.0.0.1:4222 -e RATE=500 loadtest/k6/nats.js
//
// Stock is not set here (that is HTTP: run orders.js's setup, or PUT
// /v1/stock yourself), so without it orders are decided out of stock.
// The extension's jetStreamPublishMsg throws when the publish fails; its
// PubAck is not returned, so a duplicate cannot be told apart from a new
// order (ids here are unique, so none is expected).
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import { Nats } from 'k6/x/nats';
import { encodeMap } from './msgpack.js';
import { env } from './env.js';

const NATS_URL = env('NATS_URL', 'nats://127.0.0.1:4222');
const SKUS = Number(env('SKUS', 16));
const WAREHOUSES = env('WAREHOUSES', 'ams,fra').split(',');
const RUN = env('RUN', `k6n${Date.now().toString(36)}`);

export const options = {
  scenarios: {
    publish: {
      executor: 'constant-arrival-rate',
      rate: Number(env('RATE', 200)),
      timeUnit: '1s',
      duration: env('DURATION', '30s'),
      preAllocatedVUs: Number(env('PRE_ALLOCATED_VUS', 20)),
      maxVUs: Number(env('VUS', 100)),
    },
  },
  thresholds: {
    publish_duration: [`p(95)<${Number(env('P95_MS', 50))}`],
    checks: ['rate>0.99'],
  },
};

const publishDuration = new Trend('publish_duration', true);
// One connection per VU, opened when the VU starts.
const nats = new Nats({ servers: [NATS_URL] });

export default function () {
  const n = __VU * 7919 + __ITER;
  const warehouse = WAREHOUSES[n % WAREHOUSES.length];
  const sku = `LT-${Math.floor(n / WAREHOUSES.length) % SKUS}`;
  const id = `${RUN}-${__VU}-${__ITER}`;
  const raw = encodeMap({ v: 1, id, sku, quantity: 1, warehouse });
  const started = Date.now();
  let ok = true;
  try {
    nats.jetStreamPublishMsg({ topic: `orders.${warehouse}.${sku}`, raw, headers: { 'Nats-Msg-Id': id } });
  } catch (e) {
    ok = false;
  }
  publishDuration.add(Date.now() - started);
  check(ok, { 'published to JetStream': (published) => published });
}

export function teardown() {
  nats.close();
}
