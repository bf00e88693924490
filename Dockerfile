# The origin (tollgate-origin) as a container; the edge is a Cloudflare Worker (DEPLOY.md).
#
#   docker build -t tollgate-origin .        (or: podman build -t tollgate-origin .)
#   docker run -p 8080:8080 --env-file origin.env -v tollgate:/var/lib/tollgate tollgate-origin
#
# The build stage runs deploy/build-origin.sh, the same script CI runs; the runtime stage runs
# deploy/entrypoint.sh (migrate, then serve; `healthcheck` probes /ready), which CI tests against
# SQLite and PostgreSQL. CI cannot pull base images, so it lints this file (hadolint) but never
# builds it: see DEPLOY.md, "What CI verifies".

# The workspace's rust-version is 1.85; CI builds with the toolchain named here.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN deploy/build-origin.sh /out

FROM debian:bookworm-slim
# ca-certificates: the trust store the Redis client checks `rediss://` servers (Upstash)
# against. No curl: the health check is bash. A fixed, unprivileged uid/gid owns only the state
# volume. (Debian's security updates replace package versions, so they are not pinned.)
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tollgate \
 && useradd --system --uid 10001 --gid tollgate --home-dir /var/lib/tollgate --shell /usr/sbin/nologin tollgate \
 && install -d -o tollgate -g tollgate -m 0700 /var/lib/tollgate
COPY --from=build /out/tollgate-origin /out/tollgate-entrypoint /usr/local/bin/
# Defaults for a container; everything else (DATABASE_URL, REDIS_URL, EDGE_JWKS_URL, …) comes
# from the runtime environment (`--env-file`, the orchestrator's secrets). SQLite is the default
# only so the image starts; use PostgreSQL for more than one replica.
ENV BIND_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/tollgate/tollgate.db?mode=rwc \
    KEYS_FILE=/var/lib/tollgate/keys.json \
    LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/tollgate
VOLUME ["/var/lib/tollgate"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/tollgate-entrypoint", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tollgate-entrypoint"]
CMD ["serve"]
