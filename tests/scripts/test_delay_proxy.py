"""Self-test of scripts/delay-proxy: an echo server on 127.0.0.2 behind the
proxy on 127.0.0.3 (both on free ports the test binds itself), at delays 0
and 25 ms.

    python3 -m unittest -v tests/scripts/test_delay_proxy.py

Takes about two seconds; no root, no network beyond those two addresses.
Timing bounds are one-sided tight (a delayed exchange may never be faster
than the delay) and loose above (this may run on a loaded machine).
"""

import asyncio
import os
import signal
import statistics
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROXY = os.path.join(ROOT, "scripts", "delay-proxy")
ECHO_ADDR = "127.0.0.2"
PROXY_ADDR = "127.0.0.3"
D = 0.025  # the delayed tests' one-way delay, seconds
EARLY = 0.002  # how much earlier than modelled an exchange may be (timer granularity)
SLACK = 0.030  # how much later: scheduling on a busy machine


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()  # the client's EOF, passed back
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class DelayProxyTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        # IsolatedAsyncioTestCase runs the loop in debug mode, which slows
        # every callback: time the proxy, not asyncio's checks.
        asyncio.get_running_loop().set_debug(False)
        self.echo = await asyncio.start_server(echo, ECHO_ADDR, 0, backlog=1024)
        self.echo_port = self.echo.sockets[0].getsockname()[1]

    async def asyncTearDown(self):
        self.echo.close()

    async def start_proxy(self, delay_s):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, PROXY, str(delay_s * 1000), f"{PROXY_ADDR}:0={ECHO_ADDR}:{self.echo_port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        self.addAsyncCleanup(self.stop_proxy, proc)
        self.proc = proc
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        self.assertTrue(line.startswith("delay-proxy: ready pid="), line)
        self.assertIn(f"pid={proc.pid} ", line)
        listen = line.split()[-1].split("=")[0]
        host, port = listen.rsplit(":", 1)
        self.assertEqual(host, PROXY_ADDR)
        return host, int(port)

    async def stop_proxy(self, proc):
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 10)
        err = (await proc.stderr.read()).decode()
        if "stopped" in err:
            self.assertRegex(err, r"stopped: \d+ connections")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("Task was destroyed", err)

    async def exchange(self, reader, writer, payload):
        t0 = time.monotonic()
        writer.write(payload)
        got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
        self.assertEqual(got, payload)
        return time.monotonic() - t0

    async def round_trips(self, delay_s):
        """First exchange (with the handshake) and the median of the next five."""
        host, port = await self.start_proxy(delay_s)
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection(host, port)
        await self.exchange(reader, writer, b"hello\n")
        first = time.monotonic() - t0
        rest = [await self.exchange(reader, writer, b"ping %d\n" % i) for i in range(5)]
        writer.close()
        return first, statistics.median(rest)

    async def test_no_delay(self):
        first, rtt = await self.round_trips(0)
        print(f"\n  delay 0: first exchange {first * 1e3:.1f} ms, round trip {rtt * 1e3:.1f} ms", file=sys.stderr)
        self.assertLess(first, SLACK)
        self.assertLess(rtt, SLACK)

    async def test_delay_costs_one_round_trip_per_exchange(self):
        first, rtt = await self.round_trips(D)
        print(f"\n  delay {D * 1e3:g} ms: first exchange {first * 1e3:.1f} ms (handshake + round trip,"
              f" model {4 * D * 1e3:g}), round trip {rtt * 1e3:.1f} ms (model {2 * D * 1e3:g})", file=sys.stderr)
        self.assertGreaterEqual(first, 4 * D - EARLY)
        self.assertLess(first, 4 * D + SLACK)
        self.assertGreaterEqual(rtt, 2 * D - EARLY)
        self.assertLess(rtt, 2 * D + SLACK)

    async def test_burst_costs_one_delay(self):
        """20 chunks sent 2 ms apart: the delays overlap, so the last chunk's
        echo comes one round trip after it was sent (serialised delays would
        take 20 round trips), and the bytes keep their order."""
        host, port = await self.start_proxy(D)
        reader, writer = await asyncio.open_connection(host, port)
        await self.exchange(reader, writer, b"warm\n")  # past the handshake
        chunks = [b"chunk %02d|" % i for i in range(20)]
        total = b"".join(chunks)
        t0 = time.monotonic()
        for c in chunks:
            writer.write(c)
            await writer.drain()
            await asyncio.sleep(0.002)
        t_last = time.monotonic()
        got = await asyncio.wait_for(reader.readexactly(len(total)), 10)
        t_end = time.monotonic()
        writer.close()
        self.assertEqual(got, total)
        print(f"\n  burst of 20 chunks over {(t_last - t0) * 1e3:.1f} ms: echoed in full {(t_end - t0) * 1e3:.1f} ms"
              f" after the first, {(t_end - t_last) * 1e3:.1f} ms after the last (model {2 * D * 1e3:g})", file=sys.stderr)
        self.assertGreaterEqual(t_end - t0, 2 * D - EARLY)
        self.assertLess(t_end - t_last, 2 * D + SLACK)

    async def test_half_close_propagates(self):
        """The client's EOF reaches the server after the delay; the server's
        answer and its EOF come back; the client's read side sees EOF."""
        host, port = await self.start_proxy(D)
        reader, writer = await asyncio.open_connection(host, port)
        payload = b"x" * 200_000  # several chunks
        t0 = time.monotonic()
        writer.write(payload)
        writer.write_eof()
        got = await asyncio.wait_for(reader.read(), 10)  # until EOF
        t1 = time.monotonic()
        writer.close()
        self.assertEqual(got, payload)
        self.assertGreaterEqual(t1 - t0, 4 * D - EARLY)  # handshake + round trip
        self.assertLess(t1 - t0, 4 * D + 2 * SLACK)

    async def test_hundreds_of_connections(self):
        """300 connections at once, each one exchange: all answered, in about
        the time of one (handshake + round trip), not 300; the proxy stops
        cleanly with connections still open."""
        host, port = await self.start_proxy(D)
        n = 300

        async def one(i):
            reader, writer = await asyncio.open_connection(host, port)
            await self.exchange(reader, writer, b"conn %d\n" % i)
            return writer

        t0 = time.monotonic()
        writers = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.monotonic() - t0
        print(f"\n  {n} concurrent connections, one exchange each: {wall * 1e3:.0f} ms"
              f" (one alone: model {4 * D * 1e3:g})", file=sys.stderr)
        self.assertLess(wall, 1.5)
        await self.stop_proxy(self.proc)  # with the connections open: exits 0
        for w in writers:
            w.close()


if __name__ == "__main__":
    unittest.main()
