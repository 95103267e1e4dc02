#!/usr/bin/env python3
"""nf_tensor_client.py: train a PyTorch model on netteflow's tensor stream.

A client of the augment stage (`augment serve`) in Python, written from the
socket + message contract of docs/augment.md alone: pyzmq, protobuf, numpy and
torch, and nothing from netteflow but build/proto/gen/netteflow.desc (the
messages, loaded at run time; no protoc needed).

    python3 examples/python/nf_tensor_client.py --connect ipc:///tmp/run/augment.ipc \\
        --epochs 2 --size 64 --presize 80 [--mixup 0.4] [--json]

Per epoch it asks augment for the training stream (TensorStreamRequest with
credits), receives TensorBatch messages (an envelope, then the float32 NHWC
pixels as one payload frame, viewed as a numpy array without copying), acks
each batch, drops duplicates, grants one credit per batch it has used, and
ends on EpochDone. Each batch trains a small torchvision ResNet (NHWC ->
NCHW, channels_last) with AdamW and cross-entropy; with Mixup the loss is
fastai's lam * CE(y) + (1 - lam) * CE(y_partner) from the partner labels and
weights augment sends. It prints one JSON line: batches, images, distinct
sample indices per epoch, duplicates, mean loss of the first and last epoch,
img/s.

Over CURVE (an augment bound on an address other hosts reach): --curve-secret
NAME.key_secret (this client's key pair, from `loader keygen NAME`; its NAME.key
must be on augment's --curve-allow list) and --curve-server AUGMENT.key (augment's
public key). Both are loaded with zmq.auth.load_certificate: our key files are
in czmq's certificate format.
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import zmq
import zmq.auth
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
# the pixels are a read-only view of the received frame; the model never writes to them
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_messages(desc_path):
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(desc_path, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nf.Envelope")), pool


class Stream:
    """The augment contract: requests, credits, acks, heartbeats on one DEALER."""

    def __init__(self, endpoint, desc, timeout, curve_secret=None, curve_server=None):
        self.Envelope, pool = load_messages(desc)
        self.enum = lambda e, n: pool.FindEnumTypeByName(e).values_by_name[n].number
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 200)
        self.sock.setsockopt(zmq.RCVHWM, 64)
        # a DEALER send blocks while no connection exists (augment gone, or it refused
        # our handshake): wait 250 ms at most, then say so instead of hanging
        self.sock.setsockopt(zmq.SNDTIMEO, 250)
        if curve_secret:
            public, secret = zmq.auth.load_certificate(curve_secret)
            server_public, _ = zmq.auth.load_certificate(curve_server)
            if secret is None:
                sys.exit(f"nf_tensor_client: {curve_secret} holds no secret key")
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret
            self.sock.curve_serverkey = server_public
        self.sock.connect(endpoint)
        self.job = ""
        self.timeout = timeout
        self.last_tx = 0.0

    def send(self, **body):
        env = self.Envelope(version=VERSION, job=self.job)
        for name, fields in body.items():
            getattr(env, name).SetInParent()
            for k, v in fields.items():
                if isinstance(v, (list, tuple)):
                    getattr(getattr(env, name), k).extend(v)
                else:
                    setattr(getattr(env, name), k, v)
        try:
            self.sock.send(env.SerializeToString())
        except zmq.Again:
            if "heartbeat" not in body:
                sys.exit("nf_tensor_client: no connection to augment (is it running? with CURVE: "
                         "is our key on its allow-list, and --curve-server its key?)")
        self.last_tx = time.time()

    def recv(self, timeout_s):
        """One validated message: (envelope, payload frame or None), or None."""
        if time.time() - self.last_tx > 1.0:
            self.send(heartbeat=dict(wall_ms=int(time.time() * 1000), sender="nf_tensor_client.py"))
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        frames = self.sock.recv_multipart(copy=False)
        try:
            env = self.Envelope.FromString(frames[0].bytes)
        except Exception:
            return None  # malformed: dropped
        if env.version != VERSION or len(frames) > 2:
            return None
        return env, (frames[1] if len(frames) == 2 else None)

    def wait_for(self, body, stream=None):
        end = time.time() + self.timeout
        while time.time() < end:
            got = self.recv(1.0)
            if got is None:
                continue
            env, _ = got
            if env.WhichOneof("body") == body and (stream is None or getattr(env, body).stream == stream):
                return env
        sys.exit(f"nf_tensor_client: no {body} from augment within {self.timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connect", required=True, help="the augment stage's endpoint")
    ap.add_argument("--desc", default=os.path.join(HERE, "..", "..", "build", "proto", "gen", "netteflow.desc"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--presize", type=int, default=80)
    ap.add_argument("--credits", type=int, default=4)
    ap.add_argument("--mixup", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--curve-secret", help="this client's CURVE key pair (NAME.key_secret)")
    ap.add_argument("--curve-server", help="augment's public key (its NAME.key)")
    a = ap.parse_args()
    if bool(a.curve_secret) != bool(a.curve_server):
        ap.error("CURVE needs --curve-secret and --curve-server")
    torch.manual_seed(a.seed)

    s = Stream(a.connect, a.desc, a.timeout, a.curve_secret, a.curve_server)
    s.send(dataset_info_request={})
    info_env = s.wait_for("dataset_info")
    s.job = info_env.job
    info = info_env.dataset_info
    n_classes = len(info.classes)
    model = torchvision.models.resnet18(num_classes=n_classes).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)

    stream, batches, images, dups, epoch_losses, per_epoch_distinct = 1, 0, 0, 0, [], []
    t0 = time.time()
    for epoch in range(a.epochs):
        s.send(tensor_stream_request=dict(
            stream=stream, split=s.enum("nf.Split", "SPLIT_TRAIN"), mode=s.enum("nf.AugMode", "AUG_TRAIN"),
            epoch=epoch, batch_size=a.batch_size, size=a.size, presize=a.presize, credits=a.credits,
            mixup_alpha=a.mixup, dtype=s.enum("nf.DType", "DTYPE_F32"), seed=a.seed,
            norm_mean=IMAGENET_MEAN, norm_std=IMAGENET_STD))
        plan = s.wait_for("epoch_plan", stream).epoch_plan
        seen, indices, losses, done = set(), set(), [], False
        end = time.time() + a.timeout
        while (len(seen) < plan.n_batches or not done) and time.time() < end:
            got = s.recv(1.0)
            if got is None:
                continue
            env, payload = got
            kind = env.WhichOneof("body")
            if kind == "epoch_done" and env.epoch_done.stream == stream and env.epoch_done.epoch == epoch:
                done = True
                continue
            if kind != "tensor_batch" or payload is None:
                continue
            b = env.tensor_batch
            buf = payload.buffer
            ok = (b.stream == stream and b.epoch == epoch and b.seq < plan.n_batches
                  and b.h == b.w == a.size and b.c == 3 and b.n <= a.batch_size
                  and b.dtype == s.enum("nf.DType", "DTYPE_F32")
                  and b.layout == s.enum("nf.Layout", "LAYOUT_NHWC")
                  and len(buf) == b.payload_bytes == b.n * b.h * b.w * b.c * 4
                  and len(b.labels) == b.n and all(0 <= y < n_classes for y in b.labels))
            if not ok:
                continue
            s.send(ack=dict(stream=stream, epoch=epoch, seq=b.seq))
            if b.seq in seen:
                dups += 1
                continue
            seen.add(b.seq)
            indices.update(b.indices)
            x = torch.from_numpy(np.frombuffer(buf, dtype=np.float32).reshape(b.n, b.h, b.w, b.c))
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW view, channels_last in memory
            y = torch.tensor(list(b.labels), dtype=torch.long)
            model.train()
            logits = model(x)
            if len(b.partner_labels):
                lam = torch.tensor(list(b.mix_weights))
                y2 = torch.tensor(list(b.partner_labels), dtype=torch.long)
                loss = (lam * F.cross_entropy(logits, y, reduction="none")
                        + (1 - lam) * F.cross_entropy(logits, y2, reduction="none")).mean()
            else:
                loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            batches += 1
            images += b.n
            s.send(credit=dict(stream=stream, n=1))
        if len(seen) < plan.n_batches or not done:
            sys.exit(f"nf_tensor_client: epoch {epoch}: {len(seen)} of {plan.n_batches} batches")
        epoch_losses.append(float(np.mean(losses)))
        per_epoch_distinct.append(len(indices))
    secs = time.time() - t0
    s.send(control=dict(cmd=s.enum("nf.Command", "CMD_STOP"), reason="python client leaving"))
    out = {"batches": batches, "images": images, "distinct_per_epoch": per_epoch_distinct,
           "duplicates": dups, "first_epoch_loss": round(epoch_losses[0], 4),
           "last_epoch_loss": round(epoch_losses[-1], 4), "img_per_s": round(images / secs, 1)}
    print(json.dumps(out) if a.json else out)
    s.ctx.destroy(linger=200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
