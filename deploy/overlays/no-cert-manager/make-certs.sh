#!/bin/sh
# Makes the certificates of the in-cluster webhook when cert-manager is not
# used: a private CA and a serving certificate for the Service
# imagegate.imagegate.svc, written to certs/ beside this script (or $1).
#
#   certs/ca.crt   CA certificate (also becomes the webhook's caBundle)
#   certs/ca.key   CA private key: keep it safe, never commit it (see below)
#   certs/tls.crt  serving certificate, SAN imagegate.imagegate.svc[.cluster.local]
#   certs/tls.key  its private key
#
# Run again to renew the serving certificate: an existing CA is reused, so
# the caBundle does not change and the replicas reload the new pair in place.
# Delete certs/ to start over with a new CA (then re-apply the whole overlay;
# requests fail for up to a minute while pods still serve the old chain,
# so do it with the webhook removed or failurePolicy set to Ignore).
#
# Environment: NAMESPACE (imagegate), SERVICE (imagegate), DAYS (365),
# CA_DAYS (3650).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/certs"}
ns=${NAMESPACE:-imagegate}
svc=${SERVICE:-imagegate}
days=${DAYS:-365}
ca_days=${CA_DAYS:-3650}
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is required" >&2; exit 1; }
mkdir -p "$out"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ -s "$out/ca.key" ] && [ -s "$out/ca.crt" ]; then
  echo "reusing the CA in $out"
else
  key "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$ca_days" \
    -subj "/CN=imagegate webhook CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca.crt"
fi

key "$tmp/tls.key"
openssl req -new -key "$tmp/tls.key" -subj "/CN=$svc.$ns.svc" -out "$tmp/tls.csr"
cat > "$tmp/ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local
EXT
openssl x509 -req -in "$tmp/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -CAcreateserial -CAserial "$tmp/ca.srl" -sha256 -days "$days" \
  -extfile "$tmp/ext" -out "$tmp/tls.crt" 2>/dev/null
openssl verify -CAfile "$out/ca.crt" "$tmp/tls.crt" >/dev/null
mv "$tmp/tls.key" "$out/tls.key"
mv "$tmp/tls.crt" "$out/tls.crt"
chmod 644 "$out/ca.crt" "$out/tls.crt"
echo "wrote $out/tls.crt for $svc.$ns.svc (valid $days days), CA $out/ca.crt"
