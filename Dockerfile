# dust-mcp: multi-stage build. The runtime image holds only the binary, CA certificates and a
# non-root user; configuration comes from DUST_MCP_* environment variables (or a mounted TOML
# file named by DUST_MCP_CONFIG).
#
#   docker build -t dust-mcp .
#   docker run -p 8080:8080 -e DUST_MCP_PUBLIC_URL=https://mcp.example.com \
#     -e DUST_API_KEY=sk-... -e DUST_WORKSPACE_ID=... -v dust-mcp-data:/data dust-mcp

FROM rust:1.95-slim-bookworm AS build
# make: jemalloc (the global allocator) is built from C source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY actors/Cargo.toml actors/Cargo.toml
COPY load-tests/Cargo.toml load-tests/Cargo.toml
RUN mkdir -p src actors/src load-tests/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs actors/src/lib.rs \
 && echo 'fn main() {}' > load-tests/src/main.rs \
 && cargo build --release --locked --bin dust-mcp \
 && rm -rf src actors/src load-tests/src
COPY . .
RUN touch src/main.rs src/lib.rs actors/src/lib.rs \
 && cargo build --release --locked --bin dust-mcp \
 && strip target/release/dust-mcp

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin dustmcp \
 && mkdir -p /data && chown dustmcp /data
COPY --from=build /src/target/release/dust-mcp /usr/local/bin/dust-mcp
USER dustmcp
WORKDIR /data
ENV DUST_MCP_BIND=0.0.0.0:8080 \
    DUST_MCP_DATA_DIR=/data \
    DUST_MCP_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -H "Host: localhost" http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["dust-mcp"]
CMD ["serve"]
