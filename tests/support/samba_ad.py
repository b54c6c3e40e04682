"""A real Samba AD DC for tests: the implementation moved to `mailstrata.twin.samba` (the local twin runs
the same directory); this module keeps the names the tests import. See that module for the seeded users,
groups, passwords and TLS modes."""

from __future__ import annotations

from mailstrata.twin.samba import (
    BASE_DN,
    BIND_DN,
    BIND_LOGIN,
    BULK_OU,
    BULK_USERS,
    DEFAULT_CACHE_DIR,
    DOMAINS,
    GC_PORT,
    GCS_PORT,
    HELPER_VERSION,
    HOST_NAME,
    IDENTITY_OU,
    LDAP_PORT,
    LDAPS_PORT,
    MIGRATED_OU,
    NETBIOS_DOMAIN,
    REALM,
    SEED_GROUPS,
    SEED_SCRIPT,
    SEED_USERS,
    SERVICE_OU,
    TLS_MODES,
    USERS_DN,
    AdUser,
    DomainCA,
    SambaAD,
    SambaError,
    SeedGroup,
    SeedUser,
    bulk_users,
    default_cache_dir,
    ensure_template,
    private_netns,
)

# A bind password holding every character some consumer's file format treats as syntax: a leading '#' (a
# comment to Dovecot, unquoted), both quotes, a backslash before a letter, shell, Terraform and Dovecot variable
# syntax, spaces and non-ASCII. Set it with `SambaAD.set_password(BIND_LOGIN, TRICKY_PASSWORD)`.
TRICKY_PASSWORD = "#Pa55 'w\"o\\rd' $HOME %u %{x} ${y} ñé"

__all__ = [
    "BASE_DN", "BIND_DN", "BIND_LOGIN", "DEFAULT_CACHE_DIR", "DOMAINS", "GCS_PORT", "GC_PORT", "HELPER_VERSION",
    "HOST_NAME", "LDAPS_PORT", "LDAP_PORT", "MIGRATED_OU", "NETBIOS_DOMAIN", "REALM", "SEED_GROUPS", "SEED_SCRIPT",
    "SEED_USERS", "SERVICE_OU", "TLS_MODES", "USERS_DN", "AdUser", "SambaAD", "SambaError", "SeedGroup", "SeedUser",
    "DomainCA", "TRICKY_PASSWORD",
    "default_cache_dir", "ensure_template", "private_netns", "BULK_OU", "BULK_USERS", "IDENTITY_OU", "bulk_users",
]
