"""Seeds a freshly provisioned Samba AD database (sam.ldb) with the test directory's OUs, users and groups.

Run by `mailstrata/twin/samba.py` under Samba's own Python, isolated::

    /usr/bin/python3 -I samba_seed.py seed /path/to/etc/smb.conf  < seed.json

Standalone on purpose: this file imports nothing but the standard library and Samba's bindings (``ldb``,
``samba``). Samba's Python has no `mailstrata` on its path, and ``-I`` keeps this file's own folder off
``sys.path`` so that nothing next to it can shadow Samba's ``samba`` package. Its name is no Samba module's.

The seed (JSON on stdin) is `mailstrata.twin.samba._seed_spec()` with the passwords filled in::

    {"ous": ["mailapps", ...],
     "service": {"login": "correoapp", "ou": "OU=mailapps", "password": "..."},
     "users": [{"login": "usuario01", "mail": "...", "quota": "1048576" | null, "ou": null, "password": "...",
                "proxy_addresses": ["SMTP:...", "smtp:...", ...]}],
     "groups": [{"name": "ventas", "mail": "...", "members": ["usuario01", ...]}],
     "bulk": {"ou": "OU=masivos", "users": [["masivo0001", "masivo0001@domain01.dom"], ...]}}

The bulk users are one LDIF added in one transaction: no password (so Samba leaves them disabled), which
is what makes 1,100 of them take about 4 s (measured) instead of minutes of samba-tool calls.
"""

from __future__ import annotations

import json
import sys
from typing import Any

USAGE = "usage: python3 -I samba_seed.py seed SMB_CONF  (Samba's own python; reads the seed JSON on stdin)"


def seed(smb_conf: str, spec: dict[str, Any]) -> None:
    import ldb  # type: ignore[import-not-found]
    from samba.auth import system_session  # type: ignore[import-not-found]
    from samba.param import LoadParm  # type: ignore[import-not-found]
    from samba.samdb import SamDB  # type: ignore[import-not-found]

    lp = LoadParm()
    lp.load(smb_conf)
    samdb = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
    base = str(samdb.domain_dn())
    for ou in spec["ous"]:
        samdb.create_ou(f"OU={ou},{base}")
    service = spec["service"]
    # (login, password, OU or None, mail, quota, proxyAddresses values)
    accounts: list[tuple[str, str, str | None, str | None, str | None, list[str]]] = [
        (service["login"], service["password"], service["ou"], None, None, [])
    ]
    accounts += [
        (u["login"], u["password"], f"OU={u['ou']}" if u["ou"] else None, u["mail"], u["quota"],
         u.get("proxy_addresses", []))
        for u in spec["users"]
    ]
    for login, password, ou, mail, quota, proxy_addresses in accounts:
        samdb.newuser(login, password, useusernameascn=True, userou=ou, mailaddress=mail)
        # a cached template may be older than the default 42-day maximum password age
        samdb.setexpiry(f"(sAMAccountName={ldb.binary_encode(login)})", 0, no_expiry_req=True)
        extra = {"info": [quota] if quota is not None else [], "proxyAddresses": proxy_addresses}
        if any(extra.values()):
            found = samdb.search(base=base, expression=f"(sAMAccountName={ldb.binary_encode(login)})", attrs=[])
            msg = ldb.Message(found[0].dn)
            for attr, values in extra.items():
                if values:
                    msg[attr] = ldb.MessageElement(values, ldb.FLAG_MOD_REPLACE, attr)
            samdb.modify(msg)
    for group in spec["groups"]:
        samdb.newgroup(group["name"], mailaddress=group["mail"])
        samdb.add_remove_group_members(group["name"], group["members"], add_members_operation=True)
    bulk = spec.get("bulk")
    if bulk and bulk["users"]:
        ldif = "".join(
            f"dn: CN={login},{bulk['ou']},{base}\nobjectClass: user\nsAMAccountName: {login}\nmail: {mail}\n\n"
            for login, mail in bulk["users"]
        )
        samdb.transaction_start()
        try:
            samdb.add_ldif(ldif)
        except BaseException:
            samdb.transaction_cancel()
            raise
        samdb.transaction_commit()


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "seed":
        print(USAGE, file=sys.stderr)
        return 2
    seed(argv[2], json.load(sys.stdin))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
