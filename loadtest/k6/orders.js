// k6 load test of allot's HTTP API: orders at POST /v1/orders at a constant
// arrival rate. setup() sets stock on every partition first (PUT
// /v1/stock/{warehouse}/{sku}) so orders are confirmed, not rejected.
// Every order id is unique (run prefix, VU, iteration), so each answers 202.
//
//   k6 run loadtest/k6/orders.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e RATE=500 -e DURATION=30s loadtest/k6/orders.js
//
// Settings (environment, `-e NAME=value`): BASE_URL, RATE (orders/s),
// DURATION, VUS (max VUs), PRE_ALLOCATED_VUS, SKUS (count), WAREHOUSES
// (comma-separated), STOCK (units per partition), P95_MS, MAX_ERROR_RATE.
import http from 'k6/http';
import { check } from 'k6';
import { env, positiveInt } from './env.js';

const BASE_URL = env('BASE_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
const RATE = positiveInt('RATE', 200);
const DURATION = env('DURATION', '30s');
const PRE_ALLOCATED_VUS = positiveInt('PRE_ALLOCATED_VUS', 20);
const VUS = positiveInt('VUS', 100);
const SKUS = positiveInt('SKUS', 16);
const WAREHOUSES = env('WAREHOUSES', 'ams,fra').split(',').map((w) => w.trim()).filter((w) => w);
const STOCK = positiveInt('STOCK', 1000000);
const P95_MS = Number(env('P95_MS', 50));
const MAX_ERROR_RATE = Number(env('MAX_ERROR_RATE', 0.01));
const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' } };

if (WAREHOUSES.length === 0) {
  throw new Error('WAREHOUSES is empty: name at least one warehouse');
}

export const options = {
  scenarios: {
    orders: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_ALLOCATED_VUS,
      maxVUs: VUS,
    },
  },
  thresholds: {
    http_req_duration: [`p(95)<${P95_MS}`],
    http_req_failed: [`rate<${MAX_ERROR_RATE}`],
    checks: ['rate>0.99'],
  },
};

// Every (warehouse, SKU) the orders go to; SKUs are LT-0, LT-1, ...
const PARTITIONS = WAREHOUSES.flatMap((warehouse) =>
  Array.from({ length: SKUS }, (_, i) => ({ warehouse, sku: `LT-${i}` })),
);

export function setup() {
  for (const { warehouse, sku } of PARTITIONS) {
    const url = `${BASE_URL}/v1/stock/${warehouse}/${sku}`;
    const res = http.put(url, JSON.stringify({ on_hand: STOCK }), JSON_HEADERS);
    if (res.status < 200 || res.status >= 300) {
      throw new Error(`setting stock: PUT ${url} answered ${res.status}: ${res.body}`);
    }
  }
  // Ids from an earlier run against the same allot would answer 200 (known id).
  return { run: `k6${Date.now().toString(36)}` };
}

export default function (data) {
  const { warehouse, sku } = PARTITIONS[(__VU * 7919 + __ITER) % PARTITIONS.length];
  const order = { v: 1, id: `${data.run}-${__VU}-${__ITER}`, sku, quantity: 1, warehouse };
  const res = http.post(`${BASE_URL}/v1/orders`, JSON.stringify(order), JSON_HEADERS);
  check(res, { 'order filed (202)': (r) => r.status === 202 });
}
