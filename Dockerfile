# Build: docker build -t capstan .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
# git and ssh: gix spawns git-upload-pack for file:// and ssh for ssh:// remotes.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/capstan /usr/local/bin/capstan
COPY --from=build /src/config /etc/capstan/defaults
USER 65532:65532
ENTRYPOINT ["capstan"]
CMD ["serve"]
