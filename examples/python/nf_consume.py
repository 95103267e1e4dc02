#!/usr/bin/env python3
"""nf_consume.py: a netteflow loader consumer in Python (pyzmq + protobuf + numpy).

It follows the socket + message contract of docs/loader.md and nothing else: no
netteflow code, no generated Python module. The messages come from
build/proto/gen/netteflow.desc (a FileDescriptorSet written by protoc-c at build
time), loaded at run time with google.protobuf.

    python3 examples/python/nf_consume.py --connect tcp://127.0.0.1:5555 \\
        --split valid --presize 128 [--desc build/proto/gen/netteflow.desc] [--json]

It binds a PULL sink, asks the coordinator for the dataset and one epoch,
receives RawBatch messages (envelope + uint8 NHWC payload, as numpy arrays),
acks each, drops duplicates by (stream, epoch, seq), grants a credit per batch
used, and ends on EpochDone. It prints one JSON line: batches, images, distinct
sample indices, duplicates, bad files, img/s.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import zmq
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))


def load_messages(desc_path):
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(desc_path, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nf.Envelope")), pool


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connect", required=True, help="coordinator endpoint")
    ap.add_argument("--desc", default=os.path.join(HERE, "..", "..", "build", "proto", "gen", "netteflow.desc"))
    ap.add_argument("--split", choices=["train", "valid"], default="valid")
    ap.add_argument("--epoch", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--presize", type=int, default=128)
    ap.add_argument("--credits", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    Envelope, pool = load_messages(a.desc)
    split = pool.FindEnumTypeByName("nf.Split").values_by_name
    crop = pool.FindEnumTypeByName("nf.CropMode").values_by_name
    ctx = zmq.Context()
    sink = ctx.socket(zmq.PULL)
    sink.setsockopt(zmq.RCVHWM, 16)
    sink.setsockopt(zmq.LINGER, 0)
    sink.bind("tcp://127.0.0.1:*")
    sink_ep = sink.getsockopt_string(zmq.LAST_ENDPOINT)
    ctl = ctx.socket(zmq.DEALER)
    ctl.setsockopt(zmq.LINGER, 200)
    ctl.connect(a.connect)
    job = ""

    def send(**body):
        env = Envelope(version=VERSION, job=job)
        for name, fields in body.items():
            getattr(env, name).SetInParent()
            for k, v in fields.items():
                setattr(getattr(env, name), k, v)
        ctl.send(env.SerializeToString())

    def recv_ctl(timeout):
        if not ctl.poll(int(timeout * 1000)):
            return None
        frames = ctl.recv_multipart()
        try:
            env = Envelope.FromString(frames[0])
        except Exception:
            return None  # malformed: dropped
        return env if env.version == VERSION and len(frames) == 1 else None

    # 1. dataset and job id
    send(dataset_info_request={})
    info = None
    end = time.time() + a.timeout
    while info is None and time.time() < end:
        env = recv_ctl(1.0)
        if env is not None and env.WhichOneof("body") == "dataset_info":
            info, job = env.dataset_info, env.job
    if info is None:
        sys.exit("nf_consume: no answer from the coordinator")
    n_classes, n_items = len(info.classes), info.n_train + info.n_valid

    # 2. one epoch of one stream
    train = a.split == "train"
    stream = 1
    send(stream_request=dict(stream=stream, split=split["SPLIT_TRAIN" if train else "SPLIT_VALID"].number,
                             epoch=a.epoch, batch_size=a.batch_size, shuffle=train, drop_last=train,
                             presize=a.presize, crop=crop["CROP_RANDOM" if train else "CROP_CENTER"].number,
                             sink=sink_ep, credits=a.credits))
    plan = None
    while plan is None and time.time() < end:
        env = recv_ctl(1.0)
        if env is not None and env.WhichOneof("body") == "epoch_plan" and env.epoch_plan.stream == stream:
            plan = env.epoch_plan
    if plan is None:
        sys.exit("nf_consume: no epoch plan")

    # 3. batches: validate, ack, dedup, use, credit; until every seq and EpochDone
    seen, indices, dups, images, bad, done = set(), set(), 0, 0, 0, None
    poller = zmq.Poller()
    poller.register(sink, zmq.POLLIN)
    poller.register(ctl, zmq.POLLIN)
    t0 = time.time()
    last_tx = time.time()
    while (len(seen) < plan.n_batches or done is None) and time.time() - t0 < a.timeout:
        events = dict(poller.poll(200))
        if ctl in events:
            env = recv_ctl(0)
            if env is not None and env.WhichOneof("body") == "epoch_done" and env.epoch_done.stream == stream:
                done = env.epoch_done
        if sink in events:
            frames = sink.recv_multipart(copy=False)
            try:
                env = Envelope.FromString(frames[0].bytes)
            except Exception:
                continue
            if env.version != VERSION or env.WhichOneof("body") != "raw_batch" or len(frames) != 2:
                continue
            b = env.raw_batch
            payload = frames[1].buffer
            ok = (b.stream == stream and b.epoch == a.epoch and b.seq < plan.n_batches
                  and b.h == a.presize and b.w == a.presize and b.c == 3 and b.n <= a.batch_size
                  and len(payload) == b.n * b.h * b.w * b.c == b.payload_bytes
                  and len(b.labels) == b.n and len(b.indices) == b.n
                  and all(0 <= l < n_classes for l in b.labels) and all(i < n_items for i in b.indices))
            if not ok:
                continue
            send(ack=dict(stream=stream, epoch=a.epoch, seq=b.seq))
            last_tx = time.time()
            if b.seq in seen:
                dups += 1
                continue
            seen.add(b.seq)
            pixels = np.frombuffer(payload, dtype=np.uint8).reshape(b.n, b.h, b.w, b.c)
            assert pixels.shape[0] == b.n
            indices.update(b.indices)
            images += b.n
            bad += len(b.bad)
            send(credit=dict(stream=stream, n=1))
        if time.time() - last_tx > 1.0:
            send(heartbeat=dict(wall_ms=int(time.time() * 1000), sender="nf_consume.py"))
            last_tx = time.time()
    secs = time.time() - t0
    send(control=dict(cmd=pool.FindEnumTypeByName("nf.Command").values_by_name["CMD_STOP"].number,
                      reason="python consumer leaving"))
    out = {"batches": len(seen), "n_batches": plan.n_batches, "images": images,
           "distinct_indices": len(indices), "duplicates": dups, "bad_files": bad,
           "epoch_done": done is not None, "img_per_s": round(images / secs, 1) if secs > 0 else 0}
    print(json.dumps(out) if a.json else out)
    ctx.destroy(linger=200)
    return 0 if done is not None and len(seen) == plan.n_batches else 1


if __name__ == "__main__":
    sys.exit(main())
