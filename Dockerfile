# Build: docker build -t capstan .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim AS tools
# helm and kubectl (whose `kubectl kustomize` renders Kustomize) for the renderers.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/install-tools /usr/local/bin/install-tools
RUN HELM_DEST=/opt/tools install-tools helm kubectl

FROM debian:bookworm-slim
# git and ssh: gix spawns git-upload-pack for file:// and ssh for ssh:// remotes.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=tools /opt/tools/ /usr/local/bin/
COPY --from=build /src/target/release/capstan /usr/local/bin/capstan
COPY --from=build /src/config /etc/capstan/defaults
USER 65532:65532
ENTRYPOINT ["capstan"]
CMD ["serve"]
