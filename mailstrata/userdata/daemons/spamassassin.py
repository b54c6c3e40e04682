"""SpamAssassin: the site configuration (`local.cf`) read by amavisd's embedded SpamAssassin.

SpamAssassin runs inside amavisd (no spamd): amavisd applies its own levels (`$sa_tag2_level_deflt` and
the others, see `daemons/amavis.py`) and adds the headers and the subject tag itself. `required_score`
is set to the tag2 level all the same, so that `spamassassin` run by hand on a message agrees with
amavisd. SpamAssassin's DKIM and SPF plugins score signatures on inbound mail (amavisd's own DKIM
verification is off).

Bayes learns from the traffic; the role's first-boot script seeds it when the image carries a corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.userdata.context import SpamPolicy
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile


def score(value: float) -> str:
    """A SpamAssassin score as SpamAssassin and amavisd both read it: `9.0`, `-999.0`, `6.31`."""
    return str(float(value))


@dataclass(frozen=True, kw_only=True)
class LocalCf:
    """local.cf: the score at which a message is spam (amavisd's tag2 level)."""

    required_score: float


def settings(spam: SpamPolicy) -> LocalCf:
    return LocalCf(required_score=spam.tag2_level)


def files(spam: SpamPolicy, os: OsProfile) -> list[FileSpec]:
    """The site configuration in the OS's site directory (CentOS /etc/mail/spamassassin, Debian /etc/spamassassin)."""
    local = settings(spam)
    return [
        FileSpec(
            dest=f"{os.paths.spamassassin_dir}/local.cf",
            template="spamassassin/etc/mail/spamassassin/local.cf.j2",
            context={"required_score": score(local.required_score)},
        )
    ]
