# allot: multi-stage build. Dependencies build in their own cached layer;
# the runtime image is Debian slim with a non-root user and the default
# config. It runs `allot serve` against NATS at nats://nats:4222; every
# config key can be overridden by an environment variable
# ALLOT__SECTION__KEY (e.g. ALLOT__NATS__URL, ALLOT__HTTP__AUTH_TOKEN) or a
# flag. Ports: 8080 the HTTP API (/v1), 9100 /metrics, /livez, /readyz
# (probe those two for liveness and readiness).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The core crate is a path dependency: it comes whole (it is small and
# changes with the service). The workspace's other members (the bench and
# the load test) only need their manifests here: the image builds the
# allot binary alone.
COPY core core
COPY bench/Cargo.toml bench/Cargo.toml
COPY loadtest/goose/Cargo.toml loadtest/goose/Cargo.toml
RUN mkdir -p src benches bench/src loadtest/goose/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/core.rs \
    && echo 'fn main() {}' > bench/src/main.rs \
    && echo 'fn main() {}' > loadtest/goose/src/main.rs \
    && cargo build --release --locked -p allot --bin allot \
    && rm -rf src benches
COPY src src
COPY benches benches
COPY docs docs
# The commit allot_build_info reports (`docker build --build-arg
# ALLOT_GIT_COMMIT=$(git rev-parse --short HEAD)`; compose passes it on).
ARG ALLOT_GIT_COMMIT=unknown
RUN touch src/main.rs src/lib.rs && ALLOT_GIT_COMMIT="$ALLOT_GIT_COMMIT" cargo build --release --locked -p allot --bin allot

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /etc/allot allot
COPY --from=build /src/target/release/allot /usr/local/bin/allot
COPY config /etc/allot/config
WORKDIR /etc/allot
USER allot
ENV ALLOT__NATS__URL=nats://nats:4222 \
    ALLOT__LOG__FORMAT=json
EXPOSE 8080 9100
ENTRYPOINT ["allot"]
CMD ["serve"]
