#!/usr/bin/env python3
"""Carts from a client's side, as the README's "Carts" section shows them.

1. A held all-or-nothing cart through the ingress: a MessagePack version-2
   envelope as a core NATS request on `allot.submit`; the reply says
   `kind: "cart"`.
2. Once every line is reserved the cart is `held`; payment captured:
   `POST /v1/orders/{id}/confirm`, and it goes to the workers.
3. A partial cart published straight to JetStream on an order subject
   (any `orders.<warehouse>.<sku>`), `Nats-Msg-Id` set to the cart id;
   its lines are routed by the cart's region.
4. Both carts read back with `GET /v1/orders/{id}` until final.

    cart.py --nats-url nats://127.0.0.1:4222 --api http://127.0.0.1:8080

prints each cart's final view (one JSON line each) and exits 1 unless the
held cart was confirmed with every line committed and the partial cart got
a final decision.
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

import msgpack
import nats
from nats.errors import NoRespondersError, TimeoutError


def http(api, method, path):
    """`(status, body)` of one request to allot's HTTP API."""
    request = urllib.request.Request(api + path, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def until(api, cart_id, done, timeout=30.0):
    """GETs the cart's view until `done(view)`."""
    deadline = time.monotonic() + timeout
    while True:
        status, view = http(api, "GET", f"/v1/orders/{cart_id}")
        if status == 200 and done(view):
            return view
        if time.monotonic() > deadline:
            raise RuntimeError(f"{cart_id}: still {view} after {timeout} s")
        time.sleep(0.05)


async def submit(nc, body):
    """`allot.submit`, retried with the same id until allot answers."""
    for _ in range(50):
        try:
            msg = await nc.request("allot.submit", msgpack.packb(body), timeout=5)
        except (NoRespondersError, TimeoutError):
            await asyncio.sleep(0.2)
            continue
        return msgpack.unpackb(msg.data)
    raise RuntimeError(f"{body['id']}: allot.submit did not answer")


async def main(args):
    nc = await nats.connect(args.nats_url)
    held = {"v": 2, "id": args.prefix + "held", "fill": "all", "hold": args.hold, "lines": [
        {"sku": "MUG", "quantity": 2, "warehouse": "ams"},
        {"sku": "TEA", "quantity": 1, "warehouse": "fra"}]}
    reply = await submit(nc, held)
    assert reply["accepted"] and reply["kind"] == "cart", reply["errors"]
    until(args.api, held["id"], lambda v: v["status"] == "held")
    status, answer = http(args.api, "POST", f"/v1/orders/{held['id']}/confirm")
    assert status == 202, (status, answer)

    partial = {"v": 2, "id": args.prefix + "partial", "fill": "partial", "region": args.region,
               "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "CUP", "quantity": 3}]}
    js = nc.jetstream()
    ack = await js.publish("orders.ams.MUG", msgpack.packb(partial),
                           headers={"Nats-Msg-Id": partial["id"]})
    assert ack.stream == "ORDERS", ack

    ok = True
    for cart in (held, partial):
        view = until(args.api, cart["id"], lambda v: v["final"])
        print(json.dumps(view, sort_keys=True), flush=True)
        if cart is held:
            lines = [line["status"] for line in view["lines"]]
            ok &= view["status"] == "confirmed" and lines == ["committed", "committed"]
    await nc.close()
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="allot's HTTP API")
    parser.add_argument("--region", default="eu", help="routes the partial cart's lines")
    parser.add_argument("--hold", default="10m", help="the held cart's hold (at most limits.max_hold)")
    parser.add_argument("--prefix", default="c-", help="cart ids are <prefix>held, <prefix>partial")
    sys.exit(asyncio.run(main(parser.parse_args())))
