#!/bin/bash
# Rebuilds this folder from the shared policy data (/work/shared/data/centos7/selinux, see README.md) and,
# for attributes.txt, from Debian 12's refpolicy (apt-get install setools selinux-policy-default).
# Run from this folder: ./make.sh /path/to/centos7/selinux
set -euo pipefail
src=${1:?usage: ./make.sh /path/to/centos7/selinux}
domains=(postfix_master_t postfix_smtp_t postfix_smtpd_t postfix_cleanup_t antivirus_t dkim_milter_t
         saslauthd_t dovecot_t dovecot_auth_t httpd_t memcached_t mysqld_t nfsd_t rpcd_t kernel_t
         unconfined_service_t)
cp "$src/booleans.txt" booleans.txt
grep -E 'portcon (tcp|udp) ' "$src/portcon.txt" > portcon.txt
grep -E 'init_t (bin_t|[a-z0-9_]+_exec_t):process ' "$src/init-transitions.txt" > init-transitions.txt
gzip -9nc "$src/file_contexts.txt" > file_contexts.txt.gz
# the rules of each domain for the classes the tests judge: ports, folders, files, links
for d in "${domains[@]}"; do
  echo "# $d"
  grep -E ':(tcp_socket|udp_socket|dir|file|lnk_file) ' "$src/allow-$d.txt"
done | gzip -9n > allow.txt.gz
# attributes of the types the tests judge, as Debian's refpolicy declares them (CentOS's is not here)
policy=$(ls /etc/selinux/default/policy/policy.* | head -n 1)
types=$(awk '{print $4}' portcon.txt | cut -d: -f3 | sort -u)
types+=" nfs_t var_t etc_t lib_t httpd_config_t mail_home_rw_t usr_t bin_t default_t"
for t in $types; do
  line=$(seinfo "$policy" -t "$t" -x 2>/dev/null | sed -n 's/^ *type [a-z0-9_]*, *//p' | tr -d ';' | tr -s ' ,' ' ')
  echo "$t: ${line:-?}"
done > attributes.txt
