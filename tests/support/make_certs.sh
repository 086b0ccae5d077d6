#!/bin/sh
# Makes throwaway certificates for the TLS tests. Test-only: never ship these.
#   cert.pem / key.pem              self-signed, localhost and 127.0.0.1
#   other.pem / other-key.pem       self-signed, other.test and 127.0.0.1
#   ca.pem / ca-key.pem             a private CA
#   a.pem / a-key.pem               signed by it: a.sni.test
#   b.pem / b-key.pem               signed by it: b.sni.test and *.b.sni.test
#   expired.pem / expired-key.pem   signed by it, valid only in 2020
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

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=atoll test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null

# leaf FILE CN SAN [openssl ca dates]: a key, and a certificate the CA signs.
ca_dir=$dir/ca-state
rm -rf "$ca_dir"
mkdir -p "$ca_dir"
: > "$ca_dir/index.txt"
echo 1000 > "$ca_dir/serial"
cat > "$ca_dir/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $ca_dir
database = $ca_dir/index.txt
serial = $ca_dir/serial
new_certs_dir = $ca_dir
certificate = $dir/ca.pem
private_key = $dir/ca-key.pem
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
CNF
leaf() {
  name=$1 cn=$2 san=$3
  shift 3
  openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$cn" -addext "subjectAltName=$san" \
    -keyout "$dir/$name-key.pem" -out "$ca_dir/$name.csr" 2>/dev/null
  openssl ca -batch -config "$ca_dir/ca.cnf" -in "$ca_dir/$name.csr" -out "$dir/$name.pem" \
    -notext "$@" 2>/dev/null
}
leaf a a.sni.test "DNS:a.sni.test" -days 30
leaf b "*.b.sni.test" "DNS:b.sni.test,DNS:*.b.sni.test" -days 30
leaf expired expired.sni.test "DNS:expired.sni.test" -startdate 20200101000000Z -enddate 20200102000000Z
rm -rf "$ca_dir"
