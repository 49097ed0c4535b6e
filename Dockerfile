# syntax=docker/dockerfile:1
# Capstan's image: `docker build -t capstan .` (BuildKit). What the runtime image holds and why:
#   capstan          the binary (every role: `serve --role api|worker`, and the CLI)
#   helm, kubectl    the Helm and Kustomize renderers (`helm template`, `kubectl kustomize`)
#   git              gix runs git-upload-pack for file:// and local-path repositories
#   openssh-client   gix runs ssh for ssh:// and scp-style repositories, through /bin/sh (so no
#                    distroless image: the Debian base brings the shell)
#   ca-certificates  HTTPS to Git hosts and Helm repositories
# It runs as the numeric user 65532 (the deploy/ manifests' runAsUser), with a passwd entry
# because ssh refuses to run for a user id that has none.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The caches only speed up rebuilds; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked && cp target/release/capstan /capstan

FROM debian:bookworm-slim AS tools
# helm and kubectl from the same archive `scripts/install-tools` uses for the tests.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/install-tools /usr/local/bin/install-tools
RUN HELM_DEST=/opt/tools install-tools helm kubectl

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 capstan \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /var/lib/capstan \
       --shell /usr/sbin/nologin capstan
COPY --from=tools /opt/tools/ /usr/local/bin/
COPY --from=build /capstan /usr/local/bin/capstan
USER 65532:65532
# config/default.toml is compiled into the binary; mount a capstan.toml and pass --config.
ENTRYPOINT ["capstan"]
CMD ["serve"]
