#!/usr/bin/env python3
"""Send orders to allot both ways a producer can (README, "Message contract").

- Through the ingress: a core NATS request on `allot.submit`; allot
  validates, routes and files the order and replies
  `{accepted, id, warehouse, sku, shard, duplicate, errors}`.
- Straight to JetStream: a publish on `orders.<warehouse>.<sku>` (stream
  ORDERS) with `Nats-Msg-Id` set to the order id, for producers that route
  themselves.

Bodies are MessagePack maps with named fields in the version 1 envelope:
`{v, id, sku, quantity, warehouse?, region?, priority?}`. The order id is the
idempotency key: sending an id again (after a timeout, say) is safe.

    producer.py --nats-url nats://127.0.0.1:4222 --warehouse ams --sku MUG \
        --count 10 --prefix o --direct 5

prints one line per order (`submitted <id> ...` or `published <id> ...`) and
exits 1 if any order was refused.
"""

import argparse
import asyncio
import sys

import msgpack
import nats
from nats.errors import NoRespondersError, TimeoutError


def order(args, i):
    """Order `i` as allot reads it: integers stay integers."""
    body = {
        "v": 1,
        "id": f"{args.prefix}-{i}",
        "sku": args.sku,
        "quantity": args.quantity,
        "warehouse": args.warehouse,
    }
    if args.region:
        body["region"] = args.region
    return body


async def submit(nc, body, timeout):
    """The ingress path: retried with the same id while allot is not there
    yet (no responders) or the broker did not take it."""
    for _ in range(50):
        try:
            msg = await nc.request("allot.submit", msgpack.packb(body), timeout=timeout)
        except (NoRespondersError, TimeoutError):
            await asyncio.sleep(0.2)
            continue
        reply = msgpack.unpackb(msg.data)
        if reply["accepted"] or not any(e["field"] == "broker" for e in reply["errors"]):
            return reply
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{body['id']}: allot.submit did not answer")


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    p.add_argument("--warehouse", required=True)
    p.add_argument("--sku", required=True)
    p.add_argument("--region")
    p.add_argument("--quantity", type=int, default=1)
    p.add_argument("--prefix", default="order")
    p.add_argument("--start", type=int, default=0, help="first order number")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--direct", type=int, default=None,
                   help="how many of them to publish straight to JetStream (default: half)")
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    direct = args.count // 2 if args.direct is None else args.direct

    nc = await nats.connect(args.nats_url)
    js = nc.jetstream()
    refused = 0
    for n in range(args.count):
        body = order(args, args.start + n)
        if n < args.count - direct:
            reply = await submit(nc, body, args.timeout)
            if reply["accepted"]:
                print(f"submitted {body['id']} warehouse={reply['warehouse']} sku={reply['sku']} "
                      f"shard={reply['shard']} duplicate={reply['duplicate']}", flush=True)
            else:
                refused += 1
                errors = "; ".join(f"{e['field']}: {e['why']}" for e in reply["errors"])
                print(f"refused {body['id']}: {errors}", flush=True)
        else:
            subject = f"orders.{args.warehouse}.{args.sku}"
            ack = await js.publish(subject, msgpack.packb(body),
                                   headers={"Nats-Msg-Id": body["id"]}, timeout=args.timeout)
            print(f"published {body['id']} subject={subject} seq={ack.seq} "
                  f"duplicate={bool(ack.duplicate)}", flush=True)
    await nc.drain()
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
