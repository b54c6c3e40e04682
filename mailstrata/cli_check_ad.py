"""``mailstrata check-ad``: check the directory before deploying (see `mailstrata.adcheck`).

Wiring into the main command line::

    sub = parser.add_subparsers(dest="command", required=True)
    cli_check_ad.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)

Standalone: ``python -m mailstrata.cli_check_ad --url ldap://dc1:389 ...``, or `main(argv)`.

The bind password never appears on the command line (other users can read it in the process list):
it comes from ``--password-file FILE`` or, failing that, from the same environment variable ``cdktf deploy``
reads: ``TF_VAR_ad_bind_password``, or ``TF_VAR_<name>`` when ``--config`` names another variable
(``directory.bind_password: {variable: <name>}``). One export serves both the check and the deploy.

Exit status: 0 when the directory is ready, 1 when the report lists problems, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailstrata.adcheck import run_check
from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.types import Secret

if TYPE_CHECKING:
    from mailstrata.config.model import PlatformConfig

DEFAULT_VARIABLE = "ad_bind_password"  # the config's default directory.bind_password variable
PASSWORD_ENV = f"TF_VAR_{DEFAULT_VARIABLE}"  # what Terraform reads for it at deploy time
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
DESCRIPTION = "Check the directory (Active Directory) the platform will use before deploying."


class UsageError(Exception):
    """A mistake in the command line; the message says what and how to fix it."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``check-ad`` to `subparsers` (from ``add_subparsers()``); it sets ``func=run``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check-ad", help="check the directory (AD) the platform will use", description=DESCRIPTION
    )
    configure(parser)
    parser.set_defaults(func=run)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    """Add check-ad's options to `parser`."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="platform YAML to take the URLs, base DN, bind DN, domains and TLS mode from; "
        "the options below override it",
    )
    parser.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help="directory URL, e.g. ldaps://dc1.example.com (repeatable)",
    )
    parser.add_argument("--base-dn", metavar="DN", help="where users and groups are searched")
    parser.add_argument("--bind-dn", metavar="DN", help="the service account the platform binds as")
    parser.add_argument(
        "--domain", action="append", metavar="DOMAIN", help="a served mail domain (repeatable)"
    )
    parser.add_argument(
        "--tls",
        choices=[t.value for t in LdapTls],
        help="how to protect the connection. Default: ldaps for ldaps:// URLs, otherwise starttls",
    )
    parser.add_argument("--ca-cert", type=Path, metavar="FILE", help="PEM CA certificate of the directory")
    parser.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        help="accept any server certificate (a lab directory with a self-signed one)",
    )
    parser.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the bind password. Default: the environment variable cdktf deploy reads, {PASSWORD_ENV} "
        "(TF_VAR_<name> when the --config file names another variable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per connect and answer. Default: 10"
    )


def run(args: argparse.Namespace) -> int:
    """Run the check for parsed `args`; print the report to stdout and usage errors to stderr."""
    try:
        settings = _settings(args)
    except UsageError as exc:
        sys.stderr.write(f"check-ad: {exc}\n")
        return EXIT_USAGE
    report = run_check(settings, timeout=args.timeout, verify_tls=not args.insecure_skip_verify)
    sys.stdout.write(report.format())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def main(argv: Sequence[str] | None = None) -> int:
    """``check-ad`` as a program: parse `argv` (default: ``sys.argv[1:]``) and run; returns the exit code."""
    parser = argparse.ArgumentParser(prog="mailstrata check-ad", description=DESCRIPTION)
    configure(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2); return the code instead
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run(args)


def _settings(args: argparse.Namespace) -> DirectorySettings:
    if args.ca_cert is not None and args.insecure_skip_verify:
        raise UsageError("--ca-cert and --insecure-skip-verify contradict each other: give one")
    if args.timeout <= 0:
        raise UsageError(f"--timeout: must be more than 0, got {args.timeout:g}")
    if args.config is not None:
        config = _load(args.config)
        password = _password(args, f"TF_VAR_{config.directory.bind_password.variable}")
        settings = config.directory_settings(bind_password=password)
        overrides: dict[str, Any] = {}
        if args.url:
            overrides["urls"] = tuple(args.url)
        if args.base_dn is not None:
            overrides["base_dn"] = args.base_dn
        if args.bind_dn is not None:
            overrides["bind_dn"] = args.bind_dn
        if args.domain:
            overrides["domains"] = tuple(args.domain)
        if args.tls is not None:
            overrides["tls"] = LdapTls(args.tls)
        settings = dataclasses.replace(settings, **overrides)
    else:
        password = _password(args, PASSWORD_ENV)
        given = {
            "--url": args.url,
            "--base-dn": args.base_dn,
            "--bind-dn": args.bind_dn,
            "--domain": args.domain,
        }
        missing = [flag for flag, value in given.items() if not value]
        if missing:
            raise UsageError(f"missing {', '.join(missing)} (or give --config FILE)")
        urls = tuple(args.url)
        default_tls = (
            LdapTls.LDAPS if all(u.lower().startswith("ldaps://") for u in urls) else LdapTls.STARTTLS
        )
        settings = DirectorySettings.build(
            urls=urls,
            tls=LdapTls(args.tls) if args.tls is not None else default_tls,
            base_dn=args.base_dn,
            bind_dn=args.bind_dn,
            bind_password=Secret(ref=password),
            domains=tuple(args.domain),
        )
    if args.ca_cert is not None:
        if settings.tls is LdapTls.PLAIN:
            raise UsageError("--ca-cert needs --tls starttls or ldaps")
        settings = dataclasses.replace(settings, ca_cert_pem=_read_ca(args.ca_cert))
    return settings


def _password(args: argparse.Namespace, env_var: str) -> str:
    if args.password_file is not None:
        try:
            text = args.password_file.read_text()
        except OSError as exc:
            raise UsageError(f"--password-file {args.password_file}: {exc.strerror}") from exc
        password = text.rstrip("\r\n")  # only the line end: spaces may belong to the password
        if not password:
            raise UsageError(f"--password-file {args.password_file}: the file is empty")
        return password
    password = os.environ.get(env_var, "")
    if not password:
        raise UsageError(f"no bind password: give --password-file FILE or set {env_var}")
    return password


def _read_ca(path: Path) -> str:
    try:
        pem = path.read_text()
    except OSError as exc:
        raise UsageError(f"--ca-cert {path}: {exc.strerror}") from exc
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise UsageError(f"--ca-cert {path}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)")
    return pem


def _load(path: Path) -> PlatformConfig:
    # Imported here: the config loader pulls in pydantic and YAML, which the explicit-flags path never needs.
    from mailstrata.config import load_config

    try:
        return load_config(path)
    except Exception as exc:  # any failure to read the platform file is a usage error, shown as it is
        raise UsageError(f"--config {path}: {exc}") from exc


if __name__ == "__main__":
    sys.exit(main())
