#!/usr/bin/env python3
"""Phase-1 link check: sends demo frames to a node's UART1 TCP port and
checks the echoes. Usage: echo_test.py PORT [COUNT]"""
import socket
import sys
import time


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out) + b"\x00"


def cobs_decode(frame: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(frame):
        code = frame[i]
        out += frame[i + 1:i + code]
        i += code
        if code < 255 and i < len(frame):
            out.append(0)
    return bytes(out)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes, i: int):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def demo(frm: int, seq: int, text: str) -> bytes:
    t = text.encode()
    return varint(frm) + varint(seq) + varint(len(t)) + t


def main():
    port = int(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    t0 = time.monotonic()
    for seq in range(1, count + 1):
        s.sendall(cobs_encode(demo(99, seq, f"hello {seq}")))
        while b"\x00" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
        frame, buf = buf.split(b"\x00", 1)
        data = cobs_decode(frame)
        frm, i = read_varint(data, 0)
        got_seq, i = read_varint(data, i)
        n, i = read_varint(data, i)
        text = data[i:i + n].decode()
        assert text == f"hello {seq}", text
        assert got_seq == seq, (got_seq, seq)
    dt = time.monotonic() - t0
    print(f"{count} passed, 0 failed: echoes from node {frm}, {dt / count * 1000:.2f} ms per round trip")


main()
