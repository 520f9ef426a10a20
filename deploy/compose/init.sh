#!/bin/sh
# First start of the compose deployment: writes what must never be committed, once.
#   deploy/compose/init.sh [dir]     (default: this script's directory)
# - <dir>/.env: the Kafka cluster id (KRaft formats its log dirs with it) and the portal's origin;
# - <dir>/secrets/: the Grafana admin password and each intermediate server's staff token (random).
# Existing files are kept. The hub's own keys are not made here: the hub-keygen job makes them inside the
# hub-keys volume (deploy/README.md, First start).
set -eu
dir=${1:-$(dirname "$0")}
umask 077
mkdir -p "$dir/secrets"
chmod 0700 "$dir/secrets"
rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
secret() {
  # Readable inside the containers (their users are not the host's); the 0700 directory keeps them private here.
  if [ ! -s "$dir/secrets/$1" ]; then rand 32 > "$dir/secrets/$1"; chmod 0644 "$dir/secrets/$1"; echo "init: wrote secrets/$1"; fi
}
secret grafana-admin-password
secret muroran-city.staff-token
secret jpn-pension-service.staff-token
if [ ! -s "$dir/.env" ]; then
  # A KRaft cluster id is 16 bytes in URL-safe base64 without padding (22 characters).
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  cat > "$dir/.env" <<ENV
KAFKA_CLUSTER_ID=$id
PORTAL_ORIGIN=http://localhost:3300
PORTAL_RP_ID=localhost
ENV
  echo "init: wrote .env"
fi
