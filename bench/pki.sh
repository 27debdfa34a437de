#!/usr/bin/env bash
# Makes the benchmark PKI with the openssl CLI (EC P-256 keys), into $1 (default
# target/bench/pki). Skipped when $1/done exists.
#   root.pem  -> int1.pem -> int2.pem -> leaf.pem (client; it sends leaf + int2 + int1)
#   server.pem/server.key (self-signed), client.key
#   chain.pem       = leaf + int2 + int1: what the client sends, and the expected chain PEM
#   ca1.pem         = root
#   ca10.pem        = root + 9 other CAs,  ca100.pem = root + 99 other CAs
#   tenants/t1..t24.pem, tenants5.pem: the many-tenants measurement's CAs (see below)
# The other CAs have realistic 6-RDN subjects (C, ST, L, O, OU, CN), so the cost of a
# CA name is what a production CA list pays.
set -euo pipefail
out=${1:-target/bench/pki}
[ -e "$out/done" ] && [ -e "$out/tenants/done" ] && exit 0
mkdir -p "$out"
cd "$out"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca_ext="basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash"
leaf_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
printf '%s\n' "$ca_ext" > ca.ext
printf '%s\n' "$leaf_ext" > leaf.ext

# self-signed CA: name subj key
selfsigned() {
    openssl req -new -x509 -key "$3" -subj "$2" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$1" 2>/dev/null
}
# signed: out subj key issuer issuer_key extfile
signed() {
    openssl req -new -key "$3" -subj "$2" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$4" -CAkey "$5" -CAcreateserial -days 3650 -sha256 \
        -extfile "$6" -out "$1" 2>/dev/null
    rm -f "$1.csr"
}

if [ ! -e done ]; then
for k in root int1 int2 client server other; do key "$k.key"; done
selfsigned root.pem "/C=US/ST=California/L=San Francisco/O=Bench Root Org/OU=Security/CN=Bench Root CA" root.key
signed int1.pem "/C=US/ST=California/O=Bench Root Org/OU=Security/CN=Bench Intermediate CA 1" int1.key root.pem root.key ca.ext
signed int2.pem "/C=US/ST=California/O=Bench Root Org/OU=Security/CN=Bench Intermediate CA 2" int2.key int1.pem int1.key ca.ext
signed leaf.pem "/C=US/O=Bench Clients/CN=client.bench.test" client.key int2.pem int2.key leaf.ext
openssl req -new -x509 -key server.key -subj "/CN=server.bench.test" -days 3650 -sha256 -out server.pem 2>/dev/null
cat leaf.pem int2.pem int1.pem > chain.pem
cat int2.pem int1.pem > sendchain.pem

cp root.pem ca1.pem
cp root.pem ca10.pem
cp root.pem ca100.pem
for i in $(seq 1 99); do
    selfsigned "o$i.pem" "/C=US/ST=State $i/L=City $i/O=Bench Partner Organisation $i/OU=Client Certificates/CN=Bench Partner CA $i" other.key
    [ "$i" -le 9 ] && cat "o$i.pem" >> ca10.pem
    cat "o$i.pem" >> ca100.pem
    rm -f "o$i.pem"
done
openssl verify -CAfile root.pem -untrusted sendchain.pem leaf.pem >/dev/null
touch done
fi

# tenants/t1..t24.pem: the tenant CAs of the many-tenants measurement (each list is the
# root plus 4 of them); tenants5.pem = root + t1..t4, the native nginx reference.
mkdir -p tenants
for i in $(seq 1 24); do
    selfsigned "tenants/t$i.pem" "/C=US/ST=State $i/L=City $i/O=Tenant Organisation $i/OU=Client Certificates/CN=Tenant CA $i" other.key
done
cat root.pem tenants/t1.pem tenants/t2.pem tenants/t3.pem tenants/t4.pem > tenants5.pem
touch tenants/done
