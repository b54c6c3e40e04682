"""Seeds a freshly provisioned Samba AD database (sam.ldb) with the test directory's OUs, users and groups.

Run by `mailstrata/twin/samba.py` under Samba's own Python, isolated::

    /usr/bin/python3 -I samba_seed.py seed /path/to/etc/smb.conf  < seed.json

Standalone on purpose: this file imports nothing but the standard library and Samba's bindings (``ldb``,
``samba``). Samba's Python has no `mailstrata` on its path, and ``-I`` keeps this file's own folder off
``sys.path`` so that nothing next to it can shadow Samba's ``samba`` package. Its name is no Samba module's.

The seed (JSON on stdin) is `mailstrata.twin.samba._seed_spec()` with the passwords filled in::

    {"ous": ["mailapps", ...],
     "service": {"login": "correoapp", "ou": "OU=mailapps", "password": "..."},
     "users": [{"login": "usuario01", "mail": "...", "quota": "1048576" | null, "ou": null, "password": "..."}],
     "groups": [{"name": "ventas", "mail": "...", "members": ["usuario01", ...]}]}
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
    accounts = [(service["login"], service["password"], service["ou"], None, None)]
    accounts += [
        (u["login"], u["password"], f"OU={u['ou']}" if u["ou"] else None, u["mail"], u["quota"])
        for u in spec["users"]
    ]
    for login, password, ou, mail, quota in accounts:
        samdb.newuser(login, password, useusernameascn=True, userou=ou, mailaddress=mail)
        # a cached template may be older than the default 42-day maximum password age
        samdb.setexpiry(f"(sAMAccountName={ldb.binary_encode(login)})", 0, no_expiry_req=True)
        if quota is not None:
            found = samdb.search(base=base, expression=f"(sAMAccountName={ldb.binary_encode(login)})", attrs=[])
            msg = ldb.Message(found[0].dn)
            msg["info"] = ldb.MessageElement(quota, ldb.FLAG_MOD_REPLACE, "info")
            samdb.modify(msg)
    for group in spec["groups"]:
        samdb.newgroup(group["name"], mailaddress=group["mail"])
        samdb.add_remove_group_members(group["name"], group["members"], add_members_operation=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "seed":
        print(USAGE, file=sys.stderr)
        return 2
    seed(argv[2], json.load(sys.stdin))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
