#!/usr/bin/env bash
# base.sh TAG makes the local base image TAG, unless buildah has it already:
# Debian 12 (bookworm) bootstrapped with debootstrap, with what the public
# golang:1.26-bookworm image gives a cgo build (gcc, libc6-dev, make,
# pkg-config, ca-certificates) and this machine's Go toolchain at
# /usr/local/go, with the golang image's environment (PATH, GOPATH=/go).
# Dockerfile.build takes it as BASE where registry images cannot be pulled.
#
# debootstrap writes straight into the working container's mount, so the
# root is written once; --variant=minbase and the packages in the one
# debootstrap run keep it to a few hundred packages fetched once. Needs
# root, buildah and debootstrap (scripts/image-test.sh installs them).
set -euo pipefail
tag=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
goroot=$(go env GOROOT)

if buildah inspect --type image "$tag" >/dev/null 2>&1; then
	echo "image-base: $tag is there"
	exit 0
fi
echo "image-base: making $tag (debootstrap bookworm from $mirror, Go from $goroot)"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
root=$(buildah mount "$ctr")
# dpkg need not sync every file of a root that is thrown away on failure.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/unsafe-io"
debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev,make,pkg-config \
	bookworm "$root" "$mirror" >/tmp/image-base.$$.log 2>&1 || {
	tail -20 /tmp/image-base.$$.log
	rm -f /tmp/image-base.$$.log
	exit 1
}
rm -f /tmp/image-base.$$.log
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# Trust what this machine trusts: CA certificates added here (a TLS
# inspecting proxy's, say) let the build reach the Go module proxy as the
# host does.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
mkdir -p "$root/usr/local" "$root/go"
cp -a "$goroot" "$root/usr/local/go"
buildah config \
	--env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--env GOPATH=/go --env GOTOOLCHAIN=local --workingdir /go \
	--label org.opencontainers.image.description="Debian 12 with Go $(go env GOVERSION) for hioload-ws builds" \
	"$ctr"
buildah umount "$ctr" >/dev/null
buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
trap - EXIT
echo "image-base: $tag made"
