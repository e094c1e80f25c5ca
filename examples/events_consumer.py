#!/usr/bin/env python3
"""Read allot's decision feed, EVENTS, once per batch (README, "The decision feed").

A durable pull consumer on stream EVENTS (filter `events.*`), explicit acks:
apply a batch, record it, then ack it. Delivery is at least once, so the
reader keeps, per shard, the stream sequence of the last batch it applied
(in --state, a JSON file written before each ack) and applies each batch by
the chain rule:

- its sequence is not past the shard's last applied: applied already, skip;
- its `prev` equals the last applied (or the shard is new to this reader):
  it follows, apply it;
- any other `prev` is a gap: read the shard again from last applied + 1.

Applying a batch here means printing its order decisions, one line each:
`<stream seq> <shard> <type> <order id> [<reason kind> | <to>]`. After a
restart the durable consumer resumes after the last ack, and the state file
skips whatever is delivered again.

    events_consumer.py --nats-url nats://127.0.0.1:4222 --state events.json

Runs until SIGTERM or SIGINT, or --idle seconds without a batch.
--crash-after N stops after applying N batches without acking the last (a
crash between apply and ack), to show the skip on the next run.
"""

import argparse
import asyncio
import json
import os
import signal
import sys

import msgpack
import nats
from nats.errors import TimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

DECISIONS = {"order_confirmed", "order_rejected", "order_rerouted",
             "order_backordered", "order_cancelled"}


class Gap(Exception):
    pass


class Reader:
    def __init__(self, state_path):
        self.state_path = state_path
        self.last = {}  # shard -> stream sequence of the last batch applied
        if os.path.exists(state_path):
            with open(state_path) as f:
                self.last = {int(k): v for k, v in json.load(f).items()}

    def save(self):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.last, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    def offer(self, seq, data):
        """Applies the batch stored at `seq` by the chain rule; returns
        "applied", "skipped" or "ignored"; raises Gap."""
        try:
            batch = msgpack.unpackb(data)
        except Exception as e:
            print(f"unreadable batch {seq}: {e}", file=sys.stderr, flush=True)
            return "ignored"
        if not isinstance(batch, dict) or batch.get("v") != 1:
            return "ignored"  # a version this reader does not read
        shard, prev = batch["shard"], batch["prev"]
        last = self.last.get(shard)
        if last is not None and seq <= last:
            print(f"skip {seq}: shard {shard} applied up to {last}", file=sys.stderr, flush=True)
            return "skipped"
        if last is not None and prev != last:
            raise Gap(shard, last, seq, prev)
        # New to this reader (last is None): the first batch seen is the start.
        for event in batch["events"]:
            self.apply(seq, shard, event)
        self.last[shard] = seq
        self.save()
        return "applied"

    @staticmethod
    def apply(seq, shard, event):
        kind = event.get("type")
        if kind not in DECISIONS:
            return
        extra = ""
        if kind == "order_rejected":
            extra = " " + event["reason"]["kind"]
        elif kind == "order_rerouted":
            extra = " " + event["to"]
        print(f"{seq} {shard} {kind} {event['id']}{extra}", flush=True)


async def refill(js, reader, shard, upto):
    """A gap on `shard` before batch `upto`: reads the shard again from its
    last applied + 1 with a throwaway consumer, applying what follows."""
    sub = await js.pull_subscribe(
        f"events.{shard}", stream="EVENTS",
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                              opt_start_seq=reader.last[shard] + 1,
                              ack_policy=AckPolicy.NONE))
    try:
        while True:
            for msg in await sub.fetch(100, timeout=2):
                seq = msg.metadata.sequence.stream
                if seq >= upto:
                    return
                reader.offer(seq, msg.data)
    except TimeoutError:
        raise Gap(shard, reader.last[shard], upto, None)
    finally:
        await sub.unsubscribe()


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    p.add_argument("--durable", default="events-consumer-py")
    p.add_argument("--state", default="events-consumer-py.json")
    p.add_argument("--ack-wait", type=float, default=30.0,
                   help="seconds before an unacked batch is delivered again")
    p.add_argument("--idle", type=float, default=None)
    p.add_argument("--crash-after", type=int, default=None)
    args = p.parse_args()

    reader = Reader(args.state)
    nc = await nats.connect(args.nats_url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        "events.*", durable=args.durable, stream="EVENTS",
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=args.ack_wait))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    applied, idle = 0, 0.0
    while not stop.is_set():
        try:
            msgs = await sub.fetch(100, timeout=1)
        except TimeoutError:
            idle += 1
            if args.idle is not None and idle >= args.idle:
                break
            continue
        idle = 0.0
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            try:
                outcome = reader.offer(seq, msg.data)
            except Gap as gap:
                shard, _, upto, _ = gap.args
                await refill(js, reader, shard, upto)
                outcome = reader.offer(seq, msg.data)
            if outcome == "applied":
                applied += 1
                if args.crash_after is not None and applied >= args.crash_after:
                    print(f"crash after {applied} batches, {seq} not acked",
                          file=sys.stderr, flush=True)
                    os._exit(3)
            await msg.ack_sync()
    # Every ack was confirmed (ack_sync): nothing left to flush. (drain
    # would wait for the pull subscription's pending fetch to expire.)
    await sub.unsubscribe()
    await nc.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Gap as gap:
        shard, last, seq, _ = gap.args
        print(f"gap on shard {shard}: batches after {last} before {seq} are missing",
              file=sys.stderr)
        sys.exit(2)
