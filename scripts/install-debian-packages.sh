#!/bin/bash
# Installs the Debian packages the tests run as real daemons (see docs/testing.md). Idempotent.
set -euo pipefail
PACKAGES=(
  postfix postfix-ldap postfix-policyd-spf-python
  dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved dovecot-sieve dovecot-ldap dovecot-lucene
  amavisd-new spamassassin clamav-daemon clamav-milter opendkim opendkim-tools
  sasl2-bin libsasl2-modules libsasl2-modules-ldap
  haproxy swaks cloud-init shellcheck socat iproute2 dnsmasq-base xfsprogs
  nfs-common  # nfsconf reads the rendered /etc/nfs.conf.d drop-in (tests/userdata/daemons/test_nfs.py)
  curl  # the webmail tests talk HTTP(S) to nginx and SOGo with it (missing on a stock Debian 12: make fresh-check)
  iptables  # the metadata guard's rules, run in a private namespace (tests/userdata/test_metadata_guard.py); the twin's security groups (mailstrata/twin/firewall.py)
  samba samba-ad-dc samba-ad-provision winbind ldap-utils slapd
  sogo sogo-activesync memcached mariadb-server nginx-light  # sogo-activesync: SOGo's ActiveSync bundle (tests/twin/test_activesync.py)
  gcc libc6-dev  # the local twin compiles its loopback shim (mailstrata/twin/files/loopback_shim.c)
  bind9-utils  # named-checkzone loads the published DNS records as zone files (tests/stacks/test_dns_records.py)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "debian packages: all ${#PACKAGES[@]} installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "debian packages missing (${missing[*]}) and not root: daemon tests will skip" >&2
  exit 0
fi
echo "debian packages: installing ${missing[*]}"
# Postfix must not ask questions nor write a configuration of its own.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
