#!/usr/bin/env bash
# icissue cert through the real CLI binary: a CA, a server certificate for 127.0.0.1 and
# localhost, branch certificates, revocation into a CRL created on first use, renewal of the
# CRL; key files mode 0600, unique serials, nothing overwritten, usage errors (exit 2) and
# refusals (exit 1) that leave every file as it was and never print key material. When the
# openssl command is installed, it checks the certificates and the CRL independently (the code
# never uses OpenSSL).
# Usage: tests/e2e/central_certs.sh BUILD_DIR   (binaries in BUILD_DIR/bin; run from the repo
#        root; KEEP=1 keeps the temporary directory)
set -u
out=${1:-build/check}
icissue="$out/bin/icissue"
[ -x "$icissue" ] || { echo "central_certs.sh: no $icissue" >&2; exit 1; }

tmp=$(mktemp -d /tmp/icdup-e2e-certs-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

. "$(dirname "$0")/../support/e2e.sh"

umask 022
cd "$tmp" || exit 1
ic() { "$OLDPWD/$icissue" "$@"; }
have_openssl=false
command -v openssl >/dev/null && have_openssl=true
sum() { sha256sum "$@" | cut -c1-16 | tr '\n' ' '; }
mode() { stat -c %a "$1"; }
CA=(--ca-cert ca.crt --ca-key ca.key)

# ---- making certificates -----------------------------------------------------------------
run ca 0 ic cert ca --out-cert ca.crt --out-key ca.key
has ca out 'made ca certificate "icdup demo CA": ca.crt'
eq "ca.key mode" "$(mode ca.key)" 600
eq "ca.crt mode" "$(mode ca.crt)" 644
run server 0 ic cert server "${CA[@]}" --host 127.0.0.1,localhost --out-cert srv.crt \
  --out-key srv.key
has server out 'made server certificate "central": srv.crt'
run north 0 ic cert branch "${CA[@]}" --name north --out-cert north.crt --out-key north.key
run south 0 ic cert branch "${CA[@]}" --name south --out-cert south.crt --out-key south.key \
  --days 30
eq "north.key mode" "$(mode north.key)" 600
n64=$(printf 'b%.0s' $(seq 64))
run name64 0 ic cert branch "${CA[@]}" --name "$n64" --out-cert b64.crt --out-key b64.key
serial() { sed -n 's/.*(serial \([0-9A-F]*\),.*/\1/p' "$tmp/$1.out"; }
serials=$(for s in ca server north south name64; do serial $s; done | sort -u | wc -l)
eq "distinct serials of 5 certificates" "$serials" 5
eq "serial length" "$(serial north | tr -d '\n' | wc -c)" 32
ls ./*.tmp-* >/dev/null 2>&1 && bad "temporary files left" || ok "no temporary files left"
cat ./*.out ./*.err >"$tmp/all.txt"
lacks all txt "PRIVATE KEY"

if $have_openssl; then
  openssl x509 -noout -text -in ca.crt >ca.txt 2>&1
  has ca txt "CA:TRUE"
  has ca txt "Certificate Sign, CRL Sign"
  has ca txt "ASN1 OID: prime256v1"
  openssl x509 -noout -text -in srv.crt >srv.txt 2>&1
  has srv txt "TLS Web Server Authentication"
  has srv txt "IP Address:127.0.0.1, DNS:localhost"
  has srv txt "CA:FALSE"
  openssl x509 -noout -text -in north.crt >north.txt 2>&1
  has north txt "Subject: CN = north"
  has north txt "TLS Web Client Authentication"
  lacks north txt "Server Authentication"
  openssl verify -CAfile ca.crt north.crt srv.crt >verify.out 2>&1
  has verify out "north.crt: OK"
  has verify out "srv.crt: OK"
  openssl pkey -in north.key -noout -check >key.out 2>&1 && ok "north.key is a valid key" ||
    bad "north.key is not a valid key" key.out
else
  echo "# openssl not installed: independent checks skipped"
fi

# ---- refusals that change nothing ----------------------------------------------------------
before=$(sum ca.crt ca.key north.crt north.key)
run exists 1 ic cert branch "${CA[@]}" --name north --out-cert north.crt --out-key new.key
has exists err "north.crt exists already"
run exists_key 1 ic cert ca --out-cert new.crt --out-key ca.key
eq "files after refusals" "$(sum ca.crt ca.key north.crt north.key)" "$before"
[ -e new.key ] || [ -e new.crt ] && bad "a refused run left a file" || ok "no file left"
run badname 2 ic cert branch "${CA[@]}" --name "no/slash" --out-cert x.crt --out-key x.key
has badname err "1 to 64 characters"
run longname 2 ic cert branch "${CA[@]}" --name "${n64}c" --out-cert x.crt --out-key x.key
run noname 2 ic cert branch "${CA[@]}" --out-cert x.crt --out-key x.key
has noname err "cert branch needs --name"
run nokey 2 ic cert branch --ca-cert ca.crt --name x --out-cert x.crt --out-key x.key
has nokey err "needs --ca-key"
run hostbranch 2 ic cert branch "${CA[@]}" --name x --host h --out-cert x.crt --out-key x.key
has hostbranch err "--host does not go with cert branch"
run badhost 2 ic cert server "${CA[@]}" --host "127.0.0.1,bad_host!" --out-cert x.crt \
  --out-key x.key
has badhost err "neither a host name nor an IP address"
run days0 2 ic cert ca --out-cert x.crt --out-key x.key --days 0
run daysbig 2 ic cert ca --out-cert x.crt --out-key x.key --days 36501
run nosub 2 ic cert
run badsub 2 ic cert root --out-cert x.crt
run help 0 ic cert --help
has help out "icissue cert revoke"
[ -e x.key ] || [ -e x.crt ] && bad "a usage error left a file" || ok "no file after usage errors"
chmod 644 ca.key
run loose 1 ic cert branch "${CA[@]}" --name x --out-cert x.crt --out-key x.key
has loose err "run chmod 600"
chmod 600 ca.key
run other_ca 0 ic cert ca --out-cert ca2.crt --out-key ca2.key --name "other CA"
run mismatch 1 ic cert branch --ca-cert ca.crt --ca-key ca2.key --name x --out-cert x.crt \
  --out-key x.key
has mismatch err "is not the key of the CA certificate"
run notca 1 ic cert branch --ca-cert north.crt --ca-key north.key --name x --out-cert x.crt \
  --out-key x.key
has notca err "not a CA certificate"
cat ./*.out ./*.err >"$tmp/all.txt"
lacks all txt "PRIVATE KEY"

# ---- revocation ----------------------------------------------------------------------------
run crl_new 0 ic cert crl "${CA[@]}" --crl crl.pem
has crl_new out "created crl.pem: 0 revoked serials"
run revoke 0 ic cert revoke "${CA[@]}" --cert north.crt --crl crl.pem
has revoke out "revoked serial $(serial north) (CN=north)"
has revoke out "signed crl.pem: 1 revoked serial, next update"
run again 0 ic cert revoke "${CA[@]}" --cert north.crt --crl crl.pem
has again out "was revoked already"
has again out "1 revoked serial,"
crl_before=$(sum crl.pem)
ic cert branch --ca-cert ca2.crt --ca-key ca2.key --name east --out-cert east.crt \
  --out-key east.key </dev/null >/dev/null 2>&1
run foreign 1 ic cert revoke "${CA[@]}" --cert east.crt --crl crl.pem
has foreign err "was not issued by this CA"
run revoke_ca 1 ic cert revoke "${CA[@]}" --cert ca.crt --crl crl.pem
has revoke_ca err "CA certificate itself"
run other_crl 1 ic cert revoke --ca-cert ca2.crt --ca-key ca2.key --cert east.crt --crl crl.pem
has other_crl err "issued by another CA"
eq "crl.pem after refusals" "$(sum crl.pem)" "$crl_before"
cp crl.pem crl.bak
head -c 100 crl.bak >crl.pem
broken=$(sum crl.pem)
run corrupt 1 ic cert revoke "${CA[@]}" --cert south.crt --crl crl.pem
has corrupt err "is not a CRL"
eq "corrupt crl.pem untouched" "$(sum crl.pem)" "$broken"
mv crl.bak crl.pem
run revoke2 0 ic cert revoke "${CA[@]}" --cert south.crt --crl crl.pem --days 7
has revoke2 out "2 revoked serials"
ls ./*.tmp-* >/dev/null 2>&1 && bad "temporary files left" || ok "no temporary files left"
if $have_openssl; then
  openssl crl -noout -text -in crl.pem >crl.txt 2>&1
  has crl txt "Serial Number: $(serial north)"
  has crl txt "Serial Number: $(serial south)"
  openssl crl -noout -crlnumber -in crl.pem >crlnum.out 2>&1
  has crlnum out "crlNumber=0x04"   # crl, revoke, again, revoke2: one higher each time
  openssl crl -in crl.pem -CAfile ca.crt -noout >crlv.out 2>&1
  has crlv out "verify OK"
  openssl verify -CAfile ca.crt -crl_check -CRLfile crl.pem north.crt srv.crt >rv.out 2>&1
  has rv out "certificate revoked"
  has rv out "srv.crt: OK"
fi

echo "central_certs.sh: $((checks - fails)) of $checks checks passed"
[ "$fails" = 0 ]
