#!/usr/bin/env bash
# Interop with Python's `websockets` client (text, binary, empty, large,
# fragmented, ping/pong, close) against a freshly built echo binary (with
# -compression) on a free loopback port: once with permessage-deflate,
# which websockets offers by default, and once without. Uses whichever python3 on PATH (or /usr/bin/python3,
# where Debian's python3-websockets lives) can import websockets; exits 0
# with a SKIP line when none can, except under CI=true, where that is a
# failure. It installs nothing (scripts/setup.sh does).
set -euo pipefail

cd "$(dirname "$0")/.."
py=""
for cand in python3 /usr/bin/python3; do
	if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import websockets' >/dev/null 2>&1; then
		py=$cand
		break
	fi
done
source scripts/lib/missing.sh
[ -n "$py" ] || missing interop-python "no python3 with the websockets package (Debian: python3-websockets)"

source scripts/lib/echo.sh
tmp=$(mktemp -d)
cleanup() {
	echo_kill
	rm -rf "$tmp"
}
trap cleanup EXIT

echo_start interop-python "$tmp" -workers 2 -log-level warn -compression
addr=$ECHO_ADDR
echo "interop-python: echo listening on $addr (websockets $("$py" -c 'import websockets; print(websockets.__version__)'))"

cat >"$tmp/client.py" <<'PY'
import asyncio, os, sys
import websockets

URL = sys.argv[1]
COMPRESSION = None if sys.argv[2] == "none" else sys.argv[2]

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

async def main():
    async with websockets.connect(URL, max_size=32 << 20, compression=COMPRESSION) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions")
        print(f"     negotiated extension: {ext}")
        if (ext is not None) != (COMPRESSION is not None) or (ext and not ext.startswith("permessage-deflate")):
            fail(f"extension {ext!r} for compression={COMPRESSION!r}")
        async def echo(name, msg):
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 20)
            if type(got) is not type(msg) or got != msg:
                fail(f"{name}: echo differs ({len(got)} vs {len(msg)})")
            print("ok   " + name)

        await echo("text hello", "hello")
        await echo("text UTF-8", "κόσμε 𝄞 Hello-µ@ßöäüàá-UTF-8!!")
        await echo("text empty", "")
        await echo("binary 0..255", bytes(range(256)))
        for n in (125, 126, 65535, 65536, 1 << 20, 16 << 20):
            await echo(f"binary {n}", os.urandom(n))
        await echo("text 256 KiB", "€" * (256 * 1024 // 3))

        # A fragmented message: send() with an iterable sends one fragment
        # per item.
        parts = [os.urandom(10000) for _ in range(7)]
        await ws.send(parts)
        got = await asyncio.wait_for(ws.recv(), 20)
        if got != b"".join(parts):
            fail("fragmented binary: echo differs")
        print("ok   binary in 7 fragments")

        waiter = await ws.ping(b"ping payload")
        await asyncio.wait_for(waiter, 10)
        print("ok   ping/pong")

        await ws.close(code=1000, reason="bye")
        code = getattr(ws, "close_code", None)
        if code is None and getattr(ws, "close_rcvd", None) is not None:
            code = ws.close_rcvd.code
        if code != 1000:
            fail(f"close code {code}")
        print("ok   close 1000")

asyncio.run(asyncio.wait_for(main(), 60))
PY

echo "interop-python: websockets client, permessage-deflate (its default)"
"$py" "$tmp/client.py" "ws://$addr/" deflate
echo "interop-python: websockets client, no compression"
"$py" "$tmp/client.py" "ws://$addr/" none

echo_stop interop-python
echo "PASS interop-python"
