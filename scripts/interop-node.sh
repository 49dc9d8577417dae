#!/usr/bin/env bash
# Interop with Node.js clients: the `ws` npm package (text, binary, empty,
# large, fragmented, ping/pong, close), once with permessage-deflate
# (perMessageDeflate: true) and once without, and `wscat` in non-interactive
# mode, against a freshly built echo binary (with -compression) on a free
# loopback port. Node, ws and
# wscat are what scripts/setup.sh installs (Node and npm from Debian, ws and
# wscat globally with npm). Without them it prints SKIP and exits 0, except
# under CI=true, where a missing client is a failure; non-zero on any
# mismatch.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/lib/missing.sh
command -v node >/dev/null 2>&1 || missing interop-node "no node"
command -v wscat >/dev/null 2>&1 || missing interop-node "no wscat"
NODE_PATH=$(npm root -g 2>/dev/null) || missing interop-node "no npm"
export NODE_PATH
node -e 'require("ws")' 2>/dev/null || missing interop-node "no ws module in $NODE_PATH"

source scripts/lib/echo.sh
tmp=$(mktemp -d)
cleanup() {
	echo_kill
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "interop-node: node $(node --version), ws $(node -p 'require("ws/package.json").version'), wscat $(wscat --version)"
echo_start interop-node "$tmp" -workers 2 -log-level warn -compression
addr=$ECHO_ADDR
echo "interop-node: echo listening on $addr"

cat >"$tmp/client.js" <<'JS'
'use strict';
const WebSocket = require('ws');
const crypto = require('crypto');
const url = process.argv[2];
const deflate = process.argv[3] === 'deflate';

const timer = setTimeout(() => { console.error('FAIL: timeout'); process.exit(1); }, 30000);
function fail(msg) { console.error('FAIL: ' + msg); process.exit(1); }

// perMessageDeflate: ws offers "permessage-deflate; client_max_window_bits"
// and compresses messages of 1 KiB and more (its default threshold).
const ws = new WebSocket(url, { maxPayload: 32 << 20, perMessageDeflate: deflate });
const queue = [];
ws.on('message', (data, isBinary) => {
  const w = queue.shift();
  if (!w) return fail('unexpected message');
  w({ data, isBinary });
});
function next() { return new Promise((resolve) => queue.push(resolve)); }

async function echo(name, payload, binary, opts) {
  const p = next();
  if (opts && opts.fragments) {
    const parts = opts.fragments;
    const step = Math.ceil(payload.length / parts);
    for (let i = 0; i < parts; i++) {
      ws.send(payload.subarray(i * step, (i + 1) * step), { binary, fin: i === parts - 1 });
    }
  } else {
    ws.send(payload, { binary });
  }
  const { data, isBinary } = await p;
  if (isBinary !== binary) fail(`${name}: got binary=${isBinary}`);
  if (!Buffer.from(data).equals(payload)) fail(`${name}: payload differs (${data.length} vs ${payload.length} bytes)`);
  console.log(`ok   ${name}`);
}

ws.on('error', (e) => fail('error: ' + e.message));
ws.on('open', async () => {
  const ext = ws.extensions;
  console.log(`     negotiated extension: ${ext || '(none)'}`);
  if (deflate !== ext.startsWith('permessage-deflate')) fail(`extensions ${JSON.stringify(ext)} with perMessageDeflate ${deflate}`);
  await echo('text hello', Buffer.from('hello'), false);
  await echo('text UTF-8', Buffer.from('κόσμε 𝄞 Hello-µ@ßöäüàá-UTF-8!!'), false);
  await echo('text empty', Buffer.alloc(0), false);
  await echo('binary 0..255', Buffer.from([...Array(256).keys()]), true);
  await echo('binary 125', crypto.randomBytes(125), true);
  await echo('binary 126', crypto.randomBytes(126), true);
  await echo('binary 65535', crypto.randomBytes(65535), true);
  await echo('binary 65536', crypto.randomBytes(65536), true);
  await echo('binary 1 MiB', crypto.randomBytes(1 << 20), true);
  await echo('binary 16 MiB', crypto.randomBytes(16 << 20), true);
  await echo('text 256 KiB', Buffer.from('€'.repeat(256 * 1024 / 3 | 0)), false);
  await echo('binary in 7 fragments', crypto.randomBytes(70000), true, { fragments: 7 });
  await echo('text in 3 fragments', Buffer.from('fragment1fragment2fragment3'), false, { fragments: 3 });

  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('ping payload'));
  const got = await pong;
  if (got.toString() !== 'ping payload') fail('pong payload ' + got.toString());
  console.log('ok   ping/pong');

  ws.on('close', (code, reason) => {
    if (code !== 1000) fail('close code ' + code);
    console.log('ok   close 1000');
    clearTimeout(timer);
    process.exit(0);
  });
  ws.close(1000, 'bye');
});
JS

echo "interop-node: ws client, perMessageDeflate: true"
(cd "$tmp" && node client.js "ws://$addr/" deflate)
echo "interop-node: ws client, no compression"
(cd "$tmp" && node client.js "ws://$addr/" none)

echo "interop-node: wscat"
# wscat exits when its stdin closes, so its stdin stays open (a sleep
# longer than the timeout, killed after) while -x sends and -w waits: a
# Node that takes seconds to start on a busy machine still gets its
# answers. Its output goes to a file, because Node may drop piped stdout
# on process.exit.
exec 3< <(sleep 60)
stdin_pid=$!
(cd "$tmp" && timeout 40 wscat -c "ws://$addr/" -x 'hello from wscat' -x 'κόσμε' -w 2 <&3 >"$tmp/wscat.out" 2>&1) || true
kill "$stdin_pid" 2>/dev/null || true
exec 3<&-
if [ "$(cat "$tmp/wscat.out")" != "$(printf 'hello from wscat\nκόσμε')" ]; then
	cat "$tmp/wscat.out" >&2
	echo "FAIL interop-node: wscat did not get its echoes"
	exit 1
fi
echo "ok   wscat -x echo"

echo_stop interop-node
echo "PASS interop-node"
