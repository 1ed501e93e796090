#!/bin/sh
# Makes the certificates of the ImagePolicyWebhook mode with openssl, into
# the folder given as $1 (default /etc/kubernetes/imagegate/pki). Run it on
# one control-plane node, then copy the folder to the others (same CA and
# certificates everywhere; each node's imagegate is reached on 127.0.0.1).
#
#   ca.crt                  CA: verifies imagegate's serving certificate (the
#                           apiserver's kubeconfig) and the apiserver's client
#                           certificate (imagegate --client-ca)
#   ca.key                  CA key: needed only to renew; move it off the node
#   serving.crt/.key        imagegate's serving certificate, SAN IP:127.0.0.1
#                           and DNS:localhost, extendedKeyUsage serverAuth
#   apiserver-client.crt/.key  the kube-apiserver's client certificate,
#                           CN=kube-apiserver, extendedKeyUsage clientAuth
#
# Keys are ECDSA P-256, mode 0600. When run as root, serving.key is given to
# IMAGEGATE_UID (65532, the static pod's runAsUser) so imagegate can read it;
# the other keys stay root's (the apiserver runs as root).
# Run again to renew the leaf certificates: an existing CA is reused, so
# nothing else changes; both processes reload the files (the apiserver on
# its next connection). Environment: DAYS (365), CA_DAYS (3650),
# IMAGEGATE_UID (65532).
set -eu
out=${1:-/etc/kubernetes/imagegate/pki}
days=${DAYS:-365}
ca_days=${CA_DAYS:-3650}
uid=${IMAGEGATE_UID:-65532}
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is required" >&2; exit 1; }
mkdir -p "$out"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

leaf() { # name subject extensions
  key "$tmp/$1.key"
  openssl req -new -key "$tmp/$1.key" -subj "$2" -out "$tmp/$1.csr"
  printf '%s\n' "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -CAcreateserial -CAserial "$tmp/ca.srl" -sha256 -days "$days" \
    -extfile "$tmp/$1.ext" -out "$tmp/$1.crt" 2>/dev/null
  openssl verify -CAfile "$out/ca.crt" "$tmp/$1.crt" >/dev/null
  mv "$tmp/$1.key" "$out/$1.key"
  mv "$tmp/$1.crt" "$out/$1.crt"
  chmod 644 "$out/$1.crt"
}

if [ -s "$out/ca.key" ] && [ -s "$out/ca.crt" ]; then
  echo "reusing the CA in $out"
else
  key "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$ca_days" \
    -subj "/CN=imagegate ImagePolicyWebhook CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca.crt"
  chmod 644 "$out/ca.crt"
fi

leaf serving "/CN=127.0.0.1" 'basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost'

leaf apiserver-client "/CN=kube-apiserver" 'basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'

if [ "$(id -u)" = 0 ]; then
  chown "$uid:$uid" "$out/serving.key"
  chmod 400 "$out/serving.key"
fi
echo "wrote $out: ca.crt, serving.crt (127.0.0.1, localhost), apiserver-client.crt (valid $days days)"
