# syntax=docker/dockerfile:1

# One image holds all three trawl binaries; docker-compose.yml picks the one
# each service runs with `command:`.
#
#   make image
#   (docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t trawl .)
#
# The build context has no .git (.dockerignore), so the version comes in as the
# VERSION build arg: `make image` passes git describe, docker-compose.yml passes
# TRAWL_VERSION (default "dev"). The binaries print it for `version`.
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.
# deploy/compose_test.go checks parts of this file.

# ---- build ------------------------------------------------------------------
# Runs on the build host's platform and cross-compiles (pure Go, CGO off), so
# multi-platform builds (docker buildx build --platform ...) need no emulation.
# Pinned to a Go release (docs/adr/0002-pinned-images.md); go.mod's go line is
# the oldest Go that builds Trawl.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build

WORKDIR /src

ENV CGO_ENABLED=0

# Dependencies in their own layer: only go.mod/go.sum changes invalidate it.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go mod download

COPY . .

ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/trawlhq/trawl/service.Version=${VERSION}" \
      -o /out/ \
      ./cmd/crawler ./cmd/processor ./cmd/dashboard

# ---- runtime ----------------------------------------------------------------
# Static binaries only: no shell, no package manager, CA certificates and
# tzdata included. Distroless publishes no version tags: the Debian release in
# the name is the pin (docs/adr/0002-pinned-images.md). Health checks use the binaries' own `healthcheck`
# subcommand, since there is no curl or wget here.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="trawl" \
      org.opencontainers.image.description="Trawl distributed web crawl pipeline: crawler, processor and dashboard" \
      org.opencontainers.image.source="https://github.com/trawlhq/trawl" \
      org.opencontainers.image.url="https://github.com/trawlhq/trawl" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

COPY --from=build /out/crawler /out/processor /out/dashboard /usr/local/bin/

USER nonroot:nonroot

# Dashboard. Crawler (:8081) and processor (:8082) serve only /healthz and
# /readyz, used from inside the container, so they are not exposed.
EXPOSE 8080

ENTRYPOINT []
CMD ["/usr/local/bin/dashboard"]
