#!/bin/sh
# rootfs.sh BIN DIR fills DIR with the runtime image's files: BIN as /echo,
# every shared library BIN links as ldd resolves it here (the dynamic loader
# included), each at the path the loader searches, and /etc/passwd and
# /etc/group naming root and the unprivileged user 65532 (nonroot). Nothing
# else: no shell, no package manager, no certificates (echo makes no
# outgoing TLS connection).
set -eu
bin=$1
dir=$2
mkdir -p "$dir/etc"
cp "$bin" "$dir/echo"
# ldd lines: "libnuma.so.1 => /lib/x86_64-linux-gnu/libnuma.so.1 (0x...)"
# and the loader, "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no
# file. cp -L copies the file a soname link points to, under the soname.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
	while read -r lib; do
		cp -L --parents "$lib" "$dir"
	done
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$dir/etc/group"
