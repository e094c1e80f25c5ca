# allot: multi-stage build. Dependencies build in their own cached layer;
# the runtime image is Debian slim with a non-root user and the default
# config. It runs `allot serve` against NATS at nats://nats:4222 (override
# with --nats-url or ALLOT_NATS_URL). No ports of its own yet: allot talks
# to NATS only (the HTTP API and /metrics come with the service surface).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/core.rs \
    && cargo build --release --locked --bin allot \
    && rm -rf src benches
COPY src src
COPY benches benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin allot

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /etc/allot allot
COPY --from=build /src/target/release/allot /usr/local/bin/allot
COPY config /etc/allot/config
WORKDIR /etc/allot
USER allot
ENTRYPOINT ["allot"]
CMD ["serve", "--nats-url", "nats://nats:4222"]
