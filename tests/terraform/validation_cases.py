"""Good and bad values for every variable validation the library writes, keyed by its error message.

`tests/terraform/test_stacks.py` plans every validated variable of every stack with these values, so a new
validation needs its cases here (the test names the message that has none).
"""

from __future__ import annotations

from dataclasses import dataclass

AD_BIND_PASSWORD = (
    "The AD bind password must be non-empty, on one line, and must not start or end with a space or tab "
    "(Postfix and saslauthd drop them)."
)


@dataclass(frozen=True)
class Cases:
    good: tuple[str, ...]
    bad: tuple[str, ...]


CASES: dict[str, Cases] = {
    AD_BIND_PASSWORD: Cases(
        # shell and Terraform syntax in a value is data, not syntax: Terraform never re-reads a value
        # quotes, backslashes and # are escaped for the formats that need it (ldap.quoted_secret)
        good=("Pa55-w0rd!$%", "x", "${HOME}%{ldap:info}'q'", "ünï-cödé", "a b\tc", 'with"quote', "back\\slash",
              "#x 'y' \"z\" \\ $HOME %u ñ"),
        bad=("", "two\nlines", "carriage\rreturn", "\n", " leading", "trailing ", "\tleading-tab", "trailing-tab\t",
             " "),
    ),
}
