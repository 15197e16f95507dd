#!/usr/bin/env bash
# Makes the encrypted sample used by the README's quick start, exactly as Twilio's
# encrypted storage would hold it: a one-time AES-256 content key, AES-CBC with PKCS#7
# (openssl enc), the key wrapped with RSA PKCS#1 v1.5 (openssl pkeyutl), and the
# response headers as `curl -D` saves them. demo-key.pem is a throwaway demo key.
set -euo pipefail
cd "$(dirname "$0")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out demo-key.pem 2>/dev/null
openssl pkey -in demo-key.pem -pubout -out demo-key.pub
cek=$(openssl rand -hex 32); iv=$(openssl rand -hex 16)
openssl enc -aes-256-cbc -K "$cek" -iv "$iv" -in ../audio-opus.mka -out audio-opus.mka.enc
echo -n "$cek" | xxd -r -p | openssl pkeyutl -encrypt -pubin -inkey demo-key.pub \
    -pkeyopt rsa_padding_mode:pkcs1 | base64 -w0 > wrapped.b64
{
  printf 'HTTP/1.1 200 OK\r\n'
  printf 'Content-Length: %s\r\n' "$(stat -c %s audio-opus.mka.enc)"
  printf 'x-amz-meta-x-amz-key: %s\r\n' "$(cat wrapped.b64)"
  printf 'x-amz-meta-x-amz-iv: %s\r\n' "$(echo -n "$iv" | xxd -r -p | base64 -w0)"
  printf 'x-amz-meta-x-amz-unencrypted-content-length: %s\r\n' "$(stat -c %s ../audio-opus.mka)"
  printf 'x-amz-meta-x-amz-matdesc: {}\r\n\r\n'
} > headers.txt
rm -f wrapped.b64 demo-key.pub
chmod 600 demo-key.pem
