# StreamHouse container image.
#
#   docker build -t streamhouse .
#   docker run -p 9092:9092 -p 50051:50051 -p 8080:8080 -v streamhouse-data:/data streamhouse
#
# Two stages: a Go toolchain with a C compiler builds the broker (cgo, for
# the SQLite metadata store) and streamctl; the final image is Debian slim
# with the two binaries, CA certificates (for S3 over HTTPS) and a non-root
# user. docs/OPERATIONS.md lists the settings (flags and environment).

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not refetch them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/streamhouse ./cmd/streamhouse \
 && CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/streamctl ./cmd/streamctl

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 streamhouse \
 && useradd --system --uid 10001 --gid streamhouse --home-dir /data --no-create-home streamhouse \
 && mkdir /data && chown streamhouse:streamhouse /data
COPY --from=build /out/streamhouse /out/streamctl /usr/local/bin/
USER streamhouse:streamhouse
WORKDIR /data
# Metadata (SQLite), the segment directory and, without S3, the local object
# store all live under /data.
VOLUME /data
# Kafka, gRPC, HTTP (/metrics, /healthz, /readyz).
EXPOSE 9092 50051 8080
ENTRYPOINT ["streamhouse", "--data-dir", "/data"]
