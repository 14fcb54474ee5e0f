# The `warden` command line as a container image. The CLI embeds the filter
# module (build.rs compiles filter/ to wasm32-wasip1 and the binary carries
# it), so the final image holds the binary and nothing else it needs.
#
#   docker build -t warden --build-arg WARDEN_GIT_COMMIT=$(git rev-parse HEAD) .
#   docker run --rm -v "$PWD:/work" warden test policies
#
# The build context leaves .git out (.dockerignore), so the commit that
# `warden --version` names comes from the build argument ("unknown" without).

# ---- build: the toolchain rust-toolchain.toml pins, with the wasm target
FROM rust:1.95-slim-trixie AS build
WORKDIR /src
COPY rust-toolchain.toml ./
# The toolchain the file names, with its targets (wasm32-wasip1 for the
# filter; the build script would add it too, but a layer caches it).
RUN rustup toolchain install && rustup target add wasm32-wasip1
COPY . .
ARG WARDEN_GIT_COMMIT=unknown
ENV WARDEN_GIT_COMMIT=${WARDEN_GIT_COMMIT}
RUN cargo build --release --locked --bin warden \
    && cp target/release/warden /usr/local/bin/warden \
    && /usr/local/bin/warden --version

# ---- run: the binary on the same Debian release (its glibc)
FROM debian:trixie-slim
COPY --from=build /usr/local/bin/warden /usr/local/bin/warden
# Compiled filter modules are cached here (best effort) by any user.
ENV WARDEN_CACHE_DIR=/tmp/warden-cache
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["warden"]
CMD ["--help"]
