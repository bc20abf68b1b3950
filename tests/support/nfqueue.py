"""Delay packets with netfilter's queue: an NFQUEUE rule hands each packet to this process,
which lets it go on (NF_ACCEPT) a fixed time after it arrived, in arrival order.

Why: this kernel has no sch_netem (nor sch_fq or act_bpf), so tc cannot hold a packet back;
nfnetlink_queue and the xt NFQUEUE target are built in. The handler speaks nfnetlink over a
plain AF_NETLINK socket (stdlib only): it binds a queue, asks for metadata only (never the
payload), reads each packet's id and, once its time has come, sends one batch verdict that
accepts every queued packet up to that id. A constant delay keeps the queue in order, so a
batch never lets a packet out early, and a notification lost to a full socket buffer is
released by the next batch.

Run as a child process inside the namespace whose packets it delays (`Delayer` starts it):
it prints "ready" once bound, and on end of input (its parent closed the pipe or died) it
releases everything it holds and exits. Rules should use `--queue-bypass`, so packets pass
undelayed while no handler is bound.
"""

from __future__ import annotations

import argparse
import collections
import errno
import os
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Delayer", "NfQueue"]

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND, NFQNL_COPY_META = 1, 1
NF_ACCEPT = 1
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
SO_RCVBUFFORCE = 33
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host order)
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (the queue number)
_NLATTR = struct.Struct("=HH")  # len, type


def _attr(kind: int, payload: bytes) -> bytes:
    size = _NLATTR.size + len(payload)
    return _NLATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


class NfQueue:
    """One bound nfnetlink queue: packet ids in, batch verdicts out."""

    def __init__(self, number: int = 0, maxlen: int = 20000) -> None:
        self.number = number
        self._seq = 0
        self.refused = 0  # verdicts the kernel refused (their packets were gone)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            self.sock.bind((0, 0))
            self._request(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
            self._request(
                _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
                + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
            )
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def _send(self, kind: int, attrs: bytes, flags: int = 0) -> int:
        self._seq += 1
        body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, self.number) + attrs
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(body), NFNL_SUBSYS_QUEUE << 8 | kind,
            NLM_F_REQUEST | flags, self._seq, 0,
        )  # fmt: skip
        self.sock.send(header + body)
        return self._seq

    def _request(self, attrs: bytes) -> None:
        """A config message, waiting for the kernel's acknowledgement (OSError if refused)."""
        seq = self._send(NFQNL_MSG_CONFIG, attrs, NLM_F_ACK)
        while True:
            data = self.sock.recv(65536)
            for kind, msg_seq, payload in self._messages(data):
                if kind == NLMSG_ERROR and msg_seq == seq:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, f"nfqueue config: {os.strerror(code)}")
                    return

    @staticmethod
    def _messages(data: bytes) -> Iterator[tuple[int, int, memoryview]]:
        view, offset = memoryview(data), 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _, seq, _ = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                return
            yield kind, seq, view[offset + _NLMSGHDR.size : offset + length]
            offset += (length + 3) & ~3

    def receive(self) -> list[int]:
        """Ids of the packets queued since the last call (empty when none are waiting)."""
        ids: list[int] = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return ids
            except OSError as exc:  # a full buffer lost notifications: the next batch
                if exc.errno == errno.ENOBUFS:  # verdict releases those packets too
                    continue
                raise
            for kind, _, payload in self._messages(data):
                if kind == NLMSG_ERROR:
                    self.refused += struct.unpack_from("=i", payload)[0] != 0
                    continue
                if kind != NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET:
                    continue
                offset = _NFGENMSG.size
                while offset + _NLATTR.size <= len(payload):
                    size, attr = _NLATTR.unpack_from(payload, offset)
                    if size < _NLATTR.size:
                        break
                    if attr & 0x3FFF == NFQA_PACKET_HDR:
                        ids.append(struct.unpack_from("!I", payload, offset + _NLATTR.size)[0])
                        break
                    offset += (size + 3) & ~3

    def accept_through(self, packet_id: int) -> None:
        """Let every queued packet with an id up to `packet_id` go on."""
        self._send(
            NFQNL_MSG_VERDICT_BATCH,
            _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id)),
        )

    def close(self) -> None:
        self.sock.close()


def hold(queue: NfQueue, delay: float, stop: int) -> int:
    """Release each packet `delay` seconds after it was queued, until `stop` (a file
    descriptor) reaches end of input; then release the rest at once. Returns how many
    packets were delayed."""
    pending: collections.deque[tuple[float, int]] = collections.deque()
    count = 0
    while True:
        now = time.monotonic()
        last = None
        while pending and pending[0][0] <= now:
            last = pending.popleft()[1]
        if last is not None:
            queue.accept_through(last)
        timeout = pending[0][0] - now if pending else None
        ready, _, _ = select.select([queue.sock, stop], [], [], timeout)
        if queue.sock in ready:
            arrived = time.monotonic()
            ids = queue.receive()
            count += len(ids)
            pending.extend((arrived + delay, packet_id) for packet_id in ids)
        if stop in ready and not os.read(stop, 4096):
            ids = queue.receive()
            count += len(ids)
            last = ids[-1] if ids else pending[-1][1] if pending else None
            if last is not None:
                queue.accept_through(last)
            return count


class Delayer:
    """A handler child process delaying queue `number` of the calling thread's network
    namespace by `ms`; `stop()` (after the rules feeding it are gone) releases it all."""

    def __init__(self, ms: float, number: int = 0, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--queue", str(number), "--ms", str(ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready or self.process.stdout.readline().strip() != "ready":
            self.process.kill()
            _, err = self.process.communicate()
            raise RuntimeError(f"the nfqueue handler did not start: {err.strip()}")

    def stop(self, timeout: float = 10.0) -> tuple[int, int]:
        """End the handler (it releases what it holds): (packets delayed, verdicts the
        kernel refused because their packets were gone, e.g. their device went down)."""
        try:
            out, err = self.process.communicate(timeout=timeout)  # closes its input first
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        if self.process.returncode != 0:
            raise RuntimeError(f"the nfqueue handler failed: {err.strip()}")
        delayed, refused = out.split()
        return int(delayed), int(refused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--ms", type=float, required=True)
    args = parser.parse_args()
    queue = NfQueue(args.queue)
    try:
        print("ready", flush=True)
        delayed = hold(queue, args.ms / 1000, sys.stdin.fileno())
        print(delayed, queue.refused, flush=True)
    finally:
        queue.close()


if __name__ == "__main__":
    main()
