# syntax=docker/dockerfile:1
#
# The production CodeBuild project's custom image: ecr-promote plus what CodeBuild needs to run a buildspec
# (bash, CA certificates, git to resolve release tags in the source checkout). No compilers, no Docker
# daemon, no AWS CLI: the copy is ecr-promote's own.
#
#   docker build --platform linux/amd64 -t ecr-promote:0.1.0 .
#
# linux/amd64 because the CodeBuild project is a LINUX_CONTAINER (x86_64) one: built on an arm64 machine
# without --platform, the image would not start there (with it, the Rust build runs under emulation: slow).
#
# Tags are pinned; pin the digests too (FROM image:tag@sha256:…) once you have pulled them, and rebuild
# regularly to pick up Debian's security fixes.

# The full rust image (not -slim) because aws-lc-sys, under the TLS stack, compiles C with gcc and perl.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The cache mounts keep crates and build output between local rebuilds; they never reach the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/ecr-promote /usr/local/bin/ecr-promote

FROM debian:bookworm-slim
# checkov:skip=CKV_DOCKER_2: no HEALTHCHECK: CodeBuild runs a buildspec in this image and nothing acts on a health check; ecr-promote is a command that exits, not a service
# Versions are not pinned: Debian replaces a package in bookworm-security as soon as a fix is out, so an
# exact pin fails the build within weeks. The base tag pins the release (bookworm); a rebuild takes fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates git \
    && rm -rf /var/lib/apt/lists/*
# CodeBuild runs a custom image's commands as root whatever USER says, unless the buildspec sets `run-as`:
# buildspec.yml runs ecr-promote as this user, so the process that parses queue messages — which anyone
# who can reach the webhook can shape — holds no root. USER makes `docker run` on a laptop match; it is
# numeric so that a runtime checking for a non-root user can tell without reading /etc/passwd.
RUN useradd --create-home --uid 10001 --user-group --shell /bin/bash promote
COPY --from=build /usr/local/bin/ecr-promote /usr/local/bin/ecr-promote
LABEL org.opencontainers.image.title="ecr-promote" \
      org.opencontainers.image.description="Promote a staging ECR image to production under a GitHub release tag, digest for digest"
USER 10001:10001
WORKDIR /home/promote
CMD ["ecr-promote", "--help"]
