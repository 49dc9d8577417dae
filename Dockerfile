# Runtime image: bin/echo and the shared libraries it links (ldd: libnuma,
# hwloc and what they need, libc and the loader), as the unprivileged user
# 65532; no shell, no package manager. Build the build image first:
#
#   docker build -f Dockerfile.build -t hioload-ws-build .
#   docker build -t hioload-ws .
#   docker run --rm -p 9001:9001 -p 9090:9090 hioload-ws -metrics :9090
#
# deploy/kubernetes runs it; docs/KUBERNETES.md says how.
ARG BUILD_IMAGE=hioload-ws-build
FROM ${BUILD_IMAGE} AS build
RUN scripts/image/rootfs.sh bin/echo /rootfs

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 9001 9090
ENTRYPOINT ["/echo"]
