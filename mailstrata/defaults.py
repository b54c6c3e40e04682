"""The platform's defaults, each stated once, with why.

The config model (`mailstrata.config.model`) takes its field defaults from here; the construct props
(`mailstrata.constructs`) and the templates' context (`mailstrata.userdata.context`) state the same
defaults for callers that build them without a config, and take them from here too, so that a default
cannot drift between the YAML, a construct used on its own and a template test.

Only defaults that more than one of those layers state live here. What the layers must agree on (ports,
PROXY ports, the load balancer's listeners) is in `mailstrata.contract`; a default only one daemon's
settings know (Postfix's error limits, the NFS server's fixed ports) stays with that daemon.

Pure constants: jsii-free, no pydantic, nothing from mailstrata above the shared types and the directory's
plain dataclasses.
"""

from __future__ import annotations

from mailstrata.directory import AttributeMap, LdapTls
from mailstrata.types import Affinity, FtsBackend, OverQuota, TlsSource

# ---- servers --------------------------------------------------------------------------------------------

OS = "centos7"  # the seed's OS; the only one the config offers today (`os`)
LAYER_COUNT = 2  # two servers per layer: one can be rebuilt while the other serves
FLAVOR = "m1.medium"  # OpenStack's classic flavor name, present on most clouds; the NFS server's too
IMAGE = "CentOS-7-x86_64-GenericCloud-2009"  # CentOS 7's last cloud image (7.9.2009), for the only OS offered
AFFINITY = Affinity.ANTI_AFFINITY  # a layer's servers on different hypervisors: one host failure keeps one up

# Local Terraform state: state/<stack name>.tfstate beside the output folder (for the default cdktf.out, the
# project folder), where no synth, `make clean` or output swap reaches it.
STATE_DIR = "state"

# ---- storage --------------------------------------------------------------------------------------------

STORAGE_SIZE_GB = 2000  # 2 TB of mailboxes: the default quota (2G) for about a thousand users
MAILBOX_MOUNT_POINT = "/MAILBOXES"  # the same path on every mailstore: Dovecot keeps absolute paths on the share

# ---- directory ------------------------------------------------------------------------------------------

DIRECTORY_TLS = LdapTls.LDAPS  # the bind password never crosses the network in clear; AD serves LDAPS on 636
BIND_PASSWORD_VARIABLE = "ad_bind_password"  # set as TF_VAR_ad_bind_password; never in the config or the JSON
AD_ATTRIBUTES = AttributeMap()  # Microsoft AD's attribute and class names (quota in `info`, as in the seed)

# ---- mail -----------------------------------------------------------------------------------------------

MESSAGE_SIZE_LIMIT = 25 * 1024 * 1024  # 25 MiB, about what the large providers accept: mail to and from them fits
TLS_SOURCE = TlsSource.SELF_SIGNED  # a platform that boots without a CA; give a real chain for production

# MTA-STS (RFC 8461), served by the webmail layer
# testing: senders deliver as before and only report failures; enforce would make every MTA-STS sender refuse
# to deliver while smtp-in's certificate is self-signed (the default above). Enforce once it is publicly trusted.
MTA_STS_MODE = "testing"
MTA_STS_MAX_AGE = 604_800  # one week: RFC 8461's own example, and its "range of weeks or greater" (3.2)

# DNS of the mail domains (`mailstrata.dns`)
# p=none: receivers only report. A stricter policy before the reports show every sender of the company's domains
# (newsletters, ticket systems) signing or in SPF would junk or bounce their mail.
DMARC_POLICY = "none"

# Amavis and SpamAssassin (smtp-in)
SPAM_TAG2_LEVEL = 9.0  # well above SpamAssassin's 5.0: few wanted messages are marked as spam
SPAM_KILL_LEVEL = 12.0  # quarantined from here: a margin above tag2_level, so marked mail is still delivered
SPAM_DSN_CUTOFF_LEVEL = 15.0  # no bounce above this: such mail's sender is forged, a bounce would be backscatter
AMAVIS_PROCESSES = 16  # amavisd $max_servers and master.cf's smtp-amavis maxproc: one value, so they match
SPAM_QUARANTINE_DAYS = 14  # discarded mail stays retrievable two weeks: time for a user to miss a message and ask
# Live, free for low volume. SORBS closed in 2024 and answers every query as listed: never a default.
DNSBLS: tuple[str, ...] = ("zen.spamhaus.org", "bl.spamcop.net")
# Where freshclam fetches ClamAV signatures: ClamAV's own CDN (private mirrors: mail.antivirus in the config).
CLAMAV_DATABASE_MIRROR = "database.clamav.net"
SPF_REJECT_SOFTFAIL = False  # ~all is "not sure": rejecting it loses mail from domains with sloppy SPF

# Spool volumes (smtp-in, smtp-out, mailstore): one per server slot, kept across replacements (issue 12).
# Postfix's queue_minfree defaults to 0 and message_size_limit is 10 MB by default; 20 GB holds two thousand
# of the largest messages with room for a deferred backlog of a day's mail of a few thousand users.
SPOOL_GB = 20

# Dovecot quotas (mailstore)
QUOTA_STORAGE = "2G"  # for users whose directory entry has no quota attribute
QUOTA_MESSAGES = 100_000  # a ceiling on message count as well as size (0 in the config: none)
QUOTA_TRASH_EXTRA = "100M"  # room in Trash, so a user over quota can still delete
OVER_QUOTA = OverQuota.DEFER  # keep the mail queued until the user frees space, rather than lose it

# Dovecot full-text search (mailstore)
FTS = FtsBackend.LUCENE  # indexes inside each mailbox: nothing else to run
SOLR_URL = "http://127.0.0.1:8983/solr/dovecot"  # Solr's default port, on the server itself; a core "dovecot"

# ---- webmail (SOGo) -------------------------------------------------------------------------------------

WEBMAIL_TIMEZONE = "UTC"  # users choose their own zone; UTC has no daylight-saving jumps
SOGO_PREFORK = 20  # WOWorkersCount: requests one server serves at once; raise it for more users per server
SOGO_VMEM_LIMIT_MB = 1024  # SxVMemLimit: a worker above it restarts, so a leak cannot take the server
