#!/usr/bin/env python3
"""A worker for `allot serve --fulfiller nats` (README, "Workers").

Each released order comes as a core NATS request on
`allot.fulfil.<warehouse>`: `{v, id, warehouse, sku, quantity, attempt}`
(MessagePack). The worker enacts it and answers `{ok: true}`, or
`{ok: false, reason, retryable}`.

The order id is the idempotency key: a retry repeats it, and the same
`(id, attempt)` can come again after a shard moves to another instance. So
the worker remembers the first result of every id and answers a repeat with
it, never enacting an id twice. Here that memory is a dict; a real worker
keeps it where it records the work itself (the same database transaction),
so it survives a restart.

    worker.py --nats-url nats://127.0.0.1:4222 --warehouse ams [--refuse-prefix bad-]

prints `enacted <id> ...` once per id, `repeat <id> ...` for each repeat.
Orders whose id starts with --refuse-prefix are refused for good
(`retryable: false`), to show a failure. Stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import signal
import sys

import msgpack
import nats


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    p.add_argument("--warehouse", default="*", help="a warehouse, or * for all")
    p.add_argument("--refuse-prefix", default=None)
    args = p.parse_args()

    results = {}  # order id -> the first answer given for it

    def enact(request):
        if args.refuse_prefix and request["id"].startswith(args.refuse_prefix):
            return {"ok": False, "reason": "refused by the example worker", "retryable": False}
        # Pick, pack and ship request["quantity"] of request["sku"] here.
        return {"ok": True}

    async def on_request(msg):
        try:
            request = msgpack.unpackb(msg.data)
        except Exception as e:  # an unreadable request: say so, enact nothing
            print(f"unreadable request on {msg.subject}: {e}", file=sys.stderr, flush=True)
            return
        if request.get("v") != 1:
            return  # a version this worker does not read: no answer, allot asks again
        oid = request["id"]
        if oid in results:
            print(f"repeat {oid} attempt={request['attempt']}", flush=True)
        else:
            results[oid] = enact(request)
            print(f"enacted {oid} warehouse={request['warehouse']} sku={request['sku']} "
                  f"quantity={request['quantity']} attempt={request['attempt']} "
                  f"ok={results[oid]['ok']}", flush=True)
        await msg.respond(msgpack.packb(results[oid]))

    nc = await nats.connect(args.nats_url)
    # A queue group, so several copies of this worker share the work.
    await nc.subscribe(f"allot.fulfil.{args.warehouse}", queue="allot-workers", cb=on_request)
    await nc.flush()
    print(f"ready: allot.fulfil.{args.warehouse}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
