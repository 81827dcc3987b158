#!/usr/bin/env bash
# Makes a throwaway certificate authority and one server certificate it signed,
# valid for 127.0.0.1, ::1 and localhost: enough to run every link over TLS on
# one machine (tests, trying it out). Not for production: keys are unencrypted
# and the CA's key sits next to the certificates.
#
#   bash scripts/make-test-ca.sh DIR   -> DIR/ca.pem DIR/server.pem DIR/server-key.pem
set -euo pipefail
dir="${1:?usage: make-test-ca.sh DIR}"
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=task-scheduler test CA" \
  -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 600 ca-key.pem server-key.pem
echo "$dir/ca.pem $dir/server.pem $dir/server-key.pem"
