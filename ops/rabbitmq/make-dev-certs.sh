#!/usr/bin/env bash
# Makes a throwaway CA, a RabbitMQ server certificate and a client certificate for the daemon, for
# compose and tests only (1-day validity by default; production certificates come from your PKI).
#   ops/rabbitmq/make-dev-certs.sh [DIR=ops/rabbitmq/tls] [DAYS=1]
# DIR gets ca.pem/ca.key, server.pem/server.key (CN rabbitmq, SAN rabbitmq, localhost, 127.0.0.1)
# and client.pem/client.key (CN integration-service). Keys are written mode 0600.
set -euo pipefail
DIR=${1:-$(dirname "$0")/tls}
DAYS=${2:-1}
mkdir -p "$DIR"
cd "$DIR"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days "$DAYS" -subj "/CN=integration-dev-ca" \
  -keyout ca.key -out ca.pem 2>/dev/null
sign() { # sign NAME CN EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%b' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$DAYS" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
sign server rabbitmq 'subjectAltName=DNS:rabbitmq,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
sign client integration-service 'extendedKeyUsage=clientAuth\n'
rm -f ca.srl
# The broker in the compose container reads the mounted key as uid 999: these are throwaway dev
# keys, so the server key is made world-readable; the CA key and the client key stay 0600.
chmod 0644 ca.pem server.pem client.pem server.key
echo "dev certificates in $DIR"
