"""The local twin: the synthesized platform running on one machine, for end-to-end tests.

`Twin(root).up()` builds the stack from the config, renders every server's files from the same
templates through the relocated `debian12` OS profile, and runs every daemon, one HAProxy per VIP, a
Samba AD and a dnsmasq inside one network namespace that has only `lo`. See docs/twin.md.

(This package's modules import cdktf lazily. The directory's seed step, `files/samba_seed.py`, is a
standalone script run isolated under Samba's own Python; it imports nothing of mailstrata.)
"""
