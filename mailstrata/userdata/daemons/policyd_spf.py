"""policyd-spf (pypolicyd-spf / postfix-policyd-spf-python): the MX's SPF policy server.

Postfix spawns it per smtpd process (a master.cf `spawn` service) and asks it from
`smtpd_recipient_restrictions` (`check_policy_service`). It rejects a HELO name whose SPF record fails,
and a MAIL FROM according to the platform config (`spam.spf_mail_from_reject`); broken records and DNS
timeouts never lose mail. Re-injected mail from amavisd and local submissions are not checked.

Agreement with Postfix, named here so that the Postfix side reads it instead of repeating it:
- `spawn_argv(os)`: the master.cf service's `user=... argv=...` (the program, its user and its config
  file are the OS's).
"""

from __future__ import annotations

from mailstrata.errors import Problems
from mailstrata.userdata.context import SpamPolicy
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

# policyd-spf's choices for Mail_From_reject (policyd-spf.conf(5)).
MAIL_FROM_CHOICES = ("Fail", "Softfail", "SPF_Not_Pass", "False", "No_Check")


def check(spam: SpamPolicy, problems: Problems) -> None:
    """Add a problem when policyd-spf would not accept the configured Mail_From_reject."""
    if spam.spf_mail_from_reject not in MAIL_FROM_CHOICES:
        problems.add(
            "spam.spf_mail_from_reject",
            f"must be one of {', '.join(MAIL_FROM_CHOICES)}, got {spam.spf_mail_from_reject!r}",
        )


def spawn_argv(os: OsProfile) -> str:
    """The `user=... argv=...` of Postfix's spawn service that runs the policy server."""
    return f"user={os.users.policyd_spf} argv={os.paths.policyd_spf} {os.paths.policyd_spf_conf}"


def files(spam: SpamPolicy, os: OsProfile) -> list[FileSpec]:
    """policyd-spf.conf, where the OS's package reads it."""
    return [
        FileSpec(
            dest=os.paths.policyd_spf_conf,
            template="policyd_spf/etc/python-policyd-spf/policyd-spf.conf.j2",
            context={"mail_from_reject": spam.spf_mail_from_reject},
        )
    ]
