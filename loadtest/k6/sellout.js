// k6 sell-out test of allot's HTTP API: a hot SKU with little stock beside
// 1,000 SKUs with a few units each, orders at a constant arrival rate, half
// of them for the hot SKU, until both sell out. Checks what a flash sale
// must show: every order filed (202), and afterwards the hot SKU sold out
// exactly (sold = its stock, available 0, nothing reserved), never past it.
//
//   k6 run loadtest/k6/sellout.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e RATE=300 -e DURATION=10s loadtest/k6/sellout.js
//
// Settings (environment, `-e NAME=value`): BASE_URL, RATE (orders/s),
// DURATION, VUS, WAREHOUSE, HOT_STOCK (units of the hot SKU), SKUS (the
// other SKUs), STOCK (units of each), P95_MS, MAX_ERROR_RATE.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { env, positiveInt } from './env.js';

const BASE_URL = env('BASE_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
const RATE = positiveInt('RATE', 300);
const DURATION = env('DURATION', '10s');
const VUS = positiveInt('VUS', 100);
const WAREHOUSE = env('WAREHOUSE', 'ams');
const HOT_STOCK = positiveInt('HOT_STOCK', 100);
const SKUS = positiveInt('SKUS', 1000);
const STOCK = positiveInt('STOCK', 2);
const P95_MS = Number(env('P95_MS', 100));
const MAX_ERROR_RATE = Number(env('MAX_ERROR_RATE', 0.01));
const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' } };
const HOT = 'HOT-0';

export const options = {
  setupTimeout: '120s',
  teardownTimeout: '60s',
  scenarios: {
    sale: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 20,
      maxVUs: VUS,
    },
  },
  thresholds: {
    http_req_duration: [`p(95)<${P95_MS}`],
    http_req_failed: [`rate<${MAX_ERROR_RATE}`],
    'checks{phase:sale}': ['rate>0.99'],
    // Every check after the sale must hold: the hot SKU sold out exactly.
    'checks{phase:after}': ['rate==1'],
  },
};

const stockUrl = (sku) => `${BASE_URL}/v1/stock/${WAREHOUSE}/${sku}`;

export function setup() {
  const puts = [[HOT, HOT_STOCK]].concat(Array.from({ length: SKUS }, (_, i) => [`SO-${i}`, STOCK]));
  for (let i = 0; i < puts.length; i += 100) {
    const batch = puts.slice(i, i + 100).map(([sku, units]) => ['PUT', stockUrl(sku), JSON.stringify({ on_hand: units }), JSON_HEADERS]);
    for (const res of http.batch(batch)) {
      if (res.status < 200 || res.status >= 300) {
        throw new Error(`setting stock: ${res.request.url} answered ${res.status}: ${res.body}`);
      }
    }
  }
  // Stock commands are decided in order with the orders behind them, but
  // wait for the hot SKU's view so the check after the sale is fair.
  for (let i = 0; i < 100; i++) {
    const res = http.get(stockUrl(HOT));
    if (res.status === 200 && res.json('available') === HOT_STOCK) break;
    sleep(0.1);
  }
  return { run: `k6so${Date.now().toString(36)}` };
}

export default function (data) {
  const sku = __ITER % 2 === 0 ? HOT : `SO-${(__VU * 7919 + __ITER) % SKUS}`;
  const order = { v: 1, id: `${data.run}-${__VU}-${__ITER}`, sku, quantity: 1, warehouse: WAREHOUSE };
  const res = http.post(`${BASE_URL}/v1/orders`, JSON.stringify(order), JSON_HEADERS);
  check(res, { 'order filed (202)': (r) => r.status === 202 }, { phase: 'sale' });
}

export function teardown() {
  // The views lag the decisions by moments: wait until nothing is queued,
  // reserved or in flight on the hot SKU.
  let view = null;
  for (let i = 0; i < 200; i++) {
    const res = http.get(stockUrl(HOT));
    view = res.status === 200 ? res.json() : null;
    if (view && view.queued === 0 && view.reserved === 0 && view.in_flight === 0 && view.sold === HOT_STOCK) break;
    sleep(0.1);
  }
  check(view, {
    'hot SKU sold out exactly': (v) => v !== null && v.sold === HOT_STOCK && v.available === 0,
    'hot SKU never oversold': (v) => v !== null && v.sold <= HOT_STOCK && v.available >= 0,
    'nothing left reserved or queued': (v) => v !== null && v.reserved === 0 && v.queued === 0,
  }, { phase: 'after' });
}
