"""A short tour of allot's HTTP API, run by scripts/run.sh after the demo
sale: stock a partition, place orders (one invalid, one repeated), follow an
order to its decision, cancel one, and read partitions, readiness and
metrics. Standard library only. Usage: http_demo.py API_URL OPS_URL"""
import json
import sys
import time
import urllib.error
import urllib.request

api, ops = sys.argv[1], sys.argv[2]


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def show(method, path, body=None, base=None):
    status, text = call(method, (base or api) + path, body)
    shown = text if len(text) < 300 else text[:300] + "..."
    print(f"  {method} {path} -> {status} {shown.strip()}")
    return status, text


run = str(int(time.time()))
show("PUT", "/v1/stock/ams/HTTP-DEMO", {"on_hand": 2})
for i in range(3):
    show("POST", "/v1/orders", {"v": 1, "id": f"http-{run}-{i}", "sku": "HTTP-DEMO", "quantity": 1, "warehouse": "ams"})
show("POST", "/v1/orders", {"v": 1, "id": f"http-{run}-0", "sku": "HTTP-DEMO", "quantity": 1, "warehouse": "ams"})
show("POST", "/v1/orders", {"v": 1, "id": f"http-{run}-x", "sku": "HTTP DEMO", "quantity": 0})
deadline = time.time() + 20
while time.time() < deadline:
    status, text = call("GET", f"{api}/v1/orders/http-{run}-2")
    if status == 200 and json.loads(text).get("final"):
        break
    time.sleep(0.1)
show("GET", f"/v1/orders/http-{run}-2")
show("DELETE", f"/v1/orders/http-{run}-0")
time.sleep(0.5)
show("GET", "/v1/stock/ams/HTTP-DEMO")
show("GET", "/v1/partitions?warehouse=ams&top=3&limit=0")
show("GET", "/readyz", base=ops)
status, text = call("GET", ops + "/metrics")
names = sorted({line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("allot_")})
print(f"  GET /metrics -> {status}, {len(names)} allot_ series: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}")
