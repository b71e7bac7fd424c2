# docusign-gateway container image.
#   docker build -t docusign-gateway .
# .ci/run builds the same feature set as the command below (in the debug
# profile) and checks what the binary holds. It builds
# without default features: the product binary holds no fake DocuSign (the
# workspace's crates/fake-docusign is copied only because Cargo needs every
# workspace member's manifest).
#
# The last stage (`gateway`) is the default target: the production image.
# `--target fake` builds a second image, only for demos and CI of your own
# (deploy/docker-compose.yml uses it): the binary with default features, whose
# `fake-docusign` subcommand runs the fake DocuSign. BuildKit (Docker's
# default builder) builds only the stages the requested target needs.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY benches ./benches
COPY crates ./crates
RUN cargo build --locked --release --no-default-features --bin docusign-gateway

# The fake DocuSign's image (never the production one): default features.
FROM build AS build-fake
RUN cargo build --locked --release --bin docusign-gateway

FROM debian:bookworm-slim AS fake
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dsgw
COPY --from=build-fake /src/target/release/docusign-gateway /usr/local/bin/docusign-gateway
USER dsgw
EXPOSE 9000
ENTRYPOINT ["docusign-gateway", "fake-docusign"]

# The production image: the default target, so it stays the last stage.
FROM debian:bookworm-slim AS gateway
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dsgw \
 && install -d -m 0700 -o dsgw -g dsgw /run/docusign-gateway
COPY --from=build /src/target/release/docusign-gateway /usr/local/bin/docusign-gateway
COPY config/gateway.toml /etc/docusign-gateway/gateway.toml
# Secrets come from the environment: DSGW_DOCUSIGN_CLIENT_SECRET, DSGW_SESSION_SECRET.
# The upgrade socket's directory: the gateway's user only (it has no home).
ENV DSGW_SERVER_LISTEN=0.0.0.0:8080 \
    DSGW_SERVER_METRICS_LISTEN=0.0.0.0:9090 \
    DSGW_SERVER_UPGRADE_SOCK=/run/docusign-gateway/upgrade.sock
USER dsgw
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["docusign-gateway", "health", "--config", "/etc/docusign-gateway/gateway.toml"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["docusign-gateway", "--config", "/etc/docusign-gateway/gateway.toml"]
