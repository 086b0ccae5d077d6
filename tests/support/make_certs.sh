#!/bin/sh
# Makes a throwaway CA-less self-signed certificate for localhost (and a
# second one for SNI tests). Test-only: never ship these.
set -e
dir=$1
mkdir -p "$dir"
for name in localhost other.test; do
  base=$dir/$( [ "$name" = localhost ] && echo cert || echo other )
  key=$dir/$( [ "$name" = localhost ] && echo key || echo other-key ).pem
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$name" \
    -addext "subjectAltName=DNS:$name,IP:127.0.0.1" \
    -keyout "$key" -out "$base.pem" 2>/dev/null
done
